/**
 * Revisions: opaque strings that change whenever a file's content may have changed.
 * Built from a bigint stat — mtime in nanoseconds, size and inode. Server writes replace the file by
 * rename, so each one gets a new inode and thus a new revision even within the same millisecond and
 * at the same size. Clients only compare revisions for equality.
 */
import { statSync, type BigIntStats } from "node:fs";
import { lstat, stat } from "node:fs/promises";

/** The revision of a stat result (files and directories alike). */
export function revisionOf(st: BigIntStats): string {
  return `${st.mtimeNs.toString(36)}-${st.size.toString(36)}-${st.ino.toString(36)}`;
}

/** mtime in integer milliseconds of a bigint stat. */
export function mtimeMsOf(st: BigIntStats): number {
  return Number(st.mtimeNs / 1_000_000n);
}

/** bigint stat that answers undefined for a missing path; `follow` = stat, else lstat. */
export async function statBig(p: string, follow = true): Promise<BigIntStats | undefined> {
  try {
    return follow ? await stat(p, { bigint: true }) : await lstat(p, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw err;
  }
}

/** The current revision of `p`, or null when it does not exist; `follow` = stat, else lstat. */
export async function currentRevision(p: string, follow = true): Promise<string | null> {
  const st = await statBig(p, follow);
  return st ? revisionOf(st) : null;
}

/**
 * The revision of `p` with one synchronous stat, or "" when it is missing or unreadable: the key
 * of answers cached until a file changes (one short syscall per request, no thread-pool hop).
 */
export function revisionSync(p: string): string {
  try {
    return revisionOf(statSync(p, { bigint: true }));
  } catch {
    return "";
  }
}
