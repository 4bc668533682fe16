/**
 * The catalog of file sessions: a per-workspace in-memory index of the tree (built by one walk
 * on first use, kept current by fs/watch.ts, dropped when the workspace's last session ends),
 * snapshots served from it, and a per-workspace ring buffer of change events.
 *
 * Event sequence numbers are per workspace, start at 1 and never repeat while the server runs
 * (they survive the index being dropped; a rebuild skips one number so an old cursor resets).
 */
import { readFileSync } from "node:fs";
import { realpath } from "node:fs/promises";
import { getHeapStatistics } from "node:v8";
import path from "node:path";
import { isTempFileName } from "../fs/atomic.ts";
import { hasGitSegment, isOutside } from "../fs/paths.ts";
import { lowerBound, MirrorOverflow, TreeMirror, WatchBudget, type MirrorEntry, type TreeChange } from "../fs/watch.ts";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import type { ServerContext } from "../context.ts";
import type { Workspace } from "../types.ts";
import { revisionOf } from "../fs/revision.ts";
import { EventLog, type LoggedEvent } from "../event-log.ts";
import type { FileSessions } from "./sessions.ts";

export type CatalogEventType = "write" | "delete" | "mkdir" | "rename";

export interface CatalogEvent extends LoggedEvent {
  type: CatalogEventType;
  path: string;
  toPath?: string;
  /** write only: the new revision, size and mtime of the file. */
  revision?: string;
  size?: number;
  mtimeMs?: number;
}

export interface CatalogItem {
  path: string;
  kind: "file" | "dir";
  size: number;
  mtimeMs: number;
  revision: string;
}

export interface SnapshotQuery {
  prefix?: string;
  after?: string;
  limit?: number;
  includeDirs?: boolean;
  excludeHeavyDirectories?: boolean;
}

export interface Snapshot {
  generatedAt: number;
  cursor: number;
  total: number;
  truncated: boolean;
  nextAfter?: string;
  items: CatalogItem[];
}

/** Directories `excludeHeavyDirectories` drops (at any depth). */
const HEAVY_DIRS = ["node_modules"];

/** True when a segment of `rel` is a heavy directory (substring tests: this runs per entry per snapshot). */
function isHeavy(rel: string): boolean {
  for (const d of HEAVY_DIRS) {
    const i = rel.indexOf(d);
    if (i === -1) continue;
    if (rel === d || rel.startsWith(d + "/") || rel.endsWith("/" + d) || rel.includes("/" + d + "/")) return true;
  }
  return false;
}

/** The live index of one workspace. */
class WorkspaceIndex {
  readonly mirror: TreeMirror;
  readonly ready: Promise<void>;

  constructor(readonly root: string, exclude: (rel: string) => boolean, onChanges: (c: TreeChange[]) => void, server: Pick<ServerContext, "log">, limit: { maxEntries: number; watchBudget: WatchBudget; onOverflow(): void }) {
    this.mirror = new TreeMirror({
      root,
      exclude,
      revision: revisionOf,
      onChanges,
      log: (level, msg, attrs) => server.log[level](msg, attrs),
      maxEntries: limit.maxEntries,
      budget: limit.watchBudget,
      onOverflow: limit.onOverflow,
    });
    this.ready = this.mirror.start();
  }
}

/** Folders the catalog may watch, all workspaces together (see LIMITS.catalogWatchShare). */
function defaultMaxWatchers(): number {
  try {
    const budget = Number(readFileSync("/proc/sys/fs/inotify/max_user_watches", "utf8").trim());
    if (Number.isInteger(budget) && budget > 0) return Math.max(1, Math.min(LIMITS.catalogWatchMaxDirs, Math.floor(budget * LIMITS.catalogWatchShare)));
  } catch {
    // not Linux, or no /proc
  }
  return LIMITS.catalogWatchFallbackDirs;
}

/** The index cap of this process: catalogMaxEntries, or less when the heap is small. */
function defaultMaxEntries(): number {
  const byHeap = Math.floor((getHeapStatistics().heap_size_limit * LIMITS.catalogHeapShare) / LIMITS.catalogEntryBytes);
  return Math.min(LIMITS.catalogMaxEntries, byHeap);
}

/** Per-server catalog service: one index + event log per workspace with live sessions. */
export class Catalogs {
  private readonly logs = new Map<string, EventLog<CatalogEvent>>();
  private readonly indexes = new Map<string, Promise<WorkspaceIndex>>();
  private readonly onIdle: (workspaceId: string) => void;
  private readonly onRemoved: (workspaceId: string) => void;
  private readonly onSessionEnded: (session: { id: string }) => void;
  /** Callbacks to run when a given session ends (its event streams close). */
  private readonly sessionWatchers = new Map<string, Set<() => void>>();
  private closed = false;
  private readonly sessions: FileSessions;
  /** Workspaces whose index hit the cap, until when they answer 507 without walking again. */
  private readonly tooLarge = new Map<string, number>();
  readonly maxEntries: number;
  /** Inotify watches all workspaces' indexes share (see LIMITS.catalogWatchShare). */
  readonly watchBudget: WatchBudget;

