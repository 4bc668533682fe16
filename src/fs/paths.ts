/**
 * The one normalizer for client-supplied paths, and real-path containment.
 *
 * normalizeRelPath() applies the lexical rules of the spec and returns a clean "a/b/c";
 * PathResolver (and the one-shot resolveInside()) then walks the existing part of the path,
 * resolving every symlink, and proves that the real location stays inside the root's real path
 * (path.relative, never startsWith). Protected paths and, for creates, portability rules apply.
 */
import { close as fsClose, constants as C, fstat as fsFstat, open as fsOpen, read as fsRead } from "node:fs";
import { promisify } from "node:util";
import type { BigIntStats, Stats } from "node:fs";
import { lstat, open, readdir, readlink, realpath } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

const TRAVERSAL = "Path traversal is not allowed";
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// C0 controls, DEL and C1 controls: never part of a legitimate file name, and they can forge log/prompt lines.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
// Bidi overrides/isolates/marks and zero-width characters: they let a name look like another one in
// the approval prompt (P19), so names that contain them cannot be created.
const DECEPTIVE_RE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
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
export function normalizeRelPath(input: unknown): string {
  if (typeof input !== "string") throw new ApiError("invalid_path", "Path is required");
  // A cheap bound before any per-character work (NFC, regexes) on a possibly huge client string.
  if (input.length > LIMITS.pathMaxBytes * 2) throw new ApiError("invalid_path", `Path exceeds ${LIMITS.pathMaxBytes} bytes`);
  let p = input.trim();
  if (p === "") throw new ApiError("invalid_path", "Path is required");
  if (p.includes("\u0000")) throw new ApiError("invalid_path", "Path must not contain NUL bytes");
  if (CONTROL_RE.test(p)) throw new ApiError("invalid_path", "Path must not contain control characters");
  // Lone surrogates cannot be encoded to UTF-8 file names; refusing them keeps names round-trippable.
  if (LONE_SURROGATE_RE.test(p)) throw new ApiError("invalid_path", "Path is not valid Unicode");
  // NFC: one spelling per visible name, so é (NFD) and é (NFC) cannot become two files (P18).
  p = p.normalize("NFC");
  p = p.replace(/\\/g, "/");
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
  if (DECEPTIVE_RE.test(seg)) throw new ApiError("invalid_path", "File name contains invisible or bidirectional control characters");
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

/** True when `abs` is the token store or inside the data dir (for listings that skip rather than refuse). */
export function isServerProtected(protect: ProtectedPaths, abs: string): boolean {
  const a = fold(abs);
  return protect.files.some((f) => fold(f) === a) || protect.dirs.some((d) => isInsideOrSame(fold(d), a));
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
async function findTwin(dir: string, seg: string): Promise<string | undefined> {
  if (/^[\x00-\x7f]*$/.test(seg)) return undefined; // ASCII has a single normal form
  try {
    const names = await readdir(dir);
    return names.find((n) => n !== seg && n.normalize("NFC") === seg);
  } catch {
    return undefined;
  }
}

/**
 * Resolves client paths inside one root (workspace, inbox or outbox), spec rules 1–7: normalizes,
 * walks the existing part resolving symlinks, proves real containment against the root's real
 * path, applies protected paths and, for creates, the portability rules.
 * Create one per request (it caches the root's real path).
 */
export class PathResolver {
  private constructor(
    readonly root: string,
    readonly rootReal: string,
    private readonly protect: ProtectedPaths | undefined,
  ) {}

  /** 404 file_not_found when the root does not exist. */
  static async create(root: string, protect?: ProtectedPaths): Promise<PathResolver> {
    const rootAbs = path.resolve(root);
    let rootReal: string;
    try {
      rootReal = await realpath(rootAbs);
    } catch {
      throw new ApiError("file_not_found", "Root folder does not exist");
    }
    return new PathResolver(rootAbs, rootReal, protect);
  }

  private readonly dirCache = new Map<string, Promise<string | undefined>>();

  /**
   * Fast path for reading an existing regular file: when the real path of its folder equals the
   * lexical one (no symlink anywhere in the folder chain; cached per resolver, so a batch of files
   * in one folder costs one realpath) the leaf is opened directly with O_NOFOLLOW. Anything else
   * (a symlink, a missing file, a Unicode twin, a non-regular file) → undefined: use the full walk.
   * Protected paths apply as in resolveNormalized.
   */
  async openForReadFast(rel: string): Promise<{ rel: string; file: OpenedFile } | undefined> {
    const segments = rel.split("/");
    const leaf = segments.pop()!;
    const lexDir = path.join(this.rootReal, ...segments);
    let realDir = this.dirCache.get(lexDir);
    if (!realDir) {
      realDir = realpath(lexDir).catch(() => undefined);
      this.dirCache.set(lexDir, realDir);
    }
    if ((await realDir) !== lexDir) return undefined;
    const file = path.join(lexDir, leaf);
    if (this.protect) checkProtected(this.protect, [...segments, leaf], [path.join(this.root, rel), file]);
    // Raw descriptors (not FileHandle objects): this path runs 64 times per read-batch.
    let fd: number;
    try {
      fd = await fdOpen(file, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = await fdStat(fd, { bigint: true });
      if (st.isFile()) return { rel, file: fdFile(fd, st) };
    } catch {
      // fall through to the full walk
    }
    await fdClose(fd).catch(() => {});
    return undefined;
  }

  /**
   * 403 protected_path when removing or moving `r` would take the data dir, the token store or
   * server.json with it (a folder that holds them): delete and rename sources act on the whole subtree.
   */
  checkHoldsNoProtected(r: ResolvedPath): void {
    if (!this.protect) return;
    for (const p of [...this.protect.dirs, ...this.protect.files]) {
      if (isInsideOrSame(fold(r.entry), fold(p)) || isInsideOrSame(fold(r.abs), fold(p))) throw protectedErr();
    }
  }

  /** Normalizes then resolves (400 invalid_path, 403 path_outside_workspace, 403 protected_path). */
  resolve(input: unknown, opts: ResolveOptions = {}): Promise<ResolvedPath> {
    return this.resolveNormalized(normalizeRelPath(input), opts);
  }

  /** Resolves an already normalized relative path. */
  async resolveNormalized(rel0: string, opts: ResolveOptions = {}, depth = 0): Promise<ResolvedPath> {
    const { rootReal, protect } = this;
    const segments = rel0.split("/");
    if (protect) checkProtected(protect, segments, [path.join(this.root, ...segments)]);

    // Walk from the root: each existing segment is lstat-ed and a symlink anywhere in the chain is
    // resolved and checked against the root's real path before going further.
    let cur = rootReal;
    let i = 0;
    let entryStat: Stats | undefined;
    let entry = rootReal;
    let twinAt = -1;
    let blocked = false;
    for (; i < segments.length; i++) {
      const seg = segments[i]!;
      const next = path.join(cur, seg);
      let st: Stats;
      try {
        st = await lstat(next);
      } catch (err) {
        const code = errno(err);
        if (code === "ENOENT" && twinAt !== i) {
          twinAt = i;
          const twin = await findTwin(cur, seg);
          if (twin !== undefined) {
            segments[i] = twin;
            i--;
            continue;
          }
        }
        if (code === "ENOTDIR") blocked = true;
        if (code === "ENOENT" || code === "ENOTDIR") break;
        if (code === "ENAMETOOLONG") throw new ApiError("invalid_path", "Path is too long");
        if (code === "EACCES" || code === "EPERM") throw new ApiError("forbidden", "Permission denied");
        throw err;
      }
      entry = next;
      entryStat = st;
      if (st.isSymbolicLink()) {
        let target: string | undefined;
        try {
          target = await realpath(next);
        } catch {
          target = undefined;
        }
        if (target === undefined) {
          // Dangling link: follow where it points (lexically, then resolved again from the root),
          // so writing "through" it can neither escape nor reach a protected path.
          let link: string;
          try {
            link = await readlink(next);
          } catch {
            throw outside();
          }
          const lexical = path.resolve(cur, link);
          if (isOutside(rootReal, lexical)) throw outside();
          if (depth >= LIMITS.maxLinkDepth) throw new ApiError("invalid_path", "Too many levels of symbolic links");
          const targetRel = path.relative(rootReal, lexical).split(path.sep).filter((x) => x !== "");
          const rest = [...targetRel, ...segments.slice(i + 1)];
          if (rest.length === 0) throw new ApiError("invalid_path", "Path must point to a file");
          const inner = await this.resolveNormalized(rest.join("/"), opts, depth + 1);
          const rel = segments.join("/");
          const abs = path.join(this.root, ...segments);
          if (protect) checkProtected(protect, segments, [abs, inner.real], rootReal);
          const last = i === segments.length - 1;
          return { ...inner, rel, abs, entry: last ? next : inner.entry, lstat: last ? st : inner.lstat };
        }
        if (isOutside(rootReal, target)) throw outside();
        cur = target;
      } else {
        cur = next;
        if (i < segments.length - 1 && !st.isDirectory()) {
          i++;
          blocked = true;
          break; // a file in the middle of the path: the rest cannot exist
        }
      }
    }
    const missing = segments.length - i;
    const real = path.join(cur, ...segments.slice(i));
    if (isOutside(rootReal, real)) throw outside();
    if (path.relative(rootReal, real) === "") throw new ApiError("invalid_path", "Path must point to a file");
    if (missing > 0) {
      entry = real;
      entryStat = undefined;
    }
    const rel = segments.join("/");
    const abs = path.join(this.root, ...segments);
    if (protect) checkProtected(protect, segments, [abs, real, entry], rootReal);
    if (opts.create) {
      // A file where a folder would have to be created: the tree conflicts with the request.
      if (blocked) throw new ApiError("conflict", "A parent of the path is a file, not a folder");
      for (const seg of segments.slice(segments.length - missing)) checkCreatableSegment(seg);
    }
    return { rel, abs, real, entry, rootReal, lstat: entryStat, missing };
  }
}

/** Only `.git` (no server paths): the default of resolveInside. */
export const GIT_ONLY: ProtectedPaths = { dirs: [], files: [], git: true };

/**
 * One-shot resolveInside(root, input) for callers with a single path. `.git` is protected unless
 * `protect` says otherwise: a symlinked `.opencode/skills -> ../.git` must not turn a skill delete into rm -r .git/objects.
 */
export async function resolveInside(root: string, input: unknown, opts: ResolveOptions & { protect?: ProtectedPaths } = {}): Promise<ResolvedPath> {
  return (await PathResolver.create(root, opts.protect ?? GIT_ONLY)).resolve(input, opts);
}

/** An open regular file: its fstat (bigint) and positional reads. */
export interface OpenedFile {
  stat: BigIntStats;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

const fdOpen = promisify(fsOpen) as (p: string, flags: number) => Promise<number>;
const fdStat = promisify(fsFstat) as (fd: number, o: { bigint: true }) => Promise<BigIntStats>;
// Written out: promisify(fs.read) resolves to {bytesRead, buffer}, not a number.
const fdRead = (fd: number, b: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fsRead(fd, b, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
const fdClose = promisify(fsClose);

function fdFile(fd: number, stat: BigIntStats): OpenedFile {
  return { stat, read: (b, off, len, pos) => fdRead(fd, b, off, len, pos), close: () => fdClose(fd) };
}

/** Adapts a FileHandle to OpenedFile. */
export function handleFile(fh: FileHandle, stat: BigIntStats): OpenedFile {
  return { stat, read: async (b, off, len, pos) => (await fh.read(b, off, len, pos)).bytesRead, close: () => fh.close() };
}

/**
 * Opens an existing regular file for reading without following a final symlink swapped in after
 * the check (O_NOFOLLOW → ELOOP) and without blocking on a FIFO (O_NONBLOCK); anything that is not
 * a regular file is refused (S07).
 */
export async function openRegularForRead(real: string): Promise<{ fh: FileHandle; stat: BigIntStats }> {
  let fh: FileHandle;
  try {
    fh = await open(real, C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    const code = errno(err);
    if (code === "ENOENT" || code === "ENOTDIR") throw new ApiError("file_not_found", "File not found");
    if (code === "ELOOP") throw outside();
    if (code === "EISDIR") throw new ApiError("file_not_found", "File not found");
    if (code === "EACCES" || code === "EPERM") throw new ApiError("forbidden", "Permission denied");
    throw err;
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) throw new ApiError("file_not_found", "File not found");
    return { fh, stat: st };
  } catch (err) {
    await fh.close().catch(() => {});
    throw err;
  }
}

/**
 * Re-checks, right before a commit, that `dir` still resolves to itself (no component was swapped
 * for a symlink since the check) and is inside `rootReal`. Throws 403 path_outside_workspace.
 */
export async function verifyDirUnchanged(dir: string, rootReal: string): Promise<void> {
  let now: string;
  try {
    now = await realpath(dir);
  } catch {
    throw new ApiError("conflict", "The target folder changed during the write");
  }
  if (now !== dir || isOutside(rootReal, now)) throw outside();
}
