/**
 * Reload events and the watcher behind them, per workspace.
 *
 * The server watches `opencode.json(c)` and `AGENTS.md` at the workspace root and, recursively,
 * `.opencode/{skills,commands,plugins,agents,agent}` (plus `.claude/skills` and the walk-up skill
 * folders, for the cache). Every change becomes at most one event per (workspace, reason) per
 * 750 ms, kept in a ring buffer of 500 with a per-workspace `seq`. The server's own writes are
 * recorded directly (and their watcher echo suppressed), so each is reported once. The same
 * watcher invalidates the in-memory cache (cache.ts).
 *
 * The watching itself is fs/watch.ts (the catalog's TreeMirror), one mirror per watched root,
 * restricted to the config paths by `exclude`: it brings lstat confirmation, rename pairing,
 * symlink containment, re-watching of deleted/re-created folders and the polling fallback. Raw
 * events invalidate the cache synchronously (`onDirty`), and the cache is trusted only while every
 * mirror is `settled`, so its 50 ms coalescing never lets a stale value be served.
 */
import { lstat } from "node:fs/promises";
import path from "node:path";
import { EventLog, type LoggedEvent } from "../event-log.ts";
import { isTempFileName } from "../fs/atomic.ts";
import { isInsideOrSame } from "../fs/paths.ts";
import { TreeMirror, type TreeChange } from "../fs/watch.ts";
import { revisionOf } from "../fs/revision.ts";
import { LIMITS } from "../limits.ts";
import type { ServerContext } from "../context.ts";
import type { Workspace } from "../types.ts";
import { ConfigCache, type CacheKind } from "./cache.ts";
import { readProjectOpencode, readWorkspaceConfig, relPosix, type WorkspaceConfigFiles } from "./opencode-config.ts";
import { jsonEqual } from "../formats/jsonc.ts";
import { mcpOf } from "./mcp.ts";
import { scanProjectSkills, type SkillScan } from "./skills.ts";
import { listCommands, workspaceCommandsDir, type CommandRecord } from "./commands.ts";
import { pluginFiles, projectPluginsDir } from "./plugins.ts";

export type ReloadReason = "plugins" | "skills" | "mcp" | "config" | "agents" | "commands";
export type ChangeAction = "added" | "removed" | "updated";
export type TriggerType = "skill" | "plugin" | "config" | "mcp" | "agent" | "command";

export interface ReloadTrigger {
  type: TriggerType;
  name?: string;
  action: ChangeAction;
  path?: string;
}

export interface ReloadEvent extends LoggedEvent {
  reason: ReloadReason;
  trigger: ReloadTrigger;
}


const WATCHED_OPENCODE_DIRS = new Set(["skills", "commands", "plugins", "agents", "agent"]);

/** Editor and OS noise that never means a configuration change. */
export function isIgnoredName(name: string): boolean {
  return (
    name === ".DS_Store" ||
    name === "Thumbs.db" ||
    name === "desktop.ini" ||
    name === "4913" || // vim's write probe
    /\.sw[a-p]$/.test(name) ||
    name.endsWith("~") ||
    name.startsWith(".#") ||
    (name.startsWith("#") && name.endsWith("#")) ||
    isTempFileName(name)
  );
}

interface Classified {
  kinds: CacheKind[];
  reason?: ReloadReason;
  type?: TriggerType;
  name?: string;
}

function stripMd(name: string): string {
  return name.replace(/\.md$/i, "");
}

