/**
 * A live mirror of a directory tree: one walk, then kept current by `fs.watch`, reporting
 * confirmed, coalesced changes.
 *
 * Measured on Node 20.20 / Linux: `fs.watch(dir, {recursive: true})` reports only the new name of
 * a rename, goes blind under a renamed directory, and follows symlinked directories out of the
 * tree. So this module watches each real directory with its own non-recursive `fs.watch` (one
 * inotify watch each, cheap), which reports both names of a rename and never follows symlinks
 * (we only watch directories found by `lstat`). Raw events only mark paths dirty; every dirty path
 * is coalesced for `coalesceMs`, then confirmed with `lstat` against the mirror, so 1000 appends
 * become one change and an editor's tmp+rename becomes one `modify` of the target.
 *
 * It is the server's one directory watcher: the file catalog mirrors the whole workspace with it,
 * and the workspace-config reload watcher (workspace/reload-events.ts) mirrors only the config
 * paths (via `exclude`), using `onDirty` for synchronous cache invalidation and `settled` to know
 * when its cache may be trusted.
 */
import { watch, type BigIntStats, type FSWatcher } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { openChildDir, openRoot, type Dir } from "./anchored.ts";
import { LIMITS } from "../limits.ts";
import path from "node:path";

export type EntryKind = "file" | "dir";

/** What the mirror knows about one entry. */
export interface MirrorEntry {
  kind: EntryKind;
  size: number;
  mtimeMs: number;
  /** Inode number (to tell a replaced directory and to pair the two ends of a rename). */
  ino: number;
  revision: string;
}

/**
 * Confirmed changes, in an order that replays correctly on a copy of the tree:
 * removes, then moves, then adds and modifies sorted by path (parents before children).
 * `remove` and `move` apply to the path and everything under it.
 */
export type TreeChange =
  | { type: "add"; rel: string; entry: MirrorEntry }
  | { type: "modify"; rel: string; entry: MirrorEntry }
  | { type: "remove"; rel: string; entry: MirrorEntry }
  | { type: "move"; from: string; to: string; entry: MirrorEntry };

export interface TreeMirrorOptions {
  /** Real path of the root directory. */
  root: string;
  /** Paths never walked, watched or reported; must also answer true for everything below them. */
  exclude(rel: string): boolean;
  revision(st: BigIntStats): string;
  onChanges(changes: TreeChange[]): void;
  /** Per-path coalescing window (default 50 ms). */
  coalesceMs?: number;
  /** Minimum interval of the re-walk of directories whose watcher failed (default 2000 ms). */
  pollMs?: number;
  log?: (level: "warn" | "debug", msg: string, attrs?: Record<string, unknown>) => void;
  /** fs.watch, replaceable to inject faults (ENOSPC, watcher errors) in tests. */
  watchFn?: typeof watch;
  /**
   * Synchronous notice, in the fs.watch callback itself, of every path marked dirty (before the
   * coalescing window): for caches that must not serve a value a change already made stale.
   */
  onDirty?(rel: string): void;
  /** Cap on fs.watch handles; directories past it are polled (and the mirror is not `settled`). */
  maxWatchers?: number;
  /** A cap shared with other mirrors (the catalog's share of the user's inotify watches). */
  budget?: WatchBudget;
  /**
   * Also mirror symbolic links, as leaf entries of kind "file" (never followed), so that adding,
   * replacing or removing a link is reported like any other change of a name.
   */
  links?: boolean;
  /** Name used in log messages (default "catalog watcher"). */
  name?: string;
  /**
   * Cap on mirrored entries: past it the walk stops with MirrorOverflow and `onOverflow` runs once
   * (the owner drops the mirror): a workspace of millions of files must not fill the heap.
   */
  maxEntries?: number;
  onOverflow?(): void;
}

/** The tree holds more entries than `maxEntries`. */
export class MirrorOverflow extends Error {}

