/**
 * Reading the workspace's own fixed places — config files, the skill, command and plugin folders,
 * run logs — through held folders, with the walk client paths take (fs/paths.ts): a link on the
 * way is followed only while it stays inside the root, and each file is opened O_NOFOLLOW |
 * O_NONBLOCK through the folder that holds it. A check of the real path before or after a read by
 * path leaves a window: a local process swapping a folder for a link to the outside got outside
 * bytes into 1 answer in 3 (`opencode.json`) to 1 in 30 (skills) that way.
 */
import { readdir } from "node:fs/promises";
import type { Dirent } from "node:fs";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { openChildDir, openFileAt, readAll, type Dir } from "./anchored.ts";
import { PathResolver } from "./paths.ts";

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class InsideReader {
  private readonly held: Dir[] = [];
  private constructor(private readonly resolver: PathResolver) {}

  /** Undefined when `root` does not exist or is not a folder (nothing to read there). */
  static async open(root: string): Promise<InsideReader | undefined> {
    try {
      return new InsideReader(await PathResolver.create(root));
    } catch (err) {
      // Missing, or a file, FIFO or device where the folder should be (PathResolver.create).
      if (err instanceof ApiError && (err.code === "file_not_found" || err.code === "conflict")) return undefined;
      throw err;
    }
  }

  /**
   * The folder `rel` (root-relative, "/"-separated; "" is the root), held until close. Undefined
   * when it is missing or not a folder; 403 path_outside_workspace when a link takes it outside.
   */
  async folder(rel: string): Promise<Dir | undefined> {
    if (rel === "") return this.root();
    const r = await this.resolver.resolveNormalized(rel);
    if (r.missing > 0) return undefined;
    try {
      const dir = await openChildDir(r.dir, r.below[0]!);
      this.held.push(dir);
      return dir;
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      if (code === "ELOOP") throw new ApiError("path_outside_workspace", "Path is outside the workspace");
      throw err;
    }
  }

  /** The root folder itself (held by the resolver). */
  root(): Promise<Dir> {
    return this.resolver.rootDir();
  }

  /**
   * The sub-folder `name` of a held folder, opened O_NOFOLLOW: undefined when it is missing, not a
   * folder or a link. Not held: the caller closes it (a walk holds only its depth open).
   */
  async child(dir: Dir, name: string): Promise<Dir | undefined> {
    try {
      return await openChildDir(dir, name);
    } catch (err) {
      const code = errno(err);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") return undefined;
      throw err;
    }
  }

  /** What a held folder contains, links reported as links (never followed); [] when it cannot be read. */
  async entries(dir: Dir): Promise<Dirent[]> {
    return readdir(dir.self, { withFileTypes: true }).catch(() => []);
  }

  /**
   * The UTF-8 text of the regular file `name` of a held folder. 404 file_not_found when it is
   * missing or not a regular file, 403 for a link, 413 file_too_large past `maxBytes`.
   */
  async textIn(dir: Dir, name: string, maxBytes = LIMITS.textFileMaxBytes): Promise<string> {
    const file = await openFileAt(dir, name);
    try {
      const size = Number(file.stat.size);
      if (size > maxBytes) throw new ApiError("file_too_large", `${name} is larger than ${maxBytes} bytes`, { maxBytes, size });
      return (await readAll(file, size)).toString("utf8");
    } finally {
      await file.close().catch(() => {});
    }
  }

  /**
   * The text of the file `rel`, following links that stay inside. Undefined when it does not
   * exist; 409 not_a_file for a folder, FIFO or device; 403 when a link takes it outside.
   */
  async text(rel: string, maxBytes = LIMITS.textFileMaxBytes): Promise<string | undefined> {
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    const r = await this.resolver.resolveNormalized(rel);
    if (r.missing > 0) return undefined;
    if (r.lstat && !r.lstat.isFile() && !r.lstat.isSymbolicLink()) throw new ApiError("not_a_file", `${name}: Path is not a regular file`);
    try {
      return await this.textIn(r.dir, r.below[0]!, maxBytes);
    } catch (err) {
      // Gone since the walk (a racing delete): as if it had never been there.
      if (err instanceof ApiError && err.code === "file_not_found") return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    for (const dir of this.held.splice(0)) await dir.close();
    await this.resolver.close();
  }
}

/** Runs `fn` with a reader of `root` (closed afterwards); undefined when `root` does not exist. */
export async function withInside<T>(root: string, fn: (reader: InsideReader) => Promise<T>): Promise<T | undefined> {
  const reader = await InsideReader.open(root);
  if (!reader) return undefined;
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}

/** The text of `rel` inside `root` (see InsideReader.text); undefined when either is missing. */
export function readTextInside(root: string, rel: string, maxBytes?: number): Promise<string | undefined> {
  return withInside(root, (reader) => reader.text(rel, maxBytes));
}