/** Which caches a change of `rel` (workspace-relative, may start with "../") invalidates, and which event it is. */
export function classifyPath(rel: string): Classified {
  const all = rel.split("/");
  if (all.some((s) => s !== ".." && isIgnoredName(s))) return { kinds: [] };
  let up = 0;
  while (all[up] === "..") up++;
  const seg = all.slice(up);
  const [a, b] = seg;
  if (up > 0) {
    // Walk-up levels only matter for skills.
    if (seg.length === 1 && (a === ".git" || a === ".opencode" || a === ".claude")) return { kinds: ["skills"] };
    if ((a === ".opencode" || a === ".claude") && b === "skills") return skillChange(seg.slice(2));
    return { kinds: [] };
  }
  if (seg.length === 1) {
    if (a === "opencode.json" || a === "opencode.jsonc") return { kinds: ["config"], reason: "config", type: "config", name: a };
    if (a === "AGENTS.md") return { kinds: [], reason: "agents", type: "agent", name: "AGENTS.md" };
    if (a === ".opencode") return { kinds: ["config", "skills", "commands", "plugins"] };
    if (a === ".git" || a === ".claude") return { kinds: ["skills"] };
    if (a === "") return { kinds: ["config", "skills", "commands", "plugins"] };
    return { kinds: [] };
  }
  if (a === ".claude") return b === "skills" ? skillChange(seg.slice(2)) : { kinds: [] };
  if (a !== ".opencode") return { kinds: [] };
  if (seg.length === 2 && b === "openwork.json") return { kinds: ["config"] };
  const rest = seg.slice(2);
  const last = rest[rest.length - 1];
  switch (b) {
    case "skills":
      return skillChange(rest);
    case "commands":
      return { kinds: ["commands"], reason: "commands", type: "command", ...(last ? { name: stripMd(last) } : {}) };
    case "plugins":
      return { kinds: ["plugins"], reason: "plugins", type: "plugin", ...(last ? { name: last } : {}) };
    case "agents":
    case "agent":
      return { kinds: [], reason: "agents", type: "agent", ...(last ? { name: stripMd(last) } : {}) };
    default:
      return { kinds: [] };
  }
}

/** `rest` = the path below a skills folder. */
function skillChange(rest: string[]): Classified {
  const out: Classified = { kinds: ["skills"], reason: "skills", type: "skill" };
  if (rest.length >= 2 && rest[rest.length - 1] === "SKILL.md") out.name = rest[rest.length - 2];
  else if (rest.length >= 1) out.name = rest[0];
  return out;
}

/**
 * Is `rel` (workspace-relative, "../" for walk-up levels) mirrored by the reload watcher? The
 * config files at the root, `.git`, and `.opencode` / `.claude` with the config folders below
 * them (walk-up levels: skills only). False for everything below a path it is false for, as
 * TreeMirror's `exclude` requires.
 */
export function isWatchedPath(rel: string): boolean {
  const all = rel.split("/");
  let up = 0;
  while (all[up] === "..") up++;
  const s = all.slice(up);
  if (s.length === 0 || s.length > LIMITS.configWatchMaxDepth || s.some(isIgnoredName)) return false;
  const [a, b] = s;
  if (s.length === 1) return a === ".opencode" || a === ".claude" || a === ".git" || (up === 0 && (a === "opencode.json" || a === "opencode.jsonc" || a === "AGENTS.md"));
  if (a === ".claude" || up > 0) return (a === ".opencode" || a === ".claude") && b === "skills";
  if (a !== ".opencode") return false;
  return WATCHED_OPENCODE_DIRS.has(b!) || (s.length === 2 && b === "openwork.json");
}

/**
 * Two changes of one window become one trigger: for the same name the net effect wins
 * (created then written = added; written then deleted = removed; deleted then created = updated).
 */
export function mergeTriggers(a: ReloadTrigger, b: ReloadTrigger): ReloadTrigger {
  if (a.type !== b.type || (a.name !== undefined && b.name !== undefined && a.name !== b.name)) return b;
  let action: ChangeAction = b.action;
  if (a.action === "added" && b.action === "updated") action = "added";
  else if (a.action === "removed" && b.action === "added") action = "updated";
  const out: ReloadTrigger = { ...b, action };
  if (out.name === undefined && a.name !== undefined) out.name = a.name;
  return out;
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

/**
 * What an outside edit of opencode.json(c) changed: only `mcp` → an mcp event naming the
 * server, only `plugin` → a plugins event naming the spec, anything else → config.
 */
export function refineConfigChange(
  prev: Record<string, unknown> | undefined,
  next: Record<string, unknown> | undefined,
): { reason: ReloadReason; type: TriggerType; name?: string; action?: ChangeAction } {
  const config = { reason: "config" as const, type: "config" as const };
  if (!prev || !next) return config;
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  const changed = [...keys].filter((k) => !jsonEqual(prev[k], next[k]));
  if (changed.length !== 1) return config;
  if (changed[0] === "mcp") {
    const a = mcpOf(prev);
    const b = mcpOf(next);
    const names = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const n of names) {
      if (jsonEqual(a[n], b[n])) continue;
      const action: ChangeAction = !(n in a) ? "added" : !(n in b) ? "removed" : "updated";
      return { reason: "mcp", type: "mcp", name: n, action };
    }
    return { reason: "mcp", type: "mcp" };
  }
  if (changed[0] === "plugin") {
    const a = asList(prev.plugin);
    const b = asList(next.plugin);
    const added = b.find((x) => typeof x === "string" && !a.includes(x));
    if (typeof added === "string") return { reason: "plugins", type: "plugin", name: added, action: "added" };
    const removed = a.find((x) => typeof x === "string" && !b.includes(x));
    if (typeof removed === "string") return { reason: "plugins", type: "plugin", name: removed, action: "removed" };
    return { reason: "plugins", type: "plugin" };
  }
  return config;
}

