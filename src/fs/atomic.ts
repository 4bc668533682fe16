/**
 * Atomic file replacement and per-path async locks.
 *
 * A write goes to a temp file created with O_EXCL in the target's own directory, is fsynced,
 * renamed over the target, and the directory is fsynced: after a crash the target holds the
 * old content or the new one, never a torn mix. Leftover temp files are recognisable by name
 * (see isTempFileName) and removed at startup.
 */
import { constants as C } from "node:fs";
import { open, readdir, rename, rm, rmdir, unlink, lstat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import path from "node:path";

/** Prefix of every temp file this server creates next to a target. */
export const TEMP_PREFIX = ".openwork-";
/** Prefix of staged inbox uploads (spec: `.upload-<uuid>.tmp`). */
export const UPLOAD_PREFIX = ".upload-";
export const TEMP_SUFFIX = ".tmp";

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

/**
 * Creates a new file with O_CREAT|O_EXCL|O_NOFOLLOW: it fails rather than open something a
 * racing process placed there (a symlink or an existing file).
 */
export async function openExclusive(file: string, mode = 0o666): Promise<FileHandle> {
  return open(file, C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, mode);
}

/** fsync a directory so a rename inside it is durable. Filesystems that cannot fsync a directory are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, C.O_RDONLY | C.O_DIRECTORY);
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Some filesystems (and Windows) refuse fsync on directories; the rename itself still happened.
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "ENOTSUP" && code !== "EBADF") throw err;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Removes a file, ignoring "already gone". */
export async function unlinkQuiet(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch {
    // best effort: missing or already removed
  }
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

/** Mode (permission bits) of an existing regular file at `file`, or undefined. Does not follow a final symlink. */
async function existingMode(file: string): Promise<number | undefined> {
  try {
    const st = await lstat(file);
    return st.isFile() ? st.mode & 0o7777 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Renames a fully written and fsynced temp file over `target` and fsyncs the directory.
 * rename(2) replaces a symlink at `target` itself and never writes through it.
 */
export async function commitTempFile(tempPath: string, target: string): Promise<void> {
  try {
    await rename(tempPath, target);
  } catch (err) {
    await unlinkQuiet(tempPath);
    throw err;
  }
  await fsyncDir(path.dirname(target));
}

/**
 * Stages `data` for `file`: a new temp file (O_EXCL|O_NOFOLLOW) in the same directory, written,
 * chmod-ed (an existing file keeps its mode; a new one gets `opts.mode`, default 0o666 minus
 * umask) and fsynced. Returns the temp path; commit it with commitTempFile. On failure the temp
 * file is removed.
 */
export async function stageFile(file: string, data: string | Buffer, opts: { mode?: number } = {}): Promise<string> {
  const dir = path.dirname(file);
  const keepMode = await existingMode(file);
  const tmp = tempPathFor(dir);
  const fh = await openExclusive(tmp, opts.mode ?? 0o666);
  try {
    try {
      await fh.writeFile(data);
      // open() applies the umask; chmod restores the exact bits the caller asked for or the old file had.
      if (keepMode !== undefined) await fh.chmod(keepMode);
      else if (opts.mode !== undefined) await fh.chmod(opts.mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlinkQuiet(tmp);
    throw err;
  }
  return tmp;
}

/**
 * Writes `data` to `file` atomically: temp file (O_EXCL) in the same directory, fsync, rename,
 * fsync of the directory. An existing file keeps its mode; a new one gets `opts.mode` (default
 * 0o666 minus umask). On any failure the temp file is removed and the old file is intact.
 * `beforeCommit` runs between the fsync and the rename (e.g. to re-verify the directory); if it
 * throws, nothing is replaced.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  opts: { mode?: number; beforeCommit?: () => Promise<void> } = {},
): Promise<void> {
  const tmp = await stageFile(file, data, opts);
  if (opts.beforeCommit) {
    try {
      await opts.beforeCommit();
    } catch (err) {
      await unlinkQuiet(tmp);
      throw err;
    }
  }
  await commitTempFile(tmp, file);
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

/** Moves `p` aside (same folder, a temp name the watcher and listings ignore); returns the new path. */
export async function moveAside(p: string): Promise<string> {
  const tmp = tempPathFor(path.dirname(p));
  await rename(p, tmp);
  return tmp;
}

/** Removes a tree without following symlinks (links are removed, their targets untouched). */
export function removeTree(p: string): Promise<void> {
  return rm(p, { recursive: true, force: true });
}