  constructor(readonly server: Pick<ServerContext, "bus" | "log" | "config" | "sessions">, options: { maxEntries?: number; maxWatchers?: number } = {}) {
    this.maxEntries = options.maxEntries ?? defaultMaxEntries();
    this.watchBudget = new WatchBudget(options.maxWatchers ?? defaultMaxWatchers());
    this.onIdle = (id) => this.drop(id);
    this.onRemoved = (id) => {
      this.drop(id);
      this.logs.get(id)?.notify();
    };
    this.onSessionEnded = (session) => {
      for (const fn of [...(this.sessionWatchers.get(session.id) ?? [])]) fn();
      this.sessionWatchers.delete(session.id);
    };
    this.sessions = server.sessions;
    this.sessions.on("workspace-idle", this.onIdle);
    this.sessions.on("session-ended", this.onSessionEnded);
    server.bus.on("workspace.removed", this.onRemoved);
  }

  /** The event log of a workspace (created empty on first use). */
  log(workspaceId: string): EventLog<CatalogEvent> {
    let log = this.logs.get(workspaceId);
    if (!log) this.logs.set(workspaceId, (log = new EventLog<CatalogEvent>(workspaceId, LIMITS.catalogEventBuffer)));
    return log;
  }

  /** Runs `fn` once when session `sessionId` ends (closed, expired, revoked); returns an unsubscribe. */
  onSessionEnd(sessionId: string, fn: () => void): () => void {
    let set = this.sessionWatchers.get(sessionId);
    if (!set) this.sessionWatchers.set(sessionId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0 && this.sessionWatchers.get(sessionId) === set) this.sessionWatchers.delete(sessionId);
    };
  }

  /** The workspace's current event sequence (0 before any event). */
  cursor(workspaceId: string): number {
    return this.logs.get(workspaceId)?.seq ?? 0;
  }

  /** True while the workspace has a live index (for tests and status). */
  hasIndex(workspaceId: string): boolean {
    return this.indexes.has(workspaceId);
  }

  /** The workspace's index, built by one walk on first use. */
  async index(ws: Workspace): Promise<WorkspaceIndex> {
    if (this.closed) throw new ApiError("service_unavailable", "Server is shutting down");
    if ((this.tooLarge.get(ws.id) ?? 0) > Date.now()) throw this.tooLargeError();
    let p = this.indexes.get(ws.id);
    if (!p) {
      p = this.build(ws);
      this.indexes.set(ws.id, p);
      p.catch(() => {
        if (this.indexes.get(ws.id) === p) this.indexes.delete(ws.id);
      });
    }
    const idx = await p;
    await idx.ready;
    // The last session may have ended while the index was being built: nobody would drop it then.
    if (this.sessions.countForWorkspace(ws.id) === 0) this.drop(ws.id);
    return idx;
  }

  private async build(ws: Workspace): Promise<WorkspaceIndex> {
    let root: string;
    try {
      root = await realpath(ws.path);
    } catch {
      throw new ApiError("file_not_found", "Workspace folder does not exist");
    }
    const exclude = await this.excluder(root);
    const log = this.log(ws.id);
    const onOverflow = () => {
      // The whole index goes (a partial one would tell clients that files are missing); sessions
      // following events get a reset, and their next snapshot the 507.
      this.tooLarge.set(ws.id, Date.now() + LIMITS.catalogTooLargeRetryMs);
      this.server.log.warn("file catalog: workspace too large to index", { workspaceId: ws.id, maxEntries: this.maxEntries });
      this.drop(ws.id);
      log.notify();
    };
    const idx = new WorkspaceIndex(root, exclude, (changes) => this.record(log, changes), this.server, { maxEntries: this.maxEntries, watchBudget: this.watchBudget, onOverflow });
    try {
      await idx.ready;
    } catch (err) {
      idx.mirror.close();
      throw err instanceof MirrorOverflow ? this.tooLargeError() : err;
    }
    return idx;
  }

  private tooLargeError(): ApiError {
    return new ApiError("catalog_too_large", `The workspace holds more than ${this.maxEntries} files and folders: too many for the file catalog`, { maxEntries: this.maxEntries }, { headers: { "Retry-After": String(LIMITS.catalogTooLargeRetryMs / 1000) } });
  }

  /** .git, temp files of our atomic writes, and the server's data dir / token store / server.json when inside. */
  private async excluder(root: string): Promise<(rel: string) => boolean> {
    const protectedRels: string[] = [];
    for (const p of [this.server.config.dataDir, this.server.config.tokenStorePath, this.server.config.configPath]) {
      for (const form of new Set([path.resolve(p), await realpath(p).catch(() => path.resolve(p))])) {
        if (!isOutside(root, form)) {
          const rel = path.relative(root, form).split(path.sep).join("/");
          // The workspace itself being the data dir would hide everything; only strict insides count.
          if (rel !== "") protectedRels.push(rel);
        }
      }
    }
    return (rel) => {
      // Protected paths are invisible to sessions: never listed, never reported.
      if (hasGitSegment(rel.split("/"))) return true;
      if (isTempFileName(rel.slice(rel.lastIndexOf("/") + 1))) return true;
      for (const p of protectedRels) if (rel === p || rel.startsWith(p + "/")) return true;
      return false;
    };
  }

  /** Turns confirmed tree changes into events. */
  private record(log: EventLog<CatalogEvent>, changes: TreeChange[]): void {
    const now = Date.now();
    for (const c of changes) {
      switch (c.type) {
        case "remove":
          log.append({ type: "delete", path: c.rel }, now);
          break;
        case "move":
          log.append({ type: "rename", path: c.from, toPath: c.to }, now);
          break;
        case "add":
        case "modify":
          if (c.entry.kind === "dir") log.append({ type: "mkdir", path: c.rel }, now);
          else log.append({ type: "write", path: c.rel, revision: c.entry.revision, size: c.entry.size, mtimeMs: c.entry.mtimeMs }, now);
          break;
      }
    }
  }

  /**
   * Records changes the server itself just made (write, delete, mkdir, both ends of a rename) so
   * their events exist before the response; the watcher's echo then finds the index current.
   */
  async sync(ws: Workspace, rels: string[]): Promise<void> {
    const p = this.indexes.get(ws.id);
    if (!p) return; // no session has an index: nobody to tell
    const idx = await p;
    await idx.ready;
    // Folders created on the way (mkdir -p, a write's missing parents) are reported too.
    const all = new Set<string>();
    for (const rel of rels) {
      const segs = rel.split("/").filter((s) => s !== "");
      for (let i = 1; i <= segs.length; i++) all.add(segs.slice(0, i).join("/"));
    }
    await idx.mirror.sync([...all]);
  }

  /** Holds the workspace's watcher batches while the server writes (see TreeMirror.hold); returns the release. */
  hold(ws: Workspace): () => void {
    const p = this.indexes.get(ws.id);
    if (!p) return () => {};
    let release: (() => void) | undefined;
    let done = false;
    void p.then((idx) => {
      if (!done) release = idx.mirror.hold();
    }, () => {});
    return () => {
      done = true;
      release?.();
    };
  }

  /** A page of the index in code-unit order. */
  async snapshot(ws: Workspace, q: SnapshotQuery): Promise<Snapshot> {
    const idx = await this.index(ws);
    // Wait for batches in flight so the entries match the cursor exactly.
    await idx.mirror.idle();
    const cursor = this.cursor(ws.id);
    const generatedAt = Date.now();
    const { entries } = idx.mirror;
    const sorted = idx.mirror.sortedPaths();
    const limit = q.limit ?? 2000;
    const includeDirs = q.includeDirs !== false;
    const heavy = q.excludeHeavyDirectories === true;

    // Candidate ranges of `sorted`: [prefix itself] + [everything under prefix/]; "0" follows "/".
    const ranges: Array<[number, number]> = [];
    if (q.prefix) {
      const exact = lowerBound(sorted, q.prefix);
      if (sorted[exact] === q.prefix) ranges.push([exact, exact + 1]);
      ranges.push([lowerBound(sorted, q.prefix + "/"), lowerBound(sorted, q.prefix + "0")]);
    } else ranges.push([0, sorted.length]);

    const keep = (rel: string, e: MirrorEntry) => (includeDirs || e.kind !== "dir") && (!heavy || !isHeavy(rel));
    const filtered = !includeDirs || heavy;
    let total = 0;
    const items: CatalogItem[] = [];
    let truncated = false;
    for (const [lo, hi] of ranges) {
      const from = q.after !== undefined ? Math.max(lo, lowerBound(sorted, q.after + "\u0000")) : lo;
      if (!filtered) total += hi - lo;
      else {
        for (let i = lo; i < hi; i++) {
          const rel = sorted[i]!;
          if (keep(rel, entries.get(rel)!)) total++;
        }
      }
      for (let i = from; i < hi && !truncated; i++) {
        const rel = sorted[i]!;
        const e = entries.get(rel)!;
        if (!keep(rel, e)) continue;
        if (items.length === limit) {
          truncated = true;
          break;
        }
        items.push({ path: rel, kind: e.kind, size: e.size, mtimeMs: e.mtimeMs, revision: e.revision });
      }
    }
    const snap: Snapshot = { generatedAt, cursor, total, truncated, items };
    if (truncated) snap.nextAfter = items[items.length - 1]!.path;
    return snap;
  }

  /** Drops the index of a workspace (its last session ended); later cursors from before reset. */
  drop(workspaceId: string): void {
    const p = this.indexes.get(workspaceId);
    if (!p) return;
    this.indexes.delete(workspaceId);
    p.then((idx) => idx.mirror.close(), () => {});
    const log = this.logs.get(workspaceId);
    if (log) {
      log.gap();
    }
  }

  close(): void {
    this.closed = true;
    this.sessions.off("workspace-idle", this.onIdle);
    this.sessions.off("session-ended", this.onSessionEnded);
    this.server.bus.off("workspace.removed", this.onRemoved);
    this.sessionWatchers.clear();
    for (const id of [...this.indexes.keys()]) this.drop(id);
    for (const log of this.logs.values()) log.notify();
  }
}
