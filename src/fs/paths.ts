/**
 * The one normalizer for client-supplied paths, and real-path containment.
 *
 * normalizeRelPath() applies the lexical rules of the spec and returns a clean "a/b/c";
 * PathResolver (and the one-shot resolveInside()) then walks the existing part of the path from
 * an open descriptor of the root, never following a symlink without checking where it leads, and
 * proves that the real location stays inside the root's real path (path.relative, never
 * startsWith). Protected paths and, for creates, portability rules apply.
 */
import { CONTROL_CHARS_RE, DECEPTIVE_CHARS_RE } from "../formats/visible-text.ts";
import { statSync, type Stats } from "node:fs";
import { readdir, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { Dir, lstatAt, mkdirAt, openChildDir, openRoot } from "./anchored.ts";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

const TRAVERSAL = "Path traversal is not allowed";
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// Controls can forge log/prompt lines; bidi and zero-width characters let a name look like another
// one in the approval prompt (P19): names that contain them cannot be created.
// Windows reserved device names (with or without extension): the workspace may be synced to Windows (P20).
const WINDOWS_DEVICE_RE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

/** True when `rel` is outside `base` (both absolute). Uses path.relative, not a string prefix (P12). */
export function isOutside(base: string, target: string): boolean {
  const r = path.relative(base, target);
  return r === ".." || r.startsWith(".." + path.sep) || path.isAbsolute(r);
}

/** True when `target` is `base` itself or inside it. */
export function isInsideOrSame(base: string, target: string): boolean {
  return !isOutside(base, target);
}

/**
 * Lexical normalization (spec rules 1–5). Returns the workspace-relative path "a/b/c" in NFC.
 * Throws 400 invalid_path. Never touches the disk.
 */
const SIMPLE_PATH_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

export function normalizeRelPath(input: unknown, options: { backslashIsSeparator?: boolean } = {}): string {
  if (typeof input !== "string") throw new ApiError("invalid_path", "Path is required");
  // The common case — short plain-ASCII names, no dot-led or empty segments, no backslash — is
  // already normal: none of the checks below can change or refuse it.
  if (input.length <= LIMITS.pathSegmentMaxBytes && SIMPLE_PATH_RE.test(input)) return input;
  // A cheap bound before any per-character work (NFC, regexes) on a possibly huge client string.
  if (input.length > LIMITS.pathMaxBytes * 2) throw new ApiError("invalid_path", `Path exceeds ${LIMITS.pathMaxBytes} bytes`);
  let p = input.trim();
  if (p === "") throw new ApiError("invalid_path", "Path is required");
  if (p.includes("\u0000")) throw new ApiError("invalid_path", "Path must not contain NUL bytes");
  if (CONTROL_CHARS_RE.test(p)) throw new ApiError("invalid_path", "Path must not contain control characters");
  // Lone surrogates cannot be encoded to UTF-8 file names; refusing them keeps names round-trippable.
  if (LONE_SURROGATE_RE.test(p)) throw new ApiError("invalid_path", "Path is not valid Unicode");
  // NFC: one spelling per visible name, so é (NFD) and é (NFC) cannot become two files (P18).
  p = p.normalize("NFC");
  // Client paths may come from Windows; ids minted by our own listings name the file as it is.
  if (options.backslashIsSeparator !== false) p = p.replace(/\\/g, "/");
  // A Windows drive path ("C:\\x", "C:/x") is absolute elsewhere; refusing it beats creating a "C:" folder (P10).
  if (/^[A-Za-z]:(\/|$)/.test(p)) throw new ApiError("invalid_path", "Path must be relative");
  // Absolute paths are read relative to the root, like the reference (leading "/" and "./" removed).
  for (;;) {
    if (p.startsWith("/")) p = p.slice(1);
    else if (p.startsWith("./")) p = p.slice(2);
    else break;
  }
  const segments = p.split("/").filter((s) => s !== "");
  for (const seg of segments) {
    if (seg === "." || seg === "..") throw new ApiError("invalid_path", TRAVERSAL);
  }
  if (segments.length === 0) throw new ApiError("invalid_path", "Path must point to a file");
  for (const seg of segments) {
    if (Buffer.byteLength(seg) > LIMITS.pathSegmentMaxBytes) {
      throw new ApiError("invalid_path", `Path segment exceeds ${LIMITS.pathSegmentMaxBytes} bytes`);
    }
  }
  const rel = segments.join("/");
  if (Buffer.byteLength(rel) > LIMITS.pathMaxBytes) throw new ApiError("invalid_path", `Path exceeds ${LIMITS.pathMaxBytes} bytes`);
  return rel;
}

/**
 * Portability rules for names about to be created (writes, uploads, mkdir, rename targets):
 * Windows device names, a trailing dot or space, bidi/zero-width characters → 400 invalid_path.
 * Existing names are not checked (the agent may have made them; they can still be read/deleted).
 */
export function checkCreatableSegment(seg: string): void {
  if (WINDOWS_DEVICE_RE.test(seg)) throw new ApiError("invalid_path", "File name is reserved on Windows");
  if (/[. ]$/.test(seg)) throw new ApiError("invalid_path", "File name must not end with a dot or a space");
  if (DECEPTIVE_CHARS_RE.test(seg)) throw new ApiError("invalid_path", "File name contains invisible or bidirectional control characters");
}

/** Paths the file API must never touch even when they lie inside the workspace. */
export interface ProtectedPaths {
  /** Absolute paths of directories (everything inside is protected), lexical and real forms. */
  dirs: string[];
  /** Absolute paths of single files, lexical and real forms. */
  files: string[];
  /** Refuse any `.git` segment (file sessions and inbox). */
  git: boolean;
}

export interface ResolveOptions {
  /** The path is about to be created: apply checkCreatableSegment to every missing segment. */
  create?: boolean;
  /** A final symlink is followed (default) — or, for delete and rename, taken as the entry itself. */
  follow?: boolean;
}

/** A client path proven to lie inside the root. */
export interface ResolvedPath {
  /** Root-relative, "/"-separated, no leading slash (on-disk spelling when an NFD twin exists). */
  rel: string;
  /** Lexical absolute path (root + rel), for messages and approvals. */
  abs: string;
  /** Real location: real path of the deepest existing ancestor + missing segments. Follows a final symlink. */
  real: string;
  /** Real path of the parent + final name: the entry itself (a final symlink is not followed). */
  entry: string;
  /** Real path of the root. */
  rootReal: string;
  /** lstat of the entry, when it exists. */
  lstat: Stats | undefined;
  /** Number of trailing segments that do not exist yet. */
  missing: number;
  /** The deepest existing real directory on the way (the entry's parent when missing is 0), held open. */
  dir: Dir;
  /** What is below `dir`: the entry's name (missing 0), or the segments still to create. */
  below: string[];
}
function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function outside(): ApiError {
  return new ApiError("path_outside_workspace", "Path is outside the workspace");
}

function protectedErr(): ApiError {
  return new ApiError("protected_path", "Path is protected");
}

async function realOrResolved(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * The protected set of a server: `.git`, the data dir, the token store and server.json (it may
 * hold the client and host tokens in clear), in lexical and real forms.
 */
export async function serverProtectedPaths(config: { dataDir: string; tokenStorePath: string; configPath?: string }): Promise<ProtectedPaths> {
  const dir = path.resolve(config.dataDir);
  const files = [config.tokenStorePath, ...(config.configPath ? [config.configPath] : [])].map((f) => path.resolve(f));
  return {
    dirs: [...new Set([dir, await realOrResolved(dir)])],
    files: [...new Set([...files, ...(await Promise.all(files.map(realOrResolved)))])],
    git: true,
  };
}

// Case-insensitively, like .git: on a case-insensitive file system (macOS, Windows) `.OW-DATA/x` is the data dir.
const fold = (p: string): string => p.toLowerCase();

/** The case-folded lists of a ProtectedPaths, made once per object: they are checked for every path of every request. */
const foldedLists = new WeakMap<ProtectedPaths, { files: string[]; dirs: string[] }>();
function folded(protect: ProtectedPaths): { files: string[]; dirs: string[] } {
  let f = foldedLists.get(protect);
  if (!f) foldedLists.set(protect, (f = { files: protect.files.map(fold), dirs: protect.dirs.map(fold) }));
  return f;
}

/** True when `abs` is the token store or inside the data dir (for listings that skip rather than refuse). */
export function isServerProtected(protect: ProtectedPaths, abs: string): boolean {
  const a = fold(abs);
  const f = folded(protect);
  // The prefix test first: a path can only lie inside a folder whose path it starts with.
  return f.files.includes(a) || f.dirs.some((d) => a.startsWith(d) && isInsideOrSame(d, a));
}

/** True when a segment is `.git` (any case). */
export function hasGitSegment(segments: string[]): boolean {
  // Case-insensitively: case-insensitive file systems map .GIT to .git.
  return segments.some((s) => s.toLowerCase() === ".git");
}

function checkProtected(protect: ProtectedPaths, segments: string[], candidates: string[], rootReal?: string): void {
  if (protect.git && hasGitSegment(segments)) throw protectedErr();
  // The real location too: a symlink (`glink -> .git`) must not turn `glink/config` into a way into .git.
  if (protect.git && rootReal !== undefined) {
    for (const c of candidates) if (!isOutside(rootReal, c) && hasGitSegment(path.relative(rootReal, c).split(path.sep))) throw protectedErr();
  }
  for (const c of candidates) if (isServerProtected(protect, c)) throw protectedErr();
}

/** Finds an on-disk name in `dir` that is a Unicode-normalization twin of `seg` (P18), or undefined. */
async function findTwin(dir: Dir, seg: string): Promise<string | undefined> {
  if (/^[\x00-\x7f]*$/.test(seg)) return undefined; // ASCII has a single normal form
  try {
    return (await readdir(dir.self)).find((n) => n !== seg && n.normalize("NFC") === seg);
  } catch {
    return undefined;
  }
}

/**
 * Resolves client paths inside one root (workspace, inbox or outbox), spec rules 1–7: normalizes,
 * walks from an open descriptor of the root one component at a time without following symlinks
 * (a symlink found on the way is read and resolved textually against the root, then walked again
 * from the root), proves real containment, applies protected paths and, for creates, the
 * portability rules. The directories it opens are held until `close()`: operations go through
 * them (fs/anchored.ts), never through the textual path again.
 */
export class PathResolver {
  private readonly dirs = new Map<string, Promise<Dir>>();

  private constructor(
    readonly root: string,
    readonly rootReal: string,
    rootDir: Dir,
    private readonly protect: ProtectedPaths | undefined,
    /** A root held by a RootDirs cache is not closed with this resolver. */
    private readonly sharedRoot = false,
  ) {
    this.dirs.set("", Promise.resolve(rootDir));
  }

  /** A resolver rooted at a directory already held (an inbox reached through the workspace); it owns `dir` from now on. */
  static under(dir: Dir, lexicalRoot: string, protect?: ProtectedPaths): PathResolver {
    return new PathResolver(path.resolve(lexicalRoot), dir.real, new Dir(dir.fd, dir.real, dir.real), protect);
  }

  /** 404 file_not_found when the root does not exist. `roots` shares one held root per folder between resolvers. */
  static async create(root: string, protect?: ProtectedPaths, roots?: RootDirs): Promise<PathResolver> {
    const rootAbs = path.resolve(root);
    if (roots) {
      const dir = await roots.get(rootAbs);
      return new PathResolver(rootAbs, dir.real, dir, protect, true);
    }
    const { dir } = await openRootFolder(rootAbs);
    return new PathResolver(rootAbs, dir.real, dir, protect);
  }

  /** Closes every directory this resolver holds open. */
  async close(): Promise<void> {
    if (this.sharedRoot) this.dirs.delete("");
    const all = await Promise.allSettled([...this.dirs.values()]);
    this.dirs.clear();
    for (const d of all) if (d.status === "fulfilled") await d.value.close();
  }

  /**
   * The real directory at `realRel` (segments below the root), opened component by component
   * with O_NOFOLLOW and cached: errors (ELOOP for a symlink, ENOTDIR, ENOENT) reach the caller.
   */
  private openDir(segs: string[]): Promise<Dir> {
    const key = segs.join("/");
    let p = this.dirs.get(key);
    if (!p) {
      p = this.openDir(segs.slice(0, -1)).then((parent) => openChildDir(parent, segs[segs.length - 1]!));
      this.dirs.set(key, p);
      p.catch(() => this.dirs.get(key) === p && this.dirs.delete(key));
    }
    return p;
  }

  /** The root directory, held (closed with the resolver). */
  rootDir(): Promise<Dir> {
    return this.openDir([]);
  }

  /**
   * The read-batch fast path. `plainDir`: the held directory at `segs` below the root, opened
   * without following any symlink on the way — it rejects when a component is a link, missing or
   * not a folder, and the caller then takes the careful way (resolveNormalized). `checkPlain`:
   * 403 protected_path as a resolve would for a path with no link on it (so its real path is the
   * root's real path + the lexical one, and `.git` in it is `.git` in its segments).
   */
  plainDir(segs: string[]): Promise<Dir> {
    return this.openDir(segs);
  }

  checkPlain(rel: string): void {
    if (!this.protect) return;
    const real = this.rootReal + path.sep + rel;
    checkProtected(this.protect, rel.split("/"), this.root === this.rootReal ? [real] : [real, this.root + path.sep + rel]);
  }

  /**
   * 403 protected_path when removing or moving `r` would take the data dir, the token store or
   * server.json with it (a folder that holds them): delete and rename sources act on the whole subtree.
   */
  checkHoldsNoProtected(r: ResolvedPath): void {
    if (!this.protect) return;
    const f = folded(this.protect);
    const entry = fold(r.entry);
    const abs = fold(r.abs);
    for (const p of [...f.dirs, ...f.files]) {
      if (isInsideOrSame(entry, p) || isInsideOrSame(abs, p)) throw protectedErr();
    }
  }

  /** Normalizes then resolves (400 invalid_path, 403 path_outside_workspace, 403 protected_path). */
  resolve(input: unknown, opts: ResolveOptions = {}): Promise<ResolvedPath> {
    return this.resolveNormalized(normalizeRelPath(input), opts);
  }

  /** Resolves an already normalized relative path. */
  async resolveNormalized(rel0: string, opts: ResolveOptions = {}): Promise<ResolvedPath> {
    const lexical = rel0.split("/");
    if (this.protect) checkProtected(this.protect, lexical, [path.join(this.root, ...lexical)]);
    const r = await this.walk(lexical, [], lexical, 0, opts, 0);
    if (this.protect) checkProtected(this.protect, r.lexical, [r.abs, r.real, r.entry], this.rootReal);
    if (opts.create) {
      // A file where a folder would have to be created: the tree conflicts with the request.
      if (r.blocked) throw new ApiError("conflict", "A parent of the path is a file, not a folder");
      for (const seg of r.below.slice(r.missing > 0 ? 0 : r.below.length)) checkCreatableSegment(seg);
    }
    const { blocked: _b, lexical: _l, ...out } = r;
    return out;
  }

  /**
   * Walks `segs` below the real directory `base` (segments from the root). `lexical` is what the
   * client named (kept for answers, with on-disk spellings of NFC/NFD twins substituted).
   */
  private async walk(segs: string[], base: string[], lexical: string[], lexOffset: number | undefined, opts: ResolveOptions, depth: number): Promise<ResolvedPath & { blocked: boolean; lexical: string[] }> {
    let realSegs = base;
    let dir = await this.openDir(realSegs);
    for (let i = 0; i < segs.length; i++) {
      let seg = segs[i]!;
      const last = i === segs.length - 1;
      let st: Stats | undefined = await lstatAt(dir, seg);
      if (!st) {
        // One spelling per visible name: an NFD twin on disk is the same file (P18).
        const twin = await findTwin(dir, seg);
        if (twin !== undefined) {
          if (lexOffset !== undefined) lexical[lexOffset + i] = twin;
          segs = [...segs.slice(0, i), twin, ...segs.slice(i + 1)];
          seg = twin;
          st = await lstatAt(dir, seg);
        }
      }
      if (!st) return this.result(lexical, realSegs, segs.slice(i), dir, undefined, false);
      if (st.isSymbolicLink() && (!last || opts.follow !== false)) {
        // Read the link and resolve it textually against the root; then walk again from the root.
        if (depth >= LIMITS.maxLinkDepth) throw new ApiError("invalid_path", "Too many levels of symbolic links");
        let target: string;
        try {
          target = await readlink(dir.at(seg));
        } catch (err) {
          // Swapped back since our lstat (EINVAL: no longer a link; ENOENT: gone): look again.
          const code = errno(err);
          if (code === "EINVAL" || code === "ENOENT") return this.walk(segs.slice(i), realSegs, lexical, lexOffset === undefined ? undefined : lexOffset + i, opts, depth + 1);
          throw err;
        }
        const resolved = path.resolve(path.join(this.rootReal, ...realSegs), target);
        if (isOutside(this.rootReal, resolved)) throw outside();
        const targetSegs = path.relative(this.rootReal, resolved).split(path.sep).filter((x) => x !== "");
        const rest = [...targetSegs, ...segs.slice(i + 1)];
        if (rest.length === 0) throw new ApiError("invalid_path", "Path must point to a file");
        const inner = await this.walk(rest, [], lexical, undefined, opts, depth + 1);
        if (last) return { ...inner, entry: path.join(this.rootReal, ...realSegs, seg), lstat: st };
        return inner;
      }
      if (last) return this.result(lexical, realSegs, [seg], dir, st, false);
      if (!st.isDirectory()) return this.result(lexical, realSegs, segs.slice(i), dir, st, true);
      try {
        dir = await this.openDir([...realSegs, seg]);
      } catch (err) {
        // Swapped between our lstat and the open: walk again (bounded like links).
        const code = errno(err);
        if ((code === "ELOOP" || code === "ENOTDIR" || code === "ENOENT") && depth < LIMITS.maxLinkDepth) {
          return this.walk(segs.slice(i), realSegs, lexical, lexOffset === undefined ? undefined : lexOffset + i, opts, depth + 1);
        }
        throw err;
      }
      realSegs = [...realSegs, seg];
    }
    throw new ApiError("invalid_path", "Path must point to a file");
  }

  private result(lexical: string[], realSegs: string[], below: string[], dir: Dir, st: Stats | undefined, blocked: boolean): ResolvedPath & { blocked: boolean; lexical: string[] } {
    const missing = st ? 0 : below.length;
    const real = path.join(this.rootReal, ...realSegs, ...below);
    if (isOutside(this.rootReal, real)) throw outside();
    if (path.relative(this.rootReal, real) === "") throw new ApiError("invalid_path", "Path must point to a file");
    return {
      rel: lexical.join("/"),
      abs: path.join(this.root, ...lexical),
      real,
      entry: real,
      rootReal: this.rootReal,
      lstat: blocked ? undefined : st,
      missing: blocked ? below.length : missing,
      dir,
      below,
      blocked,
      lexical,
    };
  }

  /**
   * The directory that will hold `r` — its missing folders created one at a time inside the held
   * ancestor (mkdir at the anchor, then opened with O_NOFOLLOW) — and the name in it.
   */
  async parentFor(r: ResolvedPath): Promise<{ dir: Dir; name: string }> {
    let dir = r.dir;
    const segs = path.relative(this.rootReal, dir.real).split(path.sep).filter((x) => x !== "");
    for (const seg of r.below.slice(0, -1)) {
      try {
        dir = await mkdirAt(dir, seg);
      } catch (err) {
        if (errno(err) !== "EEXIST") throw err;
        dir = await openChildDir(dir, seg).catch((e: unknown) => {
          if (errno(e) === "ELOOP") throw outside();
          if (errno(e) === "ENOTDIR") throw new ApiError("conflict", "A parent of the path is a file, not a folder");
          throw e;
        });
      }
      segs.push(seg);
      // Held by the resolver: closed with it.
      this.dirs.set(segs.join("/"), Promise.resolve(dir));
    }
    return { dir, name: r.below[r.below.length - 1]! };
  }
}

/**
 * Opens the root folder at `rootAbs` (its real path). 404 file_not_found when it does not exist;
 * 409 conflict when a file, FIFO or device stands where the folder should be (a workspace root
 * replaced at run time was a 500 on every files route).
 */
async function openRootFolder(rootAbs: string): Promise<{ dir: Dir; real: string }> {
  let real: string;
  try {
    real = await realpath(rootAbs);
  } catch {
    throw new ApiError("file_not_found", "Root folder does not exist");
  }
  const dir = await openRoot(real).catch((err: unknown) => {
    if (errno(err) === "ENOTDIR") throw new ApiError("conflict", "The root is not a folder");
    if (errno(err) === "ENOENT") throw new ApiError("file_not_found", "Root folder does not exist");
    throw err;
  });
  return { dir, real };
}

/**
 * Held workspace roots, one per folder, shared by the resolvers of every request (a read-batch
 * then costs no open/close of the root). Each use re-checks with one stat that the folder at the
 * path is still the one held, and reopens it when it was deleted or replaced.
 */
export class RootDirs {
  private readonly held = new Map<string, Promise<{ dir: Dir; dev: number; ino: number }>>();

  async get(rootAbs: string): Promise<Dir> {
    const p = this.held.get(rootAbs);
    if (p) {
      const h = await p.catch(() => undefined);
      // Still the same folder at that path (a replaced workspace root is opened again); one stat, synchronous.
      let now: { dev: number; ino: number } | undefined;
      try {
        now = h && statSync(h.dir.real);
      } catch {
        now = undefined;
      }
      if (h && now && now.dev === h.dev && now.ino === h.ino) return h.dir;
      if (this.held.get(rootAbs) === p) this.held.delete(rootAbs);
      void h?.dir.close();
    }
    const next = (async () => {
      const { dir, real } = await openRootFolder(rootAbs);
      const st = await stat(real);
      return { dir, dev: st.dev, ino: st.ino };
    })();
    this.held.set(rootAbs, next);
    next.catch(() => this.held.get(rootAbs) === next && this.held.delete(rootAbs));
    return (await next).dir;
  }

  async close(): Promise<void> {
    for (const p of this.held.values()) await p.then((h) => h.dir.close(), () => {});
    this.held.clear();
  }
}

/** Only `.git` (no server paths): the default of resolveInside. */
export const GIT_ONLY: ProtectedPaths = { dirs: [], files: [], git: true };

/**
 * One-shot containment check for callers with a single path (the directories it opened are
 * closed again). `.git` is protected unless `protect` says otherwise: a symlinked
 * `.opencode/skills -> ../.git` must not turn a skill delete into rm -r .git/objects.
 */
export async function resolveInside(root: string, input: unknown, opts: ResolveOptions & { protect?: ProtectedPaths } = {}): Promise<ResolvedPath> {
  const resolver = await PathResolver.create(root, opts.protect ?? GIT_ONLY);
  try {
    return await resolver.resolve(input, opts);
  } finally {
    await resolver.close();
  }
}

/** Runs `fn` with a resolver of `root`, closing its held directories afterwards. */
export async function withResolver<T>(root: string, protect: ProtectedPaths | undefined, fn: (r: PathResolver) => Promise<T>): Promise<T> {
  const resolver = await PathResolver.create(root, protect);
  try {
    return await fn(resolver);
  } finally {
    await resolver.close();
  }
}
