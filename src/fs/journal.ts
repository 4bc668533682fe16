/**
 * Crash-atomic multi-file writes (an import, a hub install, a skill delete, an edit of two config
 * files): all or nothing, even across a SIGKILL.
 *
 * 1. Every new content is staged as a temp file next to its target (fsynced), every folder it
 *    needs is created — all through the anchored path layer.
 * 2. A journal naming each target, its staged file and a backup name is written to
 *    `<dataDir>/journal/<id>.json` (fsynced): state "prepared".
 * 3. Each existing target is renamed to its backup name, each staged file to its target.
 * 4. The journal is rewritten with state "committed".
 * 5. Backups are removed (never following a symlink) and the journal deleted.
 *
 * At startup `recoverJournals` finishes what a crash interrupted: a "prepared" journal is rolled
 * back (backups renamed back, new files and made folders removed), a "committed" one forward
 * (backups removed). No staged file, backup or moved-aside folder survives a restart.
 */
import { randomUUID } from "node:crypto";
import { constants as C } from "node:fs";
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, unlink } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import type { Logger } from "../context.ts";
import { Dir, fsyncDirectory, lstatAt, removeAt, TEMP_PREFIX, TEMP_SUFFIX } from "./anchored.ts";
import { isTempFileName, writeFileAtomic } from "./atomic.ts";
import { GIT_ONLY, withResolver, type ProtectedPaths } from "./paths.ts";

interface Entry {
  /** Real path of the target (written, or removed when `staged` is absent). */
  target: string;
  staged?: string;
  backup: string;
  existed: boolean;
}

interface Journal {
  version: 1;
  state: "prepared" | "committed";
  /** The process writing it: a journal of another live process (a second server on the same data dir) is its own business. */
  pid?: number;
  entries: Entry[];
  /** Folders made for the writes, parents first (removed on roll-back when empty). */
  madeDirs: string[];
}

export interface FileChanges {
  /** Root-relative paths and their new contents (and mode; default: the old file's, else 0666 minus umask). */
  writes: { rel: string; data: string | Buffer; mode?: number }[];
  /** Root-relative paths of files or folders to remove (a symlink is removed itself). */
  removals: string[];
}

const tempName = () => `${TEMP_PREFIX}${randomUUID()}${TEMP_SUFFIX}`;

async function writeJournal(file: string, j: Journal): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(j) + "\n", { mode: 0o600 });
}

/**
 * Applies `changes` inside `root` crash-atomically (see the module comment). Containment and
 * protected paths are those of the path layer; `beforeCommit` runs once everything is staged,
 * right before the first target changes (re-checks of what the host approved).
 */