/** A number of fs.watch handles several mirrors draw from; each returns its own when it lets go. */
export class WatchBudget {
  used = 0;
  constructor(readonly max: number) {}
}

/**
 * How much to look at a dirty path: lstat only; named by a raw event (a directory is then
 * re-watched and listed: it may have been deleted and re-created with the same inode number,
 * which leaves the old watch dead); list its children; re-walk its subtree.
 */
const CHECK = 0;
const SUSPECT = 1;
const SHALLOW = 2;
const DEEP = 3;
type Mode = typeof CHECK | typeof SUSPECT | typeof SHALLOW | typeof DEEP;

interface Removed {
  rel: string;
  entry: MirrorEntry;
  /** Every entry that was under `rel` (not `rel` itself). */
  below: Map<string, MirrorEntry>;
}

/** State of one reconcile batch. */
interface Batch {
  removed: Removed[];
  /** Every added path, parents first. */
  added: string[];
  modified: string[];
  /** Paths added or removed as a whole in this batch: their descendants need no own check. */
  tops: Set<string>;
  /**
   * Folders of this batch held open, reached from the root without following a symlink (fs/anchored.ts):
   * every lstat and listing goes through them, so a folder swapped for a link to the outside shows
   * nothing of the outside. Undefined: not a real folder inside (any more).
   */
  dirs: Map<string, Promise<Dir | undefined>>;
  /** Directories that disappeared: their parents get listed again. */
  rescanParents: Set<string>;
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i === -1 ? "" : rel.slice(0, i);
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function kindOf(st: BigIntStats, links = false): EntryKind | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "dir";
  if (links && st.isSymbolicLink()) return "file"; // a leaf: never followed
  return undefined; // symlinks (unless `links`), FIFOs, sockets, devices: never mirrored
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** lstat, or undefined when the entry cannot be seen (missing, or EACCES/EIO: invisible to clients too). */
async function lstatOrUndefined(p: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(p, { bigint: true });
  } catch {
    return undefined;
  }
}

