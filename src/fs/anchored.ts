/**
 * File operations anchored on open directories, so that a process swapping a folder for a
 * symlink between our check and our use gains nothing.
 *
 * On Linux every directory we act in is held open (`Dir.fd`), reached from the root one component
 * at a time with O_NOFOLLOW | O_DIRECTORY, and every read, create, rename, mkdir and unlink names
 * its target as `/proc/self/fd/<fd>/<name>`: the kernel resolves that from the directory we hold,
 * never by re-walking the textual path. After a write the directory is checked to still lie
 * inside the root (a directory moved out from under us is undone). Reads check where the opened
 * file itself lives.
 *
 * Elsewhere (no /proc) a Dir is its real path: each operation is followed by a re-check that
 * the directory still resolves to itself inside the root. The window between that check and the
 * operation remains there (documented in docs/security.md).
 */
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync, readSync, close as fsClose, constants as C, existsSync, fchmod as fsFchmod, fstat as fsFstat, fsync as fsFsync, open as fsOpen, read as fsRead, write as fsWrite } from "node:fs";
import type { BigIntStats, Stats } from "node:fs";
import { link, lstat, mkdir, readdir, readlink, realpath, rename, rmdir, unlink } from "node:fs/promises";
import { createHash, randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { ApiError } from "../errors.ts";
import { isOutside } from "./paths.ts";

/** Anchored operations are available (Linux with /proc). */
export const ANCHORED = process.platform === "linux" && existsSync("/proc/self/fd");

const openFd = promisify(fsOpen) as (p: string, flags: number, mode?: number) => Promise<number>;
const closeFd = promisify(fsClose);
const fstatFd = promisify(fsFstat) as (fd: number, o: { bigint: true }) => Promise<BigIntStats>;
const readFd = (fd: number, b: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fsRead(fd, b, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));
const fchmodFd = promisify(fsFchmod);
const fsyncFd = promisify(fsFsync);
const writeFd = (fd: number, b: Buffer, off: number, len: number, pos: number): Promise<number> =>
  new Promise((resolve, reject) => fsWrite(fd, b, off, len, pos, (err, n) => (err ? reject(err) : resolve(n))));

/** Writes all of `bytes` at offset 0 (a write may be short). */
async function writeAll(fd: number, bytes: Buffer): Promise<void> {
  for (let off = 0; off < bytes.length; ) off += await writeFd(fd, bytes, off, bytes.length - off, off);
}

export const TEMP_PREFIX = ".openwork-";
export const TEMP_SUFFIX = ".tmp";

/** A directory proven to lie inside a root: held open on Linux, named by its real path elsewhere. */
export class Dir {
  private closed = false;
  constructor(
    readonly fd: number | undefined,
    /** Real path when it was opened (messages, fallback operations). */
    readonly real: string,
    /** Real path of the root it lies in. */
    readonly rootReal: string,
  ) {}

  /** Where an operation on `name` inside this directory goes. */
  at(name: string): string {
    return this.fd !== undefined ? `/proc/self/fd/${this.fd}/${name}` : path.join(this.real, name);
  }

  /** The directory itself (readdir, fsync). */
  get self(): string {
    return this.fd !== undefined ? `/proc/self/fd/${this.fd}` : this.real;
  }

  /** Where the directory is now (it may have been moved since it was opened). One syscall: synchronous. */
  async whereNow(): Promise<string> {
    return this.fd !== undefined ? readlinkSync(this.self) : realpath(this.real);
  }

  /** 403 when the directory no longer lies inside the root (moved out, or swapped on platforms without /proc). */
  async verify(): Promise<void> {
    let now: string;
    try {
      now = await this.whereNow();
    } catch {
      throw new ApiError("conflict", "The target folder changed during the operation");
    }
    if (isOutside(this.rootReal, now) || (this.fd === undefined && now !== this.real)) {
      throw new ApiError("path_outside_workspace", "Path is outside the workspace");
    }
  }

  close(): Promise<void> {
    if (this.closed || this.fd === undefined) return Promise.resolve();
    this.closed = true;
    // close(2) of a directory never blocks: a thread-pool round trip per folder cost more than it.
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
    return Promise.resolve();
  }
}


/** Opens the root directory (its real path, resolved once from the configuration). */
export async function openRoot(rootReal: string): Promise<Dir> {
  return new Dir(ANCHORED ? await openFd(rootReal, C.O_RDONLY | C.O_DIRECTORY) : undefined, rootReal, rootReal);
}

/**
 * Opens the child directory `name` of `dir` without following a symlink: ELOOP / ENOTDIR /
 * ENOENT reach the caller, which decides (a symlink is resolved by the path layer, never here).
 */
export async function openChildDir(dir: Dir, name: string): Promise<Dir> {
  const real = path.join(dir.real, name);
  if (!ANCHORED) {
    const st = await lstat(real);
    if (st.isSymbolicLink()) throw Object.assign(new Error("symlink"), { code: "ELOOP" });
    if (!st.isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    return new Dir(undefined, real, dir.rootReal);
  }
  // Opening a directory is one short syscall: synchronous, where a thread-pool round trip per
  // folder of every request cost more than the call itself.
  return new Dir(openSync(dir.at(name), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW), real, dir.rootReal);
}

/** Creates `name` in `dir` (EEXIST reaches the caller) and opens it. */
export async function mkdirAt(dir: Dir, name: string): Promise<Dir> {
  await mkdir(dir.at(name));
  return openChildDir(dir, name);
}

/** An open regular file: its fstat (bigint) and positional reads. */
export interface OpenedFile {
  fd: number;
  stat: BigIntStats;
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the regular file `name` of `dir` for reading: never through a final symlink (O_NOFOLLOW),
 * never blocking on a FIFO (O_NONBLOCK), never anything but a regular file, and — checked on the
 * opened descriptor itself — never a file that lives outside the root.
 */
export async function openFileAt(dir: Dir, name: string): Promise<OpenedFile> {
  let fd: number;
  try {
    fd = await openFd(dir.at(name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") throw new ApiError("file_not_found", "File not found");
    if (code === "ELOOP") throw new ApiError("path_outside_workspace", "Path is outside the workspace");
    throw err;
  }
  try {
    const st = await fstatFd(fd, { bigint: true });
    if (!st.isFile()) throw new ApiError("file_not_found", "File not found");
    if (ANCHORED && isOutside(dir.rootReal, await readlink(`/proc/self/fd/${fd}`))) {
      throw new ApiError("path_outside_workspace", "Path is outside the workspace");
    }
    return { fd, stat: st, read: (b, off, len, pos) => readFd(fd, b, off, len, pos), close: () => closeFd(fd) };
  } catch (err) {
    await closeFd(fd).catch(() => {});
    throw err;
  }
}

/**
 * The read-batch fast path: opens, checks and reads a small regular file of `dir` with synchronous
 * calls — four syscalls, none of them a thread-pool round trip (64 files × 6 async hops was most
 * of a read-batch's time). Bounded by `maxBytes`. Undefined when the careful way must decide: a
 * symlink (O_NOFOLLOW), a missing name (it may have an NFD twin), not a regular file, or larger.
 * The caller verifies once per batch that `dir` still lies inside the root (Dir.verify), where
 * openFileAt checks every file.
 */
export function readSmallFileSync(dir: Dir, name: string, maxBytes: number, scratch?: Buffer): { data: Buffer; stat: BigIntStats } | undefined {
  let fd: number;
  try {
    fd = openSync(dir.at(name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isFile() || stat.size > BigInt(maxBytes)) return undefined;
    const size = Number(stat.size);
    // `scratch`: the caller's reusable buffer (the bytes are then valid until its next read).
    const data = scratch && size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, data, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return { data: off === size ? data : data.subarray(0, off), stat };
  } finally {
    closeSync(fd);
  }
}

/** Reads the whole of an opened file (the size from our fstat, so the revision matches the bytes). */
export async function readAll(file: OpenedFile, size = Number(file.stat.size)): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = await file.read(buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? buf : buf.subarray(0, off);
}

/**
 * The same, synchronously: one short syscall for listings that stat every entry (a thread-pool
 * round trip each cost more than the call; listings are bounded by LIMITS.listingMaxItems).
 */
export function lstatAtSync(dir: Dir, name: string): Stats | undefined {
  try {
    return lstatSync(dir.at(name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** lstat of `name` in `dir` (never following it); undefined when missing. */
export async function lstatAt(dir: Dir, name: string): Promise<Stats | undefined> {
  try {
    return await lstat(dir.at(name));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** fsync a directory so a rename inside it is durable (filesystems that cannot are tolerated). */
export async function fsyncDirectory(p: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = await openFd(p, C.O_RDONLY | C.O_DIRECTORY);
    await fsyncFd(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM" && code !== "ENOTSUP" && code !== "EBADF") throw err;
  } finally {
    if (fd !== undefined) await closeFd(fd).catch(() => {});
  }
}

export interface WriteResult {
  /** bigint stat of the new file (its revision and mtime). */
  stat: BigIntStats;
}

/**
 * Writes `data` to `name` in `dir` atomically: a temp file created with O_EXCL | O_NOFOLLOW in the
 * same (held) directory, written, chmod-ed (an existing file keeps its mode), fsynced, and put in
 * place by `putInPlace` (which also checks that exactly these bytes landed).
 */
export async function writeFileAt(dir: Dir, name: string, data: Buffer | string, o: { createOnly?: boolean; mode?: number } = {}): Promise<WriteResult> {
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  const tmp = `${TEMP_PREFIX}${randomUUID()}${TEMP_SUFFIX}`;
  const before = await lstatAt(dir, name);
  const keepMode = before?.isFile() ? before.mode & 0o7777 : undefined;
  const fd = await openFd(dir.at(tmp), C.O_CREAT | C.O_EXCL | C.O_RDWR | C.O_NOFOLLOW, o.mode ?? 0o666);
  let placed = false;
  try {
    await writeAll(fd, bytes);
    // open() applies the umask; fchmod restores the bits the old file had or the caller asked for.
    if (keepMode !== undefined || o.mode !== undefined) await fchmodFd(fd, keepMode ?? o.mode!);
    await fsyncFd(fd);
    const stat = await putInPlace(fd, dir, tmp, dir, name, { createOnly: o.createOnly === true, check: () => sameBytes(fd, bytes) });
    placed = true;
    return { stat };
  } finally {
    if (!placed) await unlink(dir.at(tmp)).catch(() => {});
    await closeFd(fd).catch(() => {});
  }
}

/**
 * Puts a staged file (an upload waiting for its approval) in place, but only the approved bytes:
 * hashed again through our descriptor once it landed (one pass over the file). A local process
 * that rewrote the staged file meanwhile gets a 409 and nothing of it stays. Hashing before the
 * rename as well would add a second pass and no guarantee: a process able to rewrite the staged
 * file can write into the inbox directly, so what counts is that the placed file is the approved one.
 */
export async function placeStagedAt(from: Dir, fromName: string, to: Dir, toName: string, approved: { bytes: number; sha256: string }, o: { createOnly?: boolean } = {}): Promise<BigIntStats> {
  // O_NONBLOCK and a regular file only: a process that swapped the staged name for a FIFO would
  // otherwise hold a thread-pool thread in open(2) for good (four of them stop every file call).
  const fd = await openFd(from.at(fromName), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw err.code === "ELOOP" || err.code === "ENOENT" ? new ApiError("conflict", "The staged upload changed while it waited for approval") : err;
  });
  try {
    // The approved size first: a staged file grown (or made sparse and huge) is refused without
    // reading it, and the hash reads no more than the approved bytes.
    const sizeMatches = async () => Number((await fstatFd(fd, { bigint: true })).size) === approved.bytes;
    const st = await fstatFd(fd, { bigint: true });
    if (!st.isFile() || Number(st.size) !== approved.bytes) throw new ApiError("conflict", "The staged upload changed while it waited for approval");
    const matches = async () => (await hashFd(fd, approved.bytes)) === approved.sha256 && (await sizeMatches());
    return await putInPlace(fd, from, fromName, to, toName, { createOnly: o.createOnly === true, check: matches });
  } finally {
    await closeFd(fd).catch(() => {});
  }
}

/**
 * Puts the file open as `fd` (named `fromName` in `from`) in place as `toName` in `to`: by rename,
 * or with `createOnly` by link(2), which fails if a file appeared meanwhile (another program's
 * file is never overwritten by a create). Then the directory is fsynced and checked to be inside
 * the root, the inode at `toName` must be ours and `check()` must hold (exactly the intended bytes
 * landed) — else the previous file is restored (kept as a hard link until then) and 409/403.
 */
async function putInPlace(fd: number, from: Dir, fromName: string, to: Dir, toName: string, o: { createOnly: boolean; check(): Promise<boolean> }): Promise<BigIntStats> {
  let backup: string | undefined;
  let placed = false;
  try {
    if (o.createOnly) {
      try {
        await link(from.at(fromName), to.at(toName));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new ApiError("conflict", "File already exists", { expectedRevision: null });
        throw err;
      }
      placed = true;
      await unlink(from.at(fromName)).catch(() => {});
    } else {
      if ((await lstatAt(to, toName))?.isFile()) {
        backup = `${TEMP_PREFIX}${randomUUID()}${TEMP_SUFFIX}`;
        await link(to.at(toName), to.at(backup)).catch(() => (backup = undefined));
      }
      await rename(from.at(fromName), to.at(toName));
      placed = true;
    }
    await fsyncDirectory(to.self);
    await to.verify();
    const st = await fstatFd(fd, { bigint: true });
    const now = await lstatAt(to, toName);
    if (!now || BigInt(now.ino) !== st.ino || !(await o.check())) {
      throw new ApiError("conflict", "The file was changed by another program while it was being written");
    }
    return st;
  } catch (err) {
    // Undo: the previous file back, or the new one removed.
    if (placed) await (backup ? rename(to.at(backup), to.at(toName)) : unlink(to.at(toName))).catch(() => {});
    throw err;
  } finally {
    if (backup) await unlink(to.at(backup)).catch(() => {});
  }
}

/**
 * sha256 of the first `limit` bytes of `fd` (fewer when the file is shorter); the next chunk is
 * read (thread pool) while this one is hashed.
 */
async function hashFd(fd: number, limit: number): Promise<string> {
  const hash = createHash("sha256");
  const chunk = Math.max(1, Math.min(1 << 22, limit));
  let [cur, next] = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  let pos = 0;
  let reading = readFd(fd, cur, 0, Math.min(cur.length, limit), 0);
  for (;;) {
    const n = await reading;
    if (n === 0) break;
    pos += n;
    reading = pos < limit ? readFd(fd, next, 0, Math.min(next.length, limit - pos), pos) : Promise.resolve(0);
    hash.update(cur.subarray(0, n));
    [cur, next] = [next, cur];
  }
  return hash.digest("hex");
}

async function sameBytes(fd: number, bytes: Buffer): Promise<boolean> {
  const st = await fstatFd(fd, { bigint: true });
  if (Number(st.size) !== bytes.length) return false;
  const back = await readAll({ fd, stat: st, read: (b, off, len, pos) => readFd(fd, b, off, len, pos), close: async () => {} });
  return back.equals(bytes);
}

/**
 * Removes `name` from `dir`. A symlink is removed itself; a directory only with `recursive`, and
 * then walked through held descriptors, never following a symlink at any depth — an entry swapped
 * for a link while we walk is unlinked, not entered.
 */
export async function removeAt(dir: Dir, name: string, o: { recursive: boolean }): Promise<void> {
  let child: Dir;
  try {
    child = await openChildDir(dir, name);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR") return unlink(dir.at(name));
    throw err;
  }
  try {
    const names = await readdir(child.self);
    if (names.length > 0 && !o.recursive) throw new ApiError("directory_not_empty", "Directory is not empty; pass recursive: true");
    for (const n of names) await removeAt(child, n, o);
  } finally {
    await child.close();
  }
  await rmdir(dir.at(name));
}

/** Renames `fromName` in `fromDir` to `toName` in `toDir` (both held); then both are checked to be inside. */
export async function renameAt(fromDir: Dir, fromName: string, toDir: Dir, toName: string): Promise<void> {
  await rename(fromDir.at(fromName), toDir.at(toName));
  try {
    await toDir.verify();
  } catch (err) {
    // The target folder left the root meanwhile: take the entry back.
    await rename(toDir.at(toName), fromDir.at(fromName)).catch(() => {});
    throw err;
  }
}
