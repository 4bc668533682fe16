/** Recursive listing of the inbox and outbox (bounded; symlinks that leave the root are not listed). */
import { lstat, mkdir, readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { GIT_ONLY, hasGitSegment, isOutside, isServerProtected, openRegularForRead, PathResolver, verifyDirUnchanged, type ProtectedPaths, type ResolvedPath } from "../fs/paths.ts";
import { isTempFileName } from "../fs/atomic.ts";
import { LIMITS } from "../limits.ts";

export interface ListedFile {
  /** Root-relative, "/"-separated. */
  path: string;
  name: string;
  size: number;
  updatedAt: number;
}


/**
 * Lists regular files under `rootReal` (a real path), newest first. Unreadable entries are skipped,
 * not the whole list; symlinked files are listed only when their real path stays inside the root;
 * symlinked folders are not descended into (no cycles, no escapes); staging temp files are hidden.
 */
export async function listFiles(rootReal: string, protect?: ProtectedPaths): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    if (depth > LIMITS.listingMaxDepth || out.length >= LIMITS.listingMaxItems) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= LIMITS.listingMaxItems) return;
      if (isTempFileName(e.name)) continue;
      // A box symlinked onto a project folder must not list its .git, data dir or token store.
      if (protect?.git && e.name.toLowerCase() === ".git") continue;
      const full = path.join(dir, e.name);
      if (protect && isServerProtected(protect, full)) continue;
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      try {
        if (e.isDirectory()) {
          await walk(full, childRel, depth + 1);
        } else if (e.isFile()) {
          const st = await lstat(full);
          out.push({ path: childRel, name: e.name, size: st.size, updatedAt: Math.floor(st.mtimeMs) });
        } else if (e.isSymbolicLink()) {
          const target = await realpath(full);
          if (isOutside(rootReal, target)) continue;
          if (protect && (isServerProtected(protect, target) || (protect.git && hasGitSegment(path.relative(rootReal, target).split(path.sep))))) continue;
          const st = await stat(target);
          if (st.isFile()) out.push({ path: childRel, name: e.name, size: st.size, updatedAt: Math.floor(st.mtimeMs) });
        }
      } catch {
        // unreadable or vanished entry: skip it
      }
    }
  };
  await walk(rootReal, "", 0);
  out.sort((a, b) => b.updatedAt - a.updatedAt || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/**
 * Opens a resolved inbox/outbox item for download (named by its root-relative path); `notFound`
 * is the box's own 404 for a missing item or one that is not a regular file.
 */
export async function openListedItem(r: ResolvedPath, notFound: () => ApiError) {
  if (r.missing > 0) throw notFound();
  try {
    const opened = await openRegularForRead(r.real);
    return { ...opened, name: r.rel };
  } catch (err) {
    if (err instanceof ApiError && err.code === "file_not_found") throw notFound();
    throw err;
  }
}

/** base64url (no padding) of the UTF-8 path: the id of an artifact or inbox item (as the reference). */
export function encodeItemId(rel: string): string {
  return Buffer.from(rel, "utf8").toString("base64url");
}

/** Decodes an item id; undefined when it is not canonical base64url of valid UTF-8. */
export function decodeItemId(id: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) return undefined;
  const bytes = Buffer.from(id, "base64url");
  // Canonical form only: one id per path (no trailing garbage bits, no padding variants).
  if (bytes.toString("base64url") !== id) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * The real path of `<ws>/.opencode/openwork/<name>` after proving it lies inside the workspace
 * (a `.opencode` symlink to elsewhere is refused with 403 path_outside_workspace). With `create`
 * the folder is made; without it a missing folder answers undefined.
 */
export async function openworkDir(workspacePath: string, name: "inbox" | "outbox", create: boolean): Promise<string | undefined> {
  return (await openworkDirCreated(workspacePath, name, create))?.real;
}

/** Like openworkDir; also tells which folder was the first one created (to undo on failure). */
export async function openworkDirCreated(
  workspacePath: string,
  name: "inbox" | "outbox",
  create: boolean,
): Promise<{ real: string; createdTop?: string } | undefined> {
  // .git protection: an inbox/outbox symlinked into .git would let uploads rewrite .git/config or hooks.
  const resolver = await PathResolver.create(workspacePath, GIT_ONLY);
  const r = await resolver.resolveNormalized(`.opencode/openwork/${name}`);
  if (r.missing > 0) {
    if (!create) return undefined;
    const createdTop = await mkdir(r.real, { recursive: true });
    await verifyDirUnchanged(r.real, r.rootReal);
    return createdTop === undefined ? { real: r.real } : { real: r.real, createdTop };
  }
  const st = await stat(r.real);
  if (!st.isDirectory()) throw new ApiError("not_a_directory", `The ${name} path is not a folder`);
  return { real: r.real };
}