interface Throttle {
  lastEmit: number;
  timer?: NodeJS.Timeout;
  pending?: ReloadTrigger;
}

/** A path the server itself wrote, with whether it existed before the write. */
export interface OwnWrite {
  rel: string;
  existed: boolean;
}

/** Project skills and their list answer (serialized once per cache generation). */
export interface CachedSkills {
  scan: SkillScan;
  body: Record<string, unknown>;
  json: Buffer;
}

/** Workspace commands and their list answer (serialized once per cache generation). */
export interface CachedCommands {
  records: CommandRecord[];
  body: Record<string, unknown>;
  json: Buffer;
}

/** Everything the server keeps per workspace for its configuration: watchers, cache, loaders, reload events. */
export class WorkspaceState {
  readonly cache = new ConfigCache(() => this.watching && this.mirrors.every((m) => m.settled));
  readonly log: EventLog<ReloadEvent>;
  private readonly throttles = new Map<ReloadReason, Throttle>();
  private readonly selfWrites = new Map<string, number>();
  private readonly mirrors: TreeMirror[] = [];
  /** True once every mirror made its first walk (the cache is trusted from then on). */
  private watching = false;
  private closed = false;
  /** Resolves once the watchers are attached (the cache is enabled then). */
  readonly ready: Promise<void>;
  /** Last engine reload attempt (rate limit). */
  lastEngineReload = 0;
  /** The OpenCode config as last seen (to name what an outside edit changed); updates are chained in order. */
  private lastOpencode: Record<string, unknown> | undefined;
  private configChain: Promise<void> = Promise.resolve();

  constructor(
    readonly workspace: Workspace,
    private readonly log_: ServerContext["log"],
    /** Folders above the workspace whose skills are discovered (walk-up), within the authorized root. */
    private readonly ancestors: string[],
    private readonly debounceMs: number = LIMITS.reloadDebounceMs,
    readonly homeDir: string = "",
  ) {
    this.log = new EventLog<ReloadEvent>(workspace.id, LIMITS.reloadEventBuffer);
    this.ready = this.start(ancestors);
  }

  // ---- cached loaders (the cache is dropped by the watcher and by the server's own writes)

  config(): Promise<WorkspaceConfigFiles> {
    return this.cache.get("config", () => readWorkspaceConfig(this.workspace.path));
  }

  /** The authorized root that contains the workspace: skills walk-up never goes above it. */
  get skillRoot(): string {
    return this.ancestors[this.ancestors.length - 1] ?? this.workspace.path;
  }

  skills(): Promise<CachedSkills> {
    return this.cache.get("skills", async () => {
      const scan = await scanProjectSkills(this.workspace.path, this.skillRoot, this.homeDir);
      const body: Record<string, unknown> = { items: scan.records.map((r) => r.item) };
      if (scan.skipped.length > 0) body.skipped = scan.skipped;
      return { scan, body, json: Buffer.from(JSON.stringify(body)) };
    });
  }

  commands(): Promise<CachedCommands> {
    return this.cache.get("commands", async () => {
      // A commands folder that a symlink places outside the workspace is not read.
      const records = await listCommands(this.workspace.path, relPosix(this.workspace.path, workspaceCommandsDir(this.workspace.path)), "workspace");
      const body = { items: records.map((r) => r.item) };
      return { records, body, json: Buffer.from(JSON.stringify(body)) };
    });
  }

  pluginFiles(): Promise<string[]> {
    return this.cache.get("plugins", async () => {
      return pluginFiles(this.workspace.path, relPosix(this.workspace.path, projectPluginsDir(this.workspace.path)));
    });
  }

  // ---- watching

  private async readOpencodeValue(): Promise<Record<string, unknown> | undefined> {
    try {
      return (await readProjectOpencode(this.workspace.path)).value;
    } catch {
      return undefined;
    }
  }

