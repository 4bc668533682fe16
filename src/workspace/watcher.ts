/**
 * A recursive directory watcher built from one non-recursive `fs.watch` per directory.
 *
 * Why not `fs.watch(dir, {recursive: true})`: on Linux it follows symlinks out of the tree
 * (an outside change surfaces as an event inside), stops for good when the watched folder is
 * deleted and re-created, and cannot be told which sub-folders matter. Here we decide which
 * directories to descend into (`descend`), never follow symlinks (lstat), cap the number of
 * watched directories, and re-attach when a folder appears again.
 */
import { watch, type FSWatcher } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

export type ChangeAction = "added" | "removed" | "updated";

export interface TreeWatcherOptions {
  /** The folder to watch (its own entries are watched; sub-folders only when `descend` says so). */
  root: string;
  /** Paths are reported relative to this folder, "/"-separated (may start with "../"). */
  base: string;
  /** Should the folder at `rel` be watched too? */
  descend(rel: string): boolean;
  /** Is a change of `rel` interesting at all? Uninteresting paths cost no syscall. */
  interesting(rel: string): boolean;
  /** Synchronous notice, in the fs.watch callback itself (used for cache invalidation). */
  onRaw(rel: string): void;
  /** Classified change (after an lstat), for reload events. */
  onChange(rel: string, action: ChangeAction): void;
  /** Cap on watched folders; past it the watcher reports itself degraded. */
  maxDirs: number;
  /** Called once when the tree could not be fully watched (caches must then not be trusted). */
  onDegraded(reason: string): void;
}

export class TreeWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  /** Known entry names per watched folder, to tell "added" from "updated". */
  private readonly entries = new Map<string, Set<string>>();
  private closed = false;
  private degraded = false;

  constructor(private readonly o: TreeWatcherOptions) {}

  /** Attaches to the root (when it exists) and the folders below it that `descend` selects. */
  async start(): Promise<void> {
    await this.attach(this.o.root);
  }

  get size(): number {
    return this.watchers.size;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.entries.clear();
  }

  private rel(abs: string): string {
    return path.relative(this.o.base, abs).split(path.sep).join("/");
  }

  private degrade(reason: string): void {
    if (this.degraded) return;
    this.degraded = true;
    this.o.onDegraded(reason);
  }

  /** Watches `dir`, then lists it and attaches to the sub-folders that matter. */
  private async attach(dir: string, reportNew = false): Promise<void> {
    if (this.closed || this.watchers.has(dir)) return;
    if (this.watchers.size >= this.o.maxDirs) {
      this.degrade(`more than ${this.o.maxDirs} folders to watch`);
      return;
    }
    let w: FSWatcher;
    try {
      // persistent:false: a watcher must never keep the process alive on its own.
      w = watch(dir, { persistent: false }, (_event, name) => this.onEvent(dir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") this.degrade(`watch failed: ${code ?? String(err)}`);
      return;
    }
    w.on("error", () => this.detach(dir));
    this.watchers.set(dir, w);
    let names: import("node:fs").Dirent[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch {
      this.detach(dir);
      return;
    }
    if (this.closed || this.watchers.get(dir) !== w) return;
    this.entries.set(dir, new Set(names.map((d) => d.name)));
    for (const d of names) {
      const child = path.join(dir, d.name);
      const rel = this.rel(child);
      // A folder that appeared while we run: what it already holds is new too.
      if (reportNew && this.o.interesting(rel)) this.o.onChange(rel, "added");
      // Dirent types come from lstat semantics: a symlink to a folder is not descended into.
      if (d.isDirectory() && this.o.descend(rel)) await this.attach(child, reportNew);
    }
  }

  private detach(dir: string): void {
    for (const [d, w] of this.watchers) {
      if (d === dir || d.startsWith(dir + path.sep)) {
        w.close();
        this.watchers.delete(d);
        this.entries.delete(d);
      }
    }
  }

  private onEvent(dir: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null || name === "") {
      // The folder itself changed (deleted or moved): report it and re-check it.
      const rel = this.rel(dir);
      this.o.onRaw(rel);
      void this.recheck(dir, rel);
      return;
    }
    const abs = path.join(dir, String(name));
    const rel = this.rel(abs);
    if (!this.o.interesting(rel)) return;
    this.o.onRaw(rel);
    void this.classify(dir, String(name), abs, rel);
  }

  private async recheck(dir: string, rel: string): Promise<void> {
    try {
      const st = await lstat(dir);
      if (st.isDirectory()) return;
    } catch {
      // gone
    }
    this.detach(dir);
    // The watched root itself is gone: nothing tells us when it comes back, so stop trusting caches.
    if (dir === this.o.root) this.degrade("watched folder removed");
    if (this.o.interesting(rel)) this.o.onChange(rel, "removed");
  }

  private async classify(dir: string, name: string, abs: string, rel: string): Promise<void> {
    let st: import("node:fs").Stats | undefined;
    try {
      st = await lstat(abs);
    } catch {
      st = undefined;
    }
    if (this.closed) return;
    const known = this.entries.get(dir);
    if (!st) {
      const wasKnown = known?.delete(name) ?? false;
      this.detach(abs);
      if (wasKnown) this.o.onChange(rel, "removed");
      return;
    }
    const action: ChangeAction = known?.has(name) ? "updated" : "added";
    known?.add(name);
    this.o.onChange(rel, action);
    if (st.isDirectory() && !this.watchers.has(abs) && this.o.descend(rel)) {
      await this.attach(abs, true);
      // Anything written into the new folder before its watcher existed is covered by this notice.
      this.o.onRaw(rel);
    }
  }
}
