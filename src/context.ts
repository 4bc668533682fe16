/**
 * The per-server context: everything a running server owns. There is no module-level
 * state; tests start many servers in one process and nothing leaks between them.
 */
import type { EventEmitter } from "node:events";
import type { Actor, AuditEntry, AuditInput, Workspace, WritePlan, Scope } from "./types.ts";
import type { WorkspaceConfigService } from "./workspace/reload-events.ts";
import type { FileSessions } from "./files/sessions.ts";
import type { Catalogs } from "./files/catalog.ts";
import type { ProxyPool } from "./http/proxy.ts";
import type { PendingBytes } from "./http/pending-bytes.ts";
import type { Staging } from "./files/staging.ts";
import type { AuthFailureLimiter } from "./auth/limiter.ts";
import type { ProtectedPaths, RootDirs } from "./fs/paths.ts";
import type { StaticAsset } from "./http/static.ts";
import type { HubCatalog } from "./workspace/hub.ts";

export type TokenSource = "cli" | "env" | "file" | "generated";

export interface ServerConfig {
  host: string;
  port: number;
  token: string;
  hostToken: string;
  tokenSource: { client: TokenSource; host: TokenSource };
  approval: { mode: "manual" | "auto"; timeoutMs: number };
  workspaces: WorkspaceConfig[];
  authorizedRoots: string[];
  corsOrigins: string[];
  /** Host names a loopback-bound server answers besides loopback names (reverse proxies). */
  allowedHosts: string[];
  readOnly: boolean;
  opencode: { baseUrl?: string; directory?: string; username?: string; password?: string };
  /** Path of server.json (may not exist). */
  configPath: string;
  configFileExists: boolean;
  tokenStorePath: string;
  dataDir: string;
  inbox: { enabled: boolean; maxBytes: number };
  outboxEnabled: boolean;
  sandbox: { enabled: boolean; backend: "none" | "docker" | "container" };
  toyUi: boolean;
  /** OPENCODE_ROUTER_HEALTH_PORT, when set. */
  routerHealthPort?: number;
  logFormat: "pretty" | "json";
  /** One log line per request (`--[no-]log-requests`, OPENWORK_LOG_REQUESTS, `logRequests`). */
  logRequests: boolean;
  /** OPENWORK_RUN_ID (the orchestrator's run), else random: `service.instance.id` of JSON logs. */
  runId: string;
  verbose: boolean;
  /** The skills hub: a GitHub repository of `skills/<name>/SKILL.md` folders. */
  hub: { enabled: boolean; apiUrl: string; rawUrl: string; repo: { owner: string; name: string; ref: string }; githubToken?: string };
  /** The orchestrator's runtime control endpoint (OPENWORK_CONTROL_BASE_URL + _TOKEN), when both are set. */
  control?: { baseUrl: string; token: string };
  /** Telegram Bot API base (OPENWORK_TELEGRAM_API_URL), for the bridge's `getMe`. */
  telegramApiUrl: string;
  /** The OpenCode Router's config file (OPENCODE_ROUTER_CONFIG_PATH, else its data dir). */
  routerConfigPath: string;
  tls?: { cert: string; key: string };
  /** PATH of the environment the server was configured from: where service-manager commands are looked up. */
  searchPath?: string;
  /** The user's home folder (HOME), for global OpenCode config, skills and commands. */
  homeDir: string;
}

export interface WorkspaceConfig {
  path: string;
  name?: string;
  workspaceType?: "local" | "remote";
  baseUrl?: string;
  directory?: string;
  opencodeUsername?: string;
  opencodePassword?: string;
}

export interface Logger {
  debug(msg: string, attrs?: Record<string, unknown>): void;
  info(msg: string, attrs?: Record<string, unknown>): void;
  warn(msg: string, attrs?: Record<string, unknown>): void;
  error(msg: string, attrs?: Record<string, unknown>): void;
  /** The per-request line, formatted without an attributes object (it runs on every request). */
  request?(method: string, path: string, status: number, durationMs: number): void;
}

export interface WorkspaceRegistry {
  /** Bumped on every change of the list or its order. */
  readonly revision: number;
  list(): Workspace[];
  /** The active (first) workspace, or undefined when there is none. */
  active(): Workspace | undefined;
  get(id: string): Workspace | undefined;
  /** Throws 404 workspace_not_found / 403 workspace_unauthorized. */
  resolve(id: string): Workspace;
  activate(id: string): Workspace;
  remove(id: string): boolean;
}

export interface TokenRecord {
  id: string;
  hash: string;
  scope: Scope;
  createdAt: number;
  label?: string;
  expiresAt?: number;
}