export async function commitFiles(dataDir: string, root: string, changes: FileChanges, o: { protect?: ProtectedPaths; beforeCommit?: () => Promise<void> } = {}): Promise<void> {
  await withResolver(root, o.protect ?? GIT_ONLY, async (resolver) => {
    const journal: Journal = { version: 1, state: "prepared", pid: process.pid, entries: [], madeDirs: [] };
    const file = path.join(dataDir, "journal", `${randomUUID()}.json`);
    // Planned first (nothing created yet), so that the journal names every name we are about to make.
    const writes = [];
    for (const w of changes.writes) {
      const r = await resolver.resolveNormalized(w.rel, { create: true });
      if (r.missing > 1) journal.madeDirs.push(path.join(r.dir.real, r.below[0]!));
      const staged = tempName();
      const backup = tempName();
      writes.push({ w, r, staged, backup });
      journal.entries.push({ target: r.real, staged: path.join(path.dirname(r.real), staged), backup: path.join(path.dirname(r.real), backup), existed: r.missing === 0 });
    }
    const removals = [];
    for (const rel of changes.removals) {
      await resolver.resolveNormalized(rel); // where a link leads must be inside too
      const r = await resolver.resolveNormalized(rel, { follow: false });
      if (r.missing > 0) throw new ApiError("conflict", `${rel} changed since the write was requested`);
      const backup = tempName();
      removals.push({ dir: r.dir, name: r.below[0]!, backup });
      journal.entries.push({ target: r.entry, backup: path.join(r.dir.real, backup), existed: true });
    }
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeJournal(file, journal);
    const places: { dir: Dir; name: string; staged?: string; backup: string; existed: boolean }[] = [];
    try {
      for (const { w, r, staged, backup } of writes) {
        const { dir, name } = await resolver.parentFor(r);
        const fh = await open(dir.at(staged), C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o666);
        try {
          await fh.writeFile(w.data);
          const old = await lstatAt(dir, name);
          if (w.mode !== undefined) await fh.chmod(w.mode);
          else if (old?.isFile()) await fh.chmod(old.mode & 0o7777);
          await fh.sync();
        } finally {
          await fh.close();
        }
        places.push({ dir, name, staged, backup, existed: r.missing === 0 });
      }
      for (const rm of removals) places.push({ ...rm, existed: true });
      if (o.beforeCommit) await o.beforeCommit();
      for (const p of places) {
        if (p.existed) await rename(p.dir.at(p.name), p.dir.at(p.backup));
        if (p.staged) await rename(p.dir.at(p.staged), p.dir.at(p.name));
      }
      for (const dir of new Set(places.map((p) => p.dir))) {
        await fsyncDirectory(dir.self);
        await dir.verify();
      }
      journal.state = "committed";
      await writeJournal(file, journal);
    } catch (err) {
      // Not committed: put everything back (the journal says exactly what to undo).
      await rollBack(journal);
      await unlink(file).catch(() => {});
      throw err;
    }
    for (const p of places) if (p.existed) await removeAt(p.dir, p.backup, { recursive: true }).catch(() => {});
    await unlink(file).catch(() => {});
  });
}

const exists = (p: string) => lstat(p).then(() => true, () => false);

/** Undoes a prepared journal: new files removed, backups back in place, made folders removed when empty. */
async function rollBack(j: Journal): Promise<void> {
  for (const e of [...j.entries].reverse()) {
    const placed = e.staged === undefined ? false : !(await exists(e.staged));
    if (e.staged && !placed) await unlink(e.staged).catch(() => {});
    if (await exists(e.backup)) {
      if (placed) await rm(e.target, { recursive: true, force: true }).catch(() => {});
      await rename(e.backup, e.target).catch(() => {});
    } else if (placed && !e.existed) {
      await unlink(e.target).catch(() => {});
    }
  }
  for (const d of [...j.madeDirs].reverse()) await removeEmptyTree(d);
}

/** Removes `dir` and its sub-folders while they hold no files (what a rolled-back write made). */
async function removeEmptyTree(dir: string): Promise<void> {
  let names: string[];
  try {
    if (!(await lstat(dir)).isDirectory()) return;
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) await removeEmptyTree(path.join(dir, n));
  await rmdir(dir).catch(() => {});
}

/** Startup: finishes every journal a crash left (see the module comment). Returns how many. */
export async function recoverJournals(dataDir: string, log: Logger): Promise<number> {
  const dir = path.join(dataDir, "journal");
  let names: string[];
  try {
    const all = await readdir(dir);
    // A journal killed while being written leaves only its temp file: nothing was changed yet.
    for (const n of all.filter(isTempFileName)) await unlink(path.join(dir, n)).catch(() => {});
    names = all.filter((n) => n.endsWith(".json"));
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const j = JSON.parse(await readFile(file, "utf8")) as Journal;
      if (j.pid !== undefined && j.pid !== process.pid && processExists(j.pid)) continue;
      if (j.state === "committed") {
        for (const e of j.entries) {
          if (e.existed) await rm(e.backup, { recursive: true, force: true });
          if (e.staged) await unlink(e.staged).catch(() => {});
        }
      } else await rollBack(j);
      await unlink(file);
      log.warn(`a multi-file write interrupted by the last shutdown was ${j.state === "committed" ? "completed" : "rolled back"}`, { files: j.entries.length });
    } catch (err) {
      log.error("a write journal could not be recovered", { file, error: String(err) });
    }
  }
  return names.length;
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