  /** Re-reads the OpenCode config in order with other config notices; `then` sees the previous value. */
  private chainConfig(then?: (prev: Record<string, unknown> | undefined, next: Record<string, unknown> | undefined) => void): Promise<void> {
    this.configChain = this.configChain
      .then(async () => {
        const next = await this.readOpencodeValue();
        const prev = this.lastOpencode;
        this.lastOpencode = next;
        if (then && !this.closed) then(prev, next);
      })
      // One failed link must not stop later notices.
      .catch((err: unknown) => this.log_.warn("config change notice failed", { error: String(err) }));
    return this.configChain;
  }

  private async start(ancestors: string[]): Promise<void> {
    this.lastOpencode = await this.readOpencodeValue();
    // Workspace paths are real paths, and so are their parents: a walk-up root's mirror paths
    // become workspace-relative by prefixing "../" per level.
    for (const root of [this.workspace.path, ...ancestors]) {
      if (this.closed) return;
      const up = relPosix(this.workspace.path, root);
      const toWs = (rel: string) => (up === "" || rel === "" ? up || rel : `${up}/${rel}`);
      const mirror = new TreeMirror({
        root,
        name: "workspace config watcher",
        // At walk-up levels this also leaves out the folder that leads down to the workspace.
        exclude: (rel) => !isWatchedPath(toWs(rel)),
        revision: revisionOf,
        links: true,
        maxWatchers: LIMITS.configWatchMaxDirs,
        onDirty: (rel) => this.invalidate(toWs(rel)),
        onChanges: (changes) => this.onChanges(changes, toWs),
        log: (level, msg, attrs) => this.log_[level](msg, { workspaceId: this.workspace.id, ...attrs }),
      });
      this.mirrors.push(mirror);
      await mirror.start();
    }
    if (this.closed) return;
    this.cache.invalidateAll();
    this.watching = true;
  }

  close(): void {
    this.closed = true;
    this.watching = false;
    for (const m of this.mirrors) m.close();
    for (const t of this.throttles.values()) if (t.timer) clearTimeout(t.timer);
    this.throttles.clear();
    this.log.notify();
  }

  private isSelfWrite(rel: string): boolean {
    const now = Date.now();
    for (const [p, until] of this.selfWrites) {
      if (until < now) {
        this.selfWrites.delete(p);
        continue;
      }
      if (rel === p || rel.startsWith(p + "/") || p.startsWith(rel + "/")) return true;
    }
    return false;
  }

  private invalidate(rel: string): void {
    for (const k of classifyPath(rel).kinds) this.cache.invalidate(k);
  }

  /** Confirmed changes of one mirror: a move is the removal of its old name and the addition of its new one. */
  private onChanges(changes: TreeChange[], toWs: (rel: string) => string): void {
    for (const c of changes) {
      if (c.type === "move") {
        this.onChange(toWs(c.from), "removed", false);
        this.onChange(toWs(c.to), "added", false);
      } else {
        this.onChange(toWs(c.rel), c.type === "add" ? "added" : c.type === "remove" ? "removed" : "updated", false);
      }
    }
  }

  /** One confirmed change of `rel` (the watcher's, or the server's own write when `own`). */
  private onChange(rel: string, action: ChangeAction, own: boolean): Promise<void> | undefined {
    // Also found by polling (no raw event then): the cache must drop what it had.
    this.invalidate(rel);
    const c = classifyPath(rel);
    if (!c.reason || !c.type) return undefined;
    const isConfigFile = c.type === "config";
    if (!own && this.isSelfWrite(rel)) {
      if (isConfigFile) return this.chainConfig();
      return undefined;
    }
    const trigger: ReloadTrigger = { type: c.type, action, path: rel };
    if (c.name !== undefined) trigger.name = c.name;
    if (!isConfigFile) {
      this.record(c.reason, trigger);
      return undefined;
    }
    return this.chainConfig((prev, next) => {
      const r = refineConfigChange(prev, next);
      if (r.reason === "config") return this.record("config", trigger);
      const t: ReloadTrigger = { type: r.type, action: r.action ?? "updated", path: rel };
      if (r.name !== undefined) t.name = r.name;
      this.record(r.reason, t);
    });
  }

  /** Marks paths the server is about to write: the watcher's echo of them is not reported. */
  expectWrites(writtenRel: string[]): void {
    const until = Date.now() + LIMITS.selfWriteEchoMs;
    for (const p of writtenRel) this.selfWrites.set(p, until);
  }