/** Code-unit order (what `<` does on JS strings), the order of every listing we serve. */
export function lowerBound(arr: string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The mirror of one tree. `start()` walks it once; changes then arrive through `onChanges`. */
export class TreeMirror {
  readonly root: string;
  /** Every mirrored entry by root-relative path ("a/b.txt"); the root itself is not in it. */
  readonly entries = new Map<string, MirrorEntry>();
  private readonly children = new Map<string, Set<string>>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly degraded = new Set<string>();
  private pending = new Map<string, Mode>();
  private holds = 0;
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private rootIno = -1;
  private rootMissing = false;
  private closed = false;
  private sorted: string[] | undefined = [];
  private readonly coalesceMs: number;
  private readonly pollMs: number;
  private readonly name: string;
  /** Batches queued or running (see `settled`). */
  private inFlight = 0;
  private capWarned = false;
  /** Raw events per watched folder since the last flush, and folders polled after a storm until then. */
  private readonly rawCounts = new Map<string, number>();
  private rawTotal = 0;
  private overflowed = false;
  private readonly stormUntil = new Map<string, number>();

  constructor(private readonly opts: TreeMirrorOptions) {
    this.root = opts.root;
    this.coalesceMs = opts.coalesceMs ?? 50;
    this.pollMs = opts.pollMs ?? 2_000;
    this.name = opts.name ?? "catalog watcher";
  }

  private kind(st: BigIntStats): EntryKind | undefined {
    return kindOf(st, this.opts.links);
  }

  /** The initial walk (no changes are reported for it). */
  start(): Promise<void> {
    return this.run(async () => {
      const batch = this.newBatch();
      const st = await lstatOrUndefined(this.root);
      if (!st || !st.isDirectory()) {
        this.rootMissing = true;
        this.markDegraded("");
        return;
      }
      await this.attachRoot(st, batch);
    });
  }

  /** Number of directories watched by fs.watch (for tests and the benchmark). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Directories currently re-walked by polling because their watcher failed. */
  get degradedCount(): number {
    return this.degraded.size;
  }

  /**
   * True when every directory is watched and no raw event is waiting or being confirmed: then the
   * mirror (and anything derived from the tree since the last `onDirty`) is current, up to events
   * the kernel has not delivered yet.
   */
  get settled(): boolean {
    return !this.closed && this.pending.size === 0 && this.inFlight === 0 && this.degraded.size === 0;
  }

  /**
   * Confirms `rels` now (through the same queue as watcher batches) and resolves once their
   * changes were reported. Used after the server's own writes so the event exists before the
   * response; the watcher's echo later finds the mirror up to date and reports nothing.
   */
  sync(rels: string[]): Promise<void> {
    return this.run(() => this.reconcileBatch(new Map(rels.map((r) => [r, CHECK as Mode]))));
  }

  /**
   * Holds the watcher's own batches while the server writes (released by the returned function):
   * the server's sync reports its changes in request order, and a watcher batch flushed midway
   * would report them first, sorted by path instead.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0 && this.pending.size > 0) this.timer ??= setTimeout(() => this.flush(), this.coalesceMs);
    };
  }

  /** Resolves when every batch queued so far is done (a consistent moment for a snapshot). */
  idle(): Promise<void> {
    return this.run(async () => {});
  }

  /** All mirrored paths in code-unit order (cached until the set of paths changes). */
  sortedPaths(): string[] {
    if (!this.sorted) this.sorted = [...this.entries.keys()].sort();
    return this.sorted;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.timer = this.pollTimer = undefined;
    for (const [rel, w] of [...this.watchers]) this.forget(rel, w);
    this.pending.clear();
  }

  // ---- raw events ---------------------------------------------------------------------------

  private abs(rel: string): string {
    return rel === "" ? this.root : path.join(this.root, rel);
  }

  private run(fn: () => Promise<void>): Promise<void> {
    this.inFlight++;
    const next = this.queue.then(() => (this.closed ? undefined : fn())).finally(() => this.inFlight--);
    // The queue itself never rejects, so one failed batch does not stop the next ones.
    this.queue = next.catch((err) => {
      // An overflow is the owner's to report (onOverflow).
      if (!(err instanceof MirrorOverflow)) this.opts.log?.("warn", `${this.name} batch failed`, { error: String(err) });
    });
    return next;
  }

  private enqueue(rel: string, mode: Mode): void {
    if (this.closed) return;
    const prev = this.pending.get(rel);
    if (prev === undefined || prev < mode) this.pending.set(rel, mode);
    this.opts.onDirty?.(rel);
    this.timer ??= setTimeout(() => this.flush(), this.coalesceMs);
  }

  private flush(): void {
    this.timer = undefined;
    this.rawCounts.clear();
    this.rawTotal = 0;
    if (this.holds > 0) return; // resumed by the hold's release
    const batch = this.pending;
    this.pending = new Map();
    void this.run(() => this.reconcileBatch(batch)).catch(() => {});
  }

  private onRaw(dirRel: string, filename: string | Buffer | null): void {
    if (this.closed) return;
    const count = (this.rawCounts.get(dirRel) ?? 0) + 1;
    this.rawCounts.set(dirRel, count);
    if (count > LIMITS.watchStormEvents) return this.breakStorm(dirRel);
    if (++this.rawTotal > LIMITS.watchStormTotalEvents) return this.breakSpreadStorm();
    if (filename === null || filename === undefined) {
      this.enqueue(dirRel, SHALLOW);
      return;
    }
    const name = filename.toString();
    if (name === "" || name.includes("/")) {
      this.enqueue(dirRel, SHALLOW);
      return;
    }
    const rel = join(dirRel, name);
    if (!this.opts.exclude(rel)) this.enqueue(rel, SUSPECT);
    // A watched directory reports its own move/deletion under its own name: check it too.
    if (name === path.basename(this.abs(dirRel))) this.enqueue(dirRel, SUSPECT);
  }

  /**
   * A folder flooding us with events (see LIMITS.watchStormEvents): its watch is dropped — the
   * flush that would reset the count cannot run while the flood lasts — and it is polled until
   * the cool-down ends. Changes are still found, by listing it every poll.
   */
  private breakStorm(rel: string, quiet = false): void {
    const w = this.watchers.get(rel);
    if (!w) return; // already dropped: events the kernel had queued for the old watch
    this.forget(rel, w);
    this.rawCounts.delete(rel);
    this.stormUntil.set(rel, Date.now() + LIMITS.watchStormCooldownMs);
    if (!quiet) this.opts.log?.("warn", `${this.name}: a folder changes too fast to watch, polling it for a while`, { dir: rel });
    this.markDegraded(rel);
    this.enqueue(rel, SHALLOW);
  }

  /**
   * A flood spread over many folders (see LIMITS.watchStormTotalEvents): no single folder stands
   * out, so every folder that delivered an event since the last flush is dropped and polled.
   * A busy folder of the user's may be among them; it is still listed every poll.
   */
  private breakSpreadStorm(): void {
    const folders = [...this.rawCounts.keys()];
    this.rawTotal = 0;
    for (const rel of folders) this.breakStorm(rel, true);
    this.opts.log?.("warn", `${this.name}: many folders change too fast to watch, polling them for a while`, { folders: folders.length });
  }

  /** Watches a directory before it is listed, so nothing created in between is missed. */
  private watchDir(rel: string): boolean {
    if (this.closed || this.watchers.has(rel)) return true;
    const until = this.stormUntil.get(rel);
    if (until !== undefined && until > Date.now()) {
      this.markDegraded(rel);
      return false;
    }
    this.stormUntil.delete(rel);
    const budget = this.opts.budget;
    const cap = this.opts.maxWatchers !== undefined && this.watchers.size >= this.opts.maxWatchers ? this.opts.maxWatchers : budget && budget.used >= budget.max ? budget.max : undefined;
    if (cap !== undefined) {
      // Logged once: past the cap every poll would retry (and fail) for each such directory.
      if (!this.capWarned) this.opts.log?.("warn", `${this.name}: more than ${cap} folders to watch, polling the rest`, { root: this.root });
      this.capWarned = true;
      this.markDegraded(rel);
      return false;
    }
    let w: FSWatcher;
    try {
      w = (this.opts.watchFn ?? watch)(this.abs(rel), { persistent: false }, (_type, name) => this.onRaw(rel, name));
    } catch (err) {
      // ENOSPC (inotify watches exhausted), EMFILE, EACCES: poll this directory instead.
      this.opts.log?.("warn", `${this.name} unavailable, polling instead`, { dir: rel, code: errCode(err) });
      this.markDegraded(rel);
      return false;
    }
    w.on("error", (err) => {
      this.opts.log?.("warn", `${this.name} error, polling instead`, { dir: rel, code: errCode(err) });
      this.forget(rel, w);
      this.markDegraded(rel);
      this.enqueue(rel, SHALLOW);
    });
    this.watchers.set(rel, w);
    if (budget) budget.used++;
    this.degraded.delete(rel);
    return true;
  }

  /** Closes the watcher `w` of `rel`; the shared budget gets it back only while it was the current one. */
  private forget(rel: string, w: FSWatcher): void {
    if (this.watchers.get(rel) === w) {
      this.watchers.delete(rel);
      if (this.opts.budget) this.opts.budget.used--;
    }
    w.close();
  }

  private unwatch(rel: string): void {
    const w = this.watchers.get(rel);
    if (w) this.forget(rel, w);
    this.degraded.delete(rel);
  }

  private markDegraded(rel: string): void {
    this.degraded.add(rel);
    this.schedulePoll(this.pollMs);
  }

  private schedulePoll(delay: number): void {
    if (this.closed || this.pollTimer) return;
    this.pollTimer = setTimeout(() => {
      const started = Date.now();
      void this.run(async () => {
        // Folders a storm dropped and that have since vanished would otherwise stay listed forever.
        for (const [rel, until] of this.stormUntil) if (until <= started) this.stormUntil.delete(rel);
        const batch = new Map<string, Mode>();
        for (const rel of this.degraded) {
          // Try to watch again (inotify watches may have been freed), then list it anyway.
          if (rel === "" ? !this.rootMissing : this.entries.get(rel)?.kind === "dir") {
            if (this.watchDir(rel)) this.degraded.delete(rel);
          }
          batch.set(rel, rel === "" && this.rootMissing ? CHECK : SHALLOW);
        }
        await this.reconcileBatch(batch);
      })
        .catch(() => {}) // logged by run(); a failed poll must not become an unhandled rejection
        .finally(() => {
          this.pollTimer = undefined;
          // A slow re-walk (huge degraded tree) is spaced out so polling never takes over the CPU.
          if (this.degraded.size > 0) this.schedulePoll(Math.max(this.pollMs, 5 * (Date.now() - started)));
        });
    }, delay);
    this.pollTimer.unref?.();
  }

  // ---- reconcile ----------------------------------------------------------------------------

  private newBatch(): Batch {
    return { removed: [], added: [], modified: [], tops: new Set(), dirs: new Map(), rescanParents: new Set() };
  }

  private async reconcileBatch(dirty: Map<string, Mode>): Promise<void> {
    if (this.closed || dirty.size === 0) return;
    const batch = this.newBatch();
    try {
      for (const rel of [...dirty.keys()].sort()) await this.reconcile(rel, dirty.get(rel)!, batch);
      // Deleting a tree may report only some of its files: list the parent of every vanished directory.
      for (const parent of batch.rescanParents) await this.reconcile(parent, SHALLOW, batch);
    } finally {
      // Whatever the batch already changed in the mirror is reported, even if a step failed.
      if (!this.closed) this.emit(batch);
      for (const d of batch.dirs.values()) void d.then((dir) => dir?.close());
    }
  }

  private underTop(rel: string, batch: Batch): boolean {
    for (let p = rel; p !== ""; p = parentOf(p)) if (batch.tops.has(p)) return true;
    return false;
  }

  /** The real folder `rel`, held open for the batch (undefined when it is not one, or no longer inside). */
  private dirOf(rel: string, batch: Batch): Promise<Dir | undefined> {
    let p = batch.dirs.get(rel);
    if (!p) {
      p = (rel === "" ? openRoot(this.root) : this.dirOf(parentOf(rel), batch).then((d) => (d ? openChildDir(d, rel.slice(rel.lastIndexOf("/") + 1)) : undefined))).catch((err: unknown) => {
        // Not a folder (any more) is an answer; anything else (no descriptors left, EIO) is not:
        // that folder is polled again until it can be seen.
        const code = errCode(err);
        if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "ELOOP") this.markDegraded(rel);
        return undefined;
      });
      batch.dirs.set(rel, p);
    }
    return p;
  }

  /** Closes the held folder `rel` once its subtree was walked (a big tree never holds more than its depth open). */
  private release(rel: string, batch: Batch): void {
    const p = batch.dirs.get(rel);
    if (!p || rel === "") return;
    batch.dirs.delete(rel);
    void p.then((d) => d?.close());
  }

  /** lstat of `rel` through its held parent folder (undefined when missing, unreadable or not inside). */
  private async lstatIn(rel: string, batch: Batch): Promise<BigIntStats | undefined> {
    const dir = await this.dirOf(parentOf(rel), batch);
    return dir ? lstatOrUndefined(dir.at(rel.slice(rel.lastIndexOf("/") + 1))) : undefined;
  }

  private async reconcile(rel: string, mode: Mode, batch: Batch): Promise<void> {
    if (this.closed) return;
    if (rel === "") return this.reconcileRoot(mode, batch);
    if (this.opts.exclude(rel) || this.underTop(rel, batch)) return;
    if (this.rootMissing) return;
    const parent = parentOf(rel);
    if (parent !== "" && this.entries.get(parent)?.kind !== "dir") {
      // Unknown parent (e.g. `mkdir -p a/b/c`): confirm the parent, whose walk covers `rel`.
      return this.reconcile(parent, CHECK, batch);
    }
    // Containment: a parent swapped for a symlink must not let outside stats in.
    if (!(await this.dirOf(parent, batch))) return this.reconcile(parent, CHECK, batch);
    const st = await this.lstatIn(rel, batch);
    const kind = st ? this.kind(st) : undefined;
    let cur = this.entries.get(rel);
    if (cur && (kind !== cur.kind || (kind === "dir" && cur.ino !== Number(st!.ino)))) {
      this.removeTree(rel, batch);
      cur = undefined;
    }
    if (!st || !kind) return;
    if (!cur) {
      batch.tops.add(rel);
      await this.addTree(rel, st, batch);
      return;
    }
    const revision = this.opts.revision(st);
    if (revision !== cur.revision) {
      this.entries.set(rel, this.toEntry(st, kind, revision));
      if (kind === "file") batch.modified.push(rel);
    }
    if (kind !== "dir") return;
    if (mode === SUSPECT) {
      this.unwatch(rel);
      if (!(await this.rewatch(rel, st, batch))) return;
      await this.rescan(rel, SHALLOW, batch);
    } else if (mode >= SHALLOW) await this.rescan(rel, mode, batch);
  }

  /** Watches `rel` again and proves it is still the directory `st` describes. */
  private async rewatch(rel: string, st: BigIntStats, batch: Batch): Promise<boolean> {
    if (!this.watchDir(rel)) return true; // degraded: the poll lists it
    // The watch follows whatever the path names at this instant: if it is no longer the directory
    // we lstat-ed (swapped for a symlink), drop it rather than watch outside content.
    const again = await this.lstatIn(rel, batch);
    if (!again || !again.isDirectory() || again.ino !== st.ino) {
      this.unwatch(rel);
      // SUSPECT, not CHECK: the same folder may be back by then (a swap and its undo), and a
      // CHECK would keep its entry without watching or listing it — its files would never appear.
      this.enqueue(rel, SUSPECT);
      return false;
    }
    return true;
  }

  private async reconcileRoot(mode: Mode, batch: Batch): Promise<void> {
    const st = await lstatOrUndefined(this.root);
    if (!st || !st.isDirectory() || this.rootMissing || Number(st.ino) !== this.rootIno) {
      // The workspace folder itself was deleted or replaced (maybe with the same inode number):
      // everything in it is gone, and what is there now is walked afresh.
      for (const name of [...(this.children.get("") ?? [])]) this.removeTree(name, batch);
      this.unwatch("");
      if (!st || !st.isDirectory()) {
        if (!this.rootMissing) this.opts.log?.("warn", `${this.name}: root disappeared, polling for it`, { root: this.root });
        this.rootMissing = true;
        this.markDegraded("");
        return;
      }
      await this.attachRoot(st, batch);
      return;
    }
    if (mode === SUSPECT) {
      this.unwatch("");
      this.watchDir("");
    }
    if (mode >= SUSPECT) await this.rescan("", mode === DEEP ? DEEP : SHALLOW, batch);
  }

  private async attachRoot(st: BigIntStats, batch: Batch): Promise<void> {
    this.rootMissing = false;
    this.rootIno = Number(st.ino);
    this.children.set("", this.children.get("") ?? new Set());
    this.watchDir("");
    for (const name of await this.list("", batch)) {
      batch.tops.add(name);
      const cst = await this.lstatIn(name, batch);
      if (cst && this.kind(cst)) await this.addTree(name, cst, batch);
    }
  }

  /** Children names of a directory on disk (through its held folder), minus excluded ones ([] when it cannot be read). */
  private async list(rel: string, batch: Batch): Promise<string[]> {
    let names: string[];
    try {
      const dir = await this.dirOf(rel, batch);
      if (!dir) return [];
      names = await readdir(dir.self);
    } catch {
      return []; // vanished or unreadable: its parent's event (or the poll) will tell
    }
    return names.filter((n) => !this.opts.exclude(join(rel, n))).sort();
  }

  private async rescan(rel: string, mode: Mode, batch: Batch): Promise<void> {
    const names = new Set(await this.list(rel, batch));
    for (const n of this.children.get(rel) ?? []) names.add(n);
    for (const name of [...names].sort()) await this.reconcile(join(rel, name), mode === DEEP ? DEEP : CHECK, batch);
    this.release(rel, batch);
  }

  private toEntry(st: BigIntStats, kind: EntryKind, revision = this.opts.revision(st)): MirrorEntry {
    return { kind, size: kind === "file" ? Number(st.size) : 0, mtimeMs: Number(st.mtimeNs / 1_000_000n), ino: Number(st.ino), revision };
  }

  private setEntry(rel: string, entry: MirrorEntry): void {
    if (!this.entries.has(rel)) {
      if (this.opts.maxEntries !== undefined && this.entries.size >= this.opts.maxEntries) this.overflow();
      this.sorted = undefined;
    }
    this.entries.set(rel, entry);
    const parent = parentOf(rel);
    let set = this.children.get(parent);
    if (!set) this.children.set(parent, (set = new Set()));
    set.add(rel.slice(parent === "" ? 0 : parent.length + 1));
  }

  /** Adds `rel` and, for a directory, watches then walks it. */
  private async addTree(rel: string, st: BigIntStats, batch: Batch): Promise<void> {
    const kind = this.kind(st)!;
    this.setEntry(rel, this.toEntry(st, kind));
    batch.added.push(rel);
    if (kind !== "dir") return;
    this.children.set(rel, this.children.get(rel) ?? new Set());
    if (!(await this.rewatch(rel, st, batch))) return;
    const names = await this.list(rel, batch);
    // lstat a directory's entries concurrently (bounded by the libuv pool), recurse in order.
    const stats: Array<BigIntStats | undefined> = [];
    for (let i = 0; i < names.length; i += 64) {
      const chunk = names.slice(i, i + 64).map((n) => this.lstatIn(join(rel, n), batch).catch(() => undefined));
      stats.push(...(await Promise.all(chunk)));
    }
    for (let i = 0; i < names.length; i++) {
      const cst = stats[i];
      if (cst && this.kind(cst) && !this.closed) await this.addTree(join(rel, names[i]!), cst, batch);
    }
    this.release(rel, batch);
  }

  private overflow(): never {
    if (!this.overflowed) {
      this.overflowed = true;
      this.opts.onOverflow?.();
    }
    throw new MirrorOverflow(`more than ${this.opts.maxEntries} files and folders`);
  }

  /** Forgets `rel` and everything below it (closing their watchers). */
  private removeTree(rel: string, batch: Batch): void {
    const entry = this.entries.get(rel);
    if (!entry) return;
    const below = new Map<string, MirrorEntry>();
    const drop = (p: string) => {
      const names = this.children.get(p);
      if (names) {
        for (const n of names) {
          const c = join(p, n);
          const e = this.entries.get(c);
          if (e) below.set(c, e);
          drop(c);
        }
        this.children.delete(p);
      }
      this.entries.delete(p);
      this.unwatch(p);
    };
    drop(rel);
    const parent = parentOf(rel);
    this.children.get(parent)?.delete(rel.slice(parent === "" ? 0 : parent.length + 1));
    this.sorted = undefined;
    batch.removed.push({ rel, entry, below });
    batch.tops.add(rel);
    if (entry.kind === "dir") batch.rescanParents.add(parent);
  }

  // ---- reporting ----------------------------------------------------------------------------

  private emit(batch: Batch): void {
    const addedSet = new Set(batch.added);
    const removedAt = new Set(batch.removed.map((r) => r.rel));
    /** New paths whose content a move brings along (not reported as adds). */
    const carried = new Set<string>();
    const moves: Array<{ from: string; to: string; entry: MirrorEntry }> = [];
    const subRemoves: TreeChange[] = [];
    const modifies: TreeChange[] = [];
    const paired = new Set<Removed>();
    const byIno = new Map<string, Removed>();
    for (const r of batch.removed) byIno.set(`${r.entry.kind}:${r.entry.ino}`, r);

    // A vanished entry and an appeared one with the same inode are one rename. Candidates are
    // every new path not already carried by a move (parents first, so outer moves come first).
    for (const to of batch.added) {
      if (carried.has(to) || byIno.size === 0) continue;
      const entry = this.entries.get(to);
      if (!entry) continue;
      const r = byIno.get(`${entry.kind}:${entry.ino}`);
      if (!r || paired.has(r)) continue;
      // Only unambiguous moves: the source is not re-created and the target did not exist before.
      if (addedSet.has(r.rel) || removedAt.has(to)) continue;
      if (to.startsWith(r.rel + "/") || r.rel.startsWith(to + "/")) continue;
      paired.add(r);
      carried.add(to);
      moves.push({ from: r.rel, to, entry });
      if (entry.kind === "file" && entry.revision !== r.entry.revision) modifies.push({ type: "modify", rel: to, entry });
      if (entry.kind !== "dir") continue;
      // Differences between the moved subtree and what the walk found at the new place.
      for (const [p, old] of r.below) {
        const q = `${to}/${p.slice(r.rel.length + 1)}`;
        const now = this.entries.get(q);
        const qParent = parentOf(q);
        if (now && now.kind === old.kind) {
          carried.add(q);
          if (now.kind === "file" && now.revision !== old.revision) modifies.push({ type: "modify", rel: q, entry: now });
        } else if (qParent === to || carried.has(qParent)) {
          // (below is in walk order, parents first: a removed parent already covers its children)
          subRemoves.push({ type: "remove", rel: q, entry: old });
        }
      }
    }

    const targets = moves.map((m) => m.to);
    const underTarget = (rel: string) => targets.some((t) => rel === t || rel.startsWith(t + "/"));
    const byPath = (a: TreeChange, b: TreeChange) => {
      const x = a.type === "move" ? a.to : a.rel;
      const y = b.type === "move" ? b.to : b.rel;
      return x < y ? -1 : x > y ? 1 : 0;
    };
    const pre: TreeChange[] = [];
    const post: TreeChange[] = [...modifies];
    for (const rel of batch.added) {
      if (carried.has(rel)) continue;
      const entry = this.entries.get(rel);
      if (entry) (underTarget(rel) ? post : pre).push({ type: "add", rel, entry });
    }
    for (const rel of batch.modified) {
      const entry = this.entries.get(rel);
      if (entry && !addedSet.has(rel)) (underTarget(rel) ? post : pre).push({ type: "modify", rel, entry });
    }
    // Replay order: removes; new paths outside moved trees (parents of move targets among them);
    // the moves; then what changed inside the moved trees.
    const changes: TreeChange[] = [];
    for (const r of batch.removed) if (!paired.has(r)) changes.push({ type: "remove", rel: r.rel, entry: r.entry });
    changes.push(...pre.sort(byPath));
    for (const m of moves) changes.push({ type: "move", ...m });
    changes.push(...subRemoves.sort(byPath));
    const seen = new Set<string>();
    for (const c of post.sort(byPath)) {
      const rel = (c as { rel: string }).rel;
      if (!seen.has(rel)) changes.push(c);
      seen.add(rel);
    }
    if (changes.length > 0) this.opts.onChanges(changes);
  }
}
