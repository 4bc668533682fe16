/**
 * The inbox and outbox ("boxes"): opened through the workspace with the anchored walk, so a
 * `.opencode` swapped for a symlink cannot move a box outside; their recursive listings (bounded,
 * through held folders; symlinks that leave the box are not listed) and item ids.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { Dir, lstatAtSync, mkdirAt, openChildDir, openFileAt, type OpenedFile } from "../fs/anchored.ts";
import { GIT_ONLY, hasGitSegment, isServerProtected, normalizeRelPath, PathResolver, type ProtectedPaths, type ResolvedPath } from "../fs/paths.ts";
import { isTempFileName } from "../fs/atomic.ts";
import { LIMITS } from "../limits.ts";
import type { Workspace } from "../types.ts";

export interface ListedFile {
  /** Root-relative, "/"-separated. */
  path: string;
  name: string;
  size: number;
  updatedAt: number;
}

/** An open box: a resolver rooted at its held folder. Close it when done. */
export interface Box {
  resolver: PathResolver;
  dir: Dir;
  /** Real path of the first folder created for it (so a refused upload can remove what it made). */
  createdTop?: string;
}

/**
 * Opens `<ws>/.opencode/openwork/<name>` through the workspace (403 when it leads outside, `.git`
 * protected: a box linked into .git would let uploads rewrite hooks). With `create` missing
 * folders are made one at a time; without it a missing box is undefined.
 */
export async function openBox(ws: Workspace, name: "inbox" | "outbox", create: boolean, protect: ProtectedPaths): Promise<Box | undefined> {
  const wsResolver = await PathResolver.create(ws.path, GIT_ONLY);
  try {
    const r = await wsResolver.resolveNormalized(`.opencode/openwork/${name}`, { create });
    let dir: Dir;
    let createdTop: string | undefined;
    if (r.missing > 0) {
      if (!create) return undefined;
      createdTop = path.join(r.dir.real, r.below[0]!);
      const parent = await wsResolver.parentFor(r);
      dir = await mkdirAt(parent.dir, parent.name).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== "EEXIST") throw err;
        return openChildDir(parent.dir, parent.name);
      });
    } else {
      // The box itself (a symlink to a folder inside was followed by the walk).
      dir = await openChildDir(r.dir, r.below[0]!).catch((err: NodeJS.ErrnoException) => {
        throw err.code === "ENOTDIR" || err.code === "ELOOP" ? new ApiError("not_a_directory", `The ${name} path is not a folder`) : err;
      });
    }
    const resolver = await PathResolver.under(dir, path.join(ws.path, ".opencode", "openwork", name), protect);
    return createdTop === undefined ? { resolver, dir } : { resolver, dir, createdTop };
  } finally {
    await wsResolver.close();
  }
}

/**
 * Lists regular files of a box, newest first. Unreadable entries are skipped, not the whole list;
 * symlinked files are listed only when they resolve inside the box; folders are entered through
 * held descriptors, never through a symlink (no cycles, no escapes); staging temp files are hidden.
 */
export async function listFiles(box: Box, protect?: ProtectedPaths): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  const walk = async (dir: Dir, rel: string, depth: number): Promise<void> => {
    if (depth > LIMITS.listingMaxDepth || out.length >= LIMITS.listingMaxItems) return;
    let names: string[];
    try {
      names = await readdir(dir.self);
    } catch {
      return;
    }
    for (const name of names) {
      if (out.length >= LIMITS.listingMaxItems) return;
      if (isTempFileName(name)) continue;
      // A box symlinked onto a project folder must not list its .git, data dir or token store.
      if (protect?.git && name.toLowerCase() === ".git") continue;
      if (protect && isServerProtected(protect, path.join(dir.real, name))) continue;
      const childRel = rel ? `${rel}/${name}` : name;
      try {
        const st = lstatAtSync(dir, name);
        if (st?.isDirectory()) {
          const child = await openChildDir(dir, name);
          try {
            await walk(child, childRel, depth + 1);
          } finally {
            await child.close();
          }
        } else if (st?.isFile()) {
          out.push({ path: childRel, name, size: st.size, updatedAt: Math.floor(st.mtimeMs) });
        } else if (st?.isSymbolicLink()) {
          const target = await box.resolver.resolveNormalized(childRel);
          if (target.lstat?.isFile() && !(protect?.git && hasGitSegment(path.relative(target.rootReal, target.real).split(path.sep)))) {
            out.push({ path: childRel, name, size: target.lstat.size, updatedAt: Math.floor(target.lstat.mtimeMs) });
          }
        }
      } catch {
        // unreadable, vanished or leading outside: skip it
      }
    }
  };
  await walk(box.dir, "", 0);
  out.sort((a, b) => b.updatedAt - a.updatedAt || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/**
 * Opens a resolved box item for download (named by its box-relative path); `notFound` is the
 * box's own 404 for a missing item or one that is not a regular file.
 */
export async function openListedItem(r: ResolvedPath, notFound: () => ApiError): Promise<OpenedFile & { name: string }> {
  if (r.missing > 0) throw notFound();
  try {
    return { ...(await openFileAt(r.dir, r.below[0]!)), name: r.rel };
  } catch (err) {
    if (err instanceof ApiError && err.code === "file_not_found") throw notFound();
    throw err;
  }
}

/** Lists a box of a workspace; a missing box lists nothing. */
export async function listBox(ws: Workspace, name: "inbox" | "outbox", protect: ProtectedPaths): Promise<ListedFile[]> {
  const box = await openBox(ws, name, false, protect);
  if (!box) return [];
  try {
    return await listFiles(box, protect);
  } finally {
    await box.resolver.close();
  }
}

/** Opens an item of a box by id: 400 `invalid`, 404 `notFound`, 403 outside/protected. */
export async function openBoxItem(ws: Workspace, name: "inbox" | "outbox", id: string, protect: ProtectedPaths, invalid: () => ApiError, notFound: () => ApiError): Promise<OpenedFile & { name: string }> {
  const rel = decodeItemId(id);
  if (rel === undefined) throw invalid();
  const box = await openBox(ws, name, false, protect);
  if (!box) throw notFound();
  try {
    let r: ResolvedPath;
    try {
      // The id names an existing file exactly: a backslash in it is part of the name (a Linux
      // name like "back\slash.txt" is listed, so its id must open it).
      r = await box.resolver.resolveNormalized(normalizeRelPath(rel, { backslashIsSeparator: false }));
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid_path") throw invalid();
      throw err;
    }
    return await openListedItem(r, notFound);
  } finally {
    await box.resolver.close();
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