  /**
   * After the server's own write: the same classification as an outside edit (one code path for
   * "this file changed"), but at once — caches dropped, each event recorded before the answer.
   */
  async noteWrites(writes: OwnWrite[]): Promise<void> {
    this.expectWrites(writes.map((w) => w.rel));
    const pending: Promise<void>[] = [];
    for (const w of writes) {
      const exists = await lexists(path.join(this.workspace.path, w.rel));
      if (!w.existed && !exists) continue;
      const p = this.onChange(w.rel, !w.existed ? "added" : exists ? "updated" : "removed", true);
      if (p) pending.push(p);
    }
    await Promise.all(pending);
  }

  /** At most one event per reason per debounce window: leading edge, plus one trailing event carrying the latest trigger. */
  record(reason: ReloadReason, trigger: ReloadTrigger): void {
    if (this.closed) return;
    const now = Date.now();
    let t = this.throttles.get(reason);
    if (!t) {
      t = { lastEmit: 0 };
      this.throttles.set(reason, t);
    }
    if (t.timer) {
      t.pending = t.pending ? mergeTriggers(t.pending, trigger) : trigger;
      return;
    }
    const wait = t.lastEmit + this.debounceMs - now;
    if (wait <= 0) {
      t.lastEmit = now;
      this.log.append({ reason, trigger });
      return;
    }
    t.pending = trigger;
    const th = t;
    th.timer = setTimeout(() => {
      th.timer = undefined;
      const pending = th.pending;
      th.pending = undefined;
      if (!pending || this.closed) return;
      th.lastEmit = Date.now();
      this.log.append({ reason, trigger: pending });
    }, wait);
    th.timer.unref();
  }

  /** The newest seq (0 before any event). */
  get cursor(): number {
    return this.log.seq;
  }

  /**
   * Events after `since`. `reset` when events between `since` and the buffer were dropped, or
   * when `since` is ahead of us (a cursor from an earlier server run): the client must refetch,
   * and gets the whole buffer.
   */
  since(since: number): { items: ReloadEvent[]; reset: boolean } {
    const page = this.log.read(since);
    return page.reset ? { items: this.log.all(), reset: true } : { items: page.items, reset: false };
  }
}

async function lexists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** The per-server registry of workspace states (watchers start on first use of a workspace). */
export class WorkspaceConfigService {
  private readonly states = new Map<string, WorkspaceState>();
  private readonly onRemoved: (id: string) => void;

  constructor(private readonly server: Pick<ServerContext, "bus" | "log" | "config" | "workspaces">) {
    this.onRemoved = (id) => {
      this.states.get(id)?.close();
      this.states.delete(id);
    };
    server.bus.on("workspace.removed", this.onRemoved);
  }

  /** The state of `ws`, starting its watchers on first use; resolves once they are attached. */
  async state(ws: Workspace): Promise<WorkspaceState> {
    let s = this.states.get(ws.id);
    if (!s) {
      s = new WorkspaceState(ws, this.server.log, skillAncestors(ws, this.server.config.authorizedRoots), LIMITS.reloadDebounceMs, this.server.config.homeDir);
      this.states.set(ws.id, s);
    }
    await s.ready;
    return s;
  }

  /** Starts the watchers of every authorized workspace, so changes made before the first request are reported too. */
  async startAll(): Promise<void> {
    await Promise.all(this.server.workspaces.list().filter((w) => w.authorized).map((w) => this.state(w)));
  }

  close(): void {
    this.server.bus.off("workspace.removed", this.onRemoved);
    for (const s of this.states.values()) s.close();
    this.states.clear();
  }
}

/**
 * The authorized root that contains the workspace (the deepest one), or the workspace itself.
 * Skills walk-up never goes above it.
 */
export function authorizedRootFor(ws: Workspace, roots: readonly string[]): string {
  let best: string | undefined;
  for (const r of roots) {
    const root = path.resolve(r);
    if (isInsideOrSame(root, ws.path)) {
      if (best === undefined || root.length > best.length) best = root;
    }
  }
  return best ?? ws.path;
}

/** Folders strictly above the workspace, up to its authorized root (nearest first). */
export function skillAncestors(ws: Workspace, roots: readonly string[]): string[] {
  const root = authorizedRootFor(ws, roots);
  const out: string[] = [];
  let cur = ws.path;
  while (cur !== root) {
    const parent = path.dirname(cur);
    if (parent === cur) break;
    out.push(parent);
    cur = parent;
  }
  return out;
}