export interface TokenStore {
  /** Bumped by every change of the set of tokens. */
  readonly revision: number;
  list(): TokenRecord[];
  /** Scoped token lookup by the sha256 hex of the presented secret; expired → undefined. */
  lookupHash(hash: string): TokenRecord | undefined;
  mint(input: { scope: Scope; label?: string; ttlSeconds?: number }): Promise<{ record: TokenRecord; token: string }>;
  revoke(id: string): Promise<TokenRecord | undefined>;
}

export type ApprovalResult = "allowed" | "denied" | "timeout" | "cancelled";

export interface PendingApproval {
  id: string;
  workspaceId: string | null;
  action: string;
  summary: string;
  paths: string[];
  createdAt: number;
  expiresAt: number;
  actor: Actor;
  change: unknown;
  risk: string[];
}

export interface ApprovalGate {
  /** Resolves when the host answers, the timeout passes, or `signal` aborts (cancelled). */
  request(plan: WritePlan, actor: Actor, signal: AbortSignal): Promise<{ id: string; result: ApprovalResult; reason?: string }>;
  list(): PendingApproval[];
  reply(id: string, allow: boolean): boolean;
  /** Resolves every pending approval as denied (reason "shutdown"). */
  denyAll(reason: string): void;
  /** Resolves the pending approvals requested with one token as denied (revocation, expiry). */
  denyByToken(tokenHash: string, reason: string): void;
  /** approval.requested / approval.resolved feed (for SSE). Returns an unsubscribe function. */
  subscribe(listener: (event: { type: "approval.requested"; item: PendingApproval } | { type: "approval.resolved"; id: string; result: ApprovalResult }) => void): () => void;
}

export interface AuditLog {
  append(workspaceId: string, actor: Actor | { type: "system" }, input: AuditInput): Promise<AuditEntry>;
  /** Newest first, reading only the tail of the file. */
  tail(workspaceId: string, limit: number): Promise<AuditEntry[]>;
  /** Timestamp of the newest entry, or null. */
  lastTimestamp(workspaceId: string): Promise<number | null>;
  /** Changes whenever the workspace's log file does (size and mtime; "" when there is none): answers built from it are cached by it. */
  version(workspaceId: string): string;
  /** Closes the write intents a crash left open (startup). Returns how many. */
  recover(ids?: string[]): Promise<number>;
}

/** Open SSE streams, capped in number, closable by token (revocation). */
export interface StreamRegistry {
  readonly size: number;
  closeByToken(tokenHash: string): void;
  closeAll(): void;
}

export interface ServerContext {
  config: ServerConfig;
  version: string;
  startedAt: number;
  log: Logger;
  workspaces: WorkspaceRegistry;
  tokens: TokenStore;
  approvals: ApprovalGate;
  audit: AuditLog;
  streams: StreamRegistry;
  /** Per-workspace configuration state: watchers, cache, loaders, reload events. */
  configs: WorkspaceConfigService;
  /** File sessions and the catalog (index + events) behind them. */
  sessions: FileSessions;
  catalogs: Catalogs;
  /** The skills hub's catalog (with its listing cache). */
  hub: HubCatalog;
  /** Keep-alive agents and open exchanges of the OpenCode / Router proxies. */
  proxy: ProxyPool;
  /** Failed authentications per client address. */
  authLimiter: AuthFailureLimiter;
  /** RAM budget of large write bodies from arrival until their write is decided. */
  pendingBytes: PendingBytes;
  /** Large write content waiting for approval, on disk (files/staging.ts). */
  staging: Staging;
  /** sha256 of the configured client and host tokens, computed once. */
  digests: { client: Buffer; clientHex: string; host: Buffer };
  /** Held workspace root folders shared by the path resolvers of every request. */
  roots: RootDirs;
  /** The server's own files that the file API must never touch (data dir, token store, server.json). */
  protectedPaths(): Promise<ProtectedPaths>;
  /**
   * Server-wide events: "token.revoked" (tokenHash), "workspace.removed" (workspaceId).
   * Area modules listen here (e.g. file sessions end on revocation).
   */
  bus: EventEmitter;
  /** The built-in UI's files, loaded once at startup (undefined when the UI is disabled). */
  uiAssets: Promise<Map<string, StaticAsset>> | undefined;
  /** Aborted when shutdown begins (after pending approvals were denied): held requests end. */
  shutdown: AbortSignal;
  /** The address after listen(), e.g. http://127.0.0.1:8787 */
  url: string;
  closing: boolean;
}
