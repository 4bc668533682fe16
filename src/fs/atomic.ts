/**
 * Atomic replacement of the server's own files (token store, server.json, the router's config,
 * write journals), temp-file names, per-path async locks and the startup clean-up of temp files.
 *
 * A write goes to a temp file created with O_EXCL in the target's own directory, is fsynced,
 * renamed over the target, and the directory is fsynced (fs/anchored.ts): after a crash the
 * target holds the old content or the new one, never a torn mix. Leftover temp files are
 * recognisable by name (see isTempFileName) and removed at startup.
 */
import { readdir, realpath, rmdir, unlink, lstat } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { openRoot, TEMP_PREFIX, TEMP_SUFFIX, writeFileAt } from "./anchored.ts";

export { TEMP_PREFIX, TEMP_SUFFIX };
/** Prefix of staged inbox uploads (spec: `.upload-<uuid>.tmp`). */
export const UPLOAD_PREFIX = ".upload-";

const UUID_RE = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const TEMP_NAME_RE = new RegExp(`^(?:\\.openwork-|\\.upload-)${UUID_RE}\\.tmp$`);

/** True for names produced by tempPathFor/uploadTempPathFor (used by cleanup and the catalog to hide them). */
export function isTempFileName(name: string): boolean {
  return TEMP_NAME_RE.test(name);
}

/** A fresh temp path inside `dir` (never an existing name: the UUID plus O_EXCL guarantee it). */
export function tempPathFor(dir: string): string {
  return path.join(dir, `${TEMP_PREFIX}${randomUUID()}${TEMP_SUFFIX}`);
}

/** A fresh staged-upload name (`.upload-<uuid>.tmp`). */
export function uploadTempName(): string {
  return `${UPLOAD_PREFIX}${randomUUID()}${TEMP_SUFFIX}`;
}

/** Removes `leaf` and its parents up to and including `top` while they are empty (best effort). */
export async function removeEmptyChain(leaf: string, top: string): Promise<void> {
  for (let dir = leaf; ; dir = path.dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    if (dir === top || path.dirname(dir) === dir) return;
  }
}

/**
 * Writes `data` to `file` atomically (temp file, fsync, rename, fsync of the directory). An
 * existing file keeps its mode; a new one gets `opts.mode` (default 0o666 minus umask).
 */
export async function writeFileAtomic(file: string, data: string | Buffer, opts: { mode?: number } = {}): Promise<void> {
  const dir = await openRoot(await realpath(path.dirname(file)));
  try {
    await writeFileAt(dir, path.basename(file), data, opts);
  } finally {
    await dir.close();
  }
}

/**
 * Per-key async mutex. Keys are absolute file paths.
 *
 * Why a process-wide table (the one piece of module-level state in this area): the lock guards a
 * file on disk, and the disk is shared by every server in the process (tests start several against
 * the same temp folders; the config API and the file API of one server both write opencode.json).
 * Per-server tables would let two writers of the same file interleave. Entries are deleted as soon
 * as their queue drains, so the table holds only paths being written right now.
 */
class PathLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `key` has finished; returns its result. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    try {
      await prev;
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Runs `fn` holding every key (sorted, so two multi-key holders never deadlock). */
  async runAll<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (i: number): Promise<T> => (i >= sorted.length ? fn() : this.run(sorted[i]!, () => step(i + 1)));
    return step(0);
  }
}

const processLocks = new PathLocks();

/** Per-path async mutex shared by every writer in the process (see PathLocks for why it is process-wide). */
export function withPathLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  return processLocks.run(path.resolve(key), fn);
}

/** Holds several path locks at once (sorted order; no deadlock between multi-path writers). */
export function withPathLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
  return processLocks.runAll(keys.map((k) => path.resolve(k)), fn);
}

/**
 * Removes stale temp files (isTempFileName) directly inside `dir` whose mtime is older than
 * `olderThanMs` (0 = all). Returns the number removed. Never throws (a missing dir is fine).
 */
export async function removeStaleTempFiles(dir: string, olderThanMs = 0): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  const cutoff = Date.now() - olderThanMs;
  for (const name of names) {
    if (!isTempFileName(name)) continue;
    const full = path.join(dir, name);
    try {
      const st = await lstat(full);
      if (!st.isFile()) continue;
      if (olderThanMs > 0 && st.mtimeMs > cutoff) continue;
      await unlink(full);
      removed++;
    } catch {
      // raced with another cleaner or the writer itself: ignore
    }
  }
  return removed;
}
