/** A byte-exact listing of a folder tree: sorted relative path, type, size, sha256 and mode of every entry. */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";

export type Snapshot = Map<string, string>;

/**
 * Snapshots `root` (empty when it does not exist); `exclude(rel)` leaves an entry out (and, for a
 * folder, everything below it).
 */
export async function snapshotTree(root: string, exclude: (rel: string) => boolean = () => false): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (
      await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (dir === root && err.code === "ENOENT") return [];
        throw err;
      })
    ).sort();
    for (const name of names) {
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (exclude(r)) continue;
      const st = await lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        await walk(full, r);
      } else if (st.isSymbolicLink()) {
        out.set(r, `link -> ${await readlink(full)}`);
      } else if (st.isFile()) {
        out.set(r, `file ${st.size} ${mode} ${createHash("sha256").update(await readFile(full)).digest("hex")}`);
      } else {
        out.set(r, `other ${mode}`);
      }
    }
  };
  await walk(root, "");
  return out;
}

/** Entries added, removed and changed between two snapshots. */
export function diffSnapshots(before: Snapshot, after: Snapshot): { added: string[]; removed: string[]; changed: string[] } {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const [k, v] of after) {
    if (!before.has(k)) added.push(k);
    else if (before.get(k) !== v) changed.push(k);
  }
  for (const k of before.keys()) if (!after.has(k)) removed.push(k);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}
