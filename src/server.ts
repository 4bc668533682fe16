/**
 * createServer(config) wires the parts: every service is constructed here, where it can be seen,
 * and the request pipeline is fixed here, in one place:
 *   CORS → OPTIONS → Host check → route match (404/405, `/w/<id>` mounts) → read-only → auth/scope →
 *   mount + workspace → handler → (write plan: gate → apply → events → audit) → response.
 * WebSocket upgrades go through the same match, auth and gates.
 */
import { EventEmitter, setMaxListeners } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { performance } from "node:perf_hooks";
import { lstat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Approvals } from "./approvals.ts";
import { createAuditLog } from "./audit.ts";
import { authenticate } from "./auth/actor.ts";
import { sha256 } from "./auth/hash.ts";
import { AuthFailureLimiter } from "./auth/limiter.ts";
import { FileTokenStore } from "./auth/tokens.ts";
import { watchTokenLifecycle } from "./auth/token-lifecycle.ts";
import { ApiError, isResourceError } from "./errors.ts";
import { Catalogs } from "./files/catalog.ts";
import { cleanupStaleTempFiles } from "./files/cleanup.ts";
import { ProtectedPathsCache } from "./files/common.ts";
import { FileSessions } from "./files/sessions.ts";
import { isOutside, RootDirs } from "./fs/paths.ts";
import { guardBody, isClientAbort } from "./http/body-guard.ts";
import { corsPairs } from "./http/cors.ts";
import { OpenworkResponse } from "./http/response.ts";
import { PendingBytes } from "./http/pending-bytes.ts";
import { Staging } from "./files/staging.ts";
import { checkHost } from "./http/guards.ts";
import { ProxyPool, writeSocketError } from "./http/proxy.ts";
import { sendError, sendJson, sendJsonText } from "./http/reply.ts";
import { RequestContext, UpgradeRequestContext } from "./http/request-context.ts";
import { HANDLED, type HandlerResult, type RouteDef } from "./http/route.ts";
import { Router, type RouteMatch } from "./http/router.ts";
import { SseRegistry } from "./http/sse.ts";
import { loadAssetTable, UI_DIR } from "./http/static.ts";
import { LIMITS } from "./limits.ts";
import { createLogger } from "./log.ts";
import { allRoutes } from "./routes/index.ts";
import { SCOPE_RANK, type Answer, type Workspace, type WritePlan } from "./types.ts";
import { HubCatalog } from "./workspace/hub.ts";
import { WorkspaceConfigService, type OwnWrite } from "./workspace/reload-events.ts";
import { recoverJournals } from "./fs/journal.ts";
import { Workspaces } from "./workspaces.ts";
import type { Logger, ServerConfig, ServerContext } from "./context.ts";

/** Audit file for server-level actions (tokens) that belong to no workspace. */
export const SERVER_AUDIT_ID = "_server";

export interface OpenworkServer {
  context: ServerContext;
  /** Starts listening; resolves with the base URL (real port when config.port is 0). */
  listen(): Promise<string>;
  /** Graceful shutdown: deny pending approvals, close streams and watchers, finish in-flight writes. */
  close(): Promise<void>;
}

export interface CreateServerOptions {
  log?: Logger;
  /** Extra routes (tests register gated test routes this way). */
  extraRoutes?: RouteDef[];
  /** Tests shorten the slow-header cut-off instead of waiting 20 s. */
  headersTimeoutMs?: number;
  /** Tests shorten the body idle window (and deadline) instead of waiting 10 s. */
  bodyIdleMs?: number;
  /** Tests lower the pending-bytes budget (RAM for large bodies) instead of sending 96 MiB. */
  pendingBodyBytes?: number;
  /** Tests shorten the SSE heartbeat interval instead of waiting 15 s. */
  sseHeartbeatMs?: number;
  /** Tests shorten the wait for upstream response headers instead of waiting 30 s. */
  proxyHeadersTimeoutMs?: number;
  /** Tests lower the file catalog's entry cap instead of creating a million files. */
  catalogMaxEntries?: number;
  /** Tests lower the file catalog's inotify watch cap instead of creating thousands of folders. */
  catalogMaxWatchers?: number;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function createServer(config: ServerConfig, options: CreateServerOptions = {}): Promise<OpenworkServer> {
  const log = options.log ?? createLogger({ format: config.logFormat, verbose: config.verbose });
  const inFlight = new Set<Promise<unknown>>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const shutdown = new AbortController();
  // Every held request listens to it.
  setMaxListeners(0, shutdown.signal);
  const tokens = await FileTokenStore.open(config.tokenStorePath);
  const audit = createAuditLog(config.dataDir, log);
  // A crash may have left multi-file writes half done (rolled forward or back first) and write
  // intents without their outcome (then closed as interrupted).
  await recoverJournals(config.dataDir, log);
  // Staged content of writes that were pending when the server stopped: never decided, never applied.
  const staging = new Staging(config.dataDir, LIMITS.stagedBytesBudget, LIMITS.stageAboveBytes);
  await staging.clear();
  const workspaces = new Workspaces(config.workspaces, config.authorizedRoots);
  // Only this server's logs: another server on the same data dir may be writing in its own.
  const interrupted = await audit.recover([...workspaces.list().map((w) => w.id), SERVER_AUDIT_ID]);
  if (interrupted > 0) log.warn("writes interrupted by the last shutdown were recorded as interrupted", { count: interrupted });
  const protectedPaths = new ProtectedPathsCache(config);

  const clientDigest = sha256(config.token);
  const context = {
    config,
    version: packageVersion(),
    startedAt: Date.now(),
    log,
    workspaces,
    tokens,
    approvals: new Approvals(config.approval),
    audit,
    streams: new SseRegistry(options.sseHeartbeatMs),
    hub: new HubCatalog(config),
    proxy: new ProxyPool(options.proxyHeadersTimeoutMs === undefined ? {} : { headersTimeoutMs: options.proxyHeadersTimeoutMs }),
    authLimiter: new AuthFailureLimiter(LIMITS.authFailuresPerMinute, 60_000),
    pendingBytes: new PendingBytes(options.pendingBodyBytes ?? LIMITS.pendingBodyBytes),
    staging,
    digests: { client: clientDigest, clientHex: clientDigest.toString("hex"), host: sha256(config.hostToken) },
    protectedPaths: () => protectedPaths.get(),
    roots: new RootDirs(),
    uiAssets: config.toyUi ? loadAssetTable(UI_DIR) : undefined,
    bus,
    shutdown: shutdown.signal,
    url: "",
    closing: false,
  } as Omit<ServerContext, "configs" | "sessions" | "catalogs"> as ServerContext;
  context.configs = new WorkspaceConfigService(context);
  context.sessions = new FileSessions(context);
  context.catalogs = new Catalogs(context, {
    ...(options.catalogMaxEntries === undefined ? {} : { maxEntries: options.catalogMaxEntries }),
    ...(options.catalogMaxWatchers === undefined ? {} : { maxWatchers: options.catalogMaxWatchers }),
  });
  const stopTokenLifecycle = watchTokenLifecycle(context);

  const router = new Router([...allRoutes(), ...(options.extraRoutes ?? [])]);

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    const done = () => inFlight.delete(p);
    p.then(done, done);
    return p;
  };

  /** Match, read-only, auth/scope, mount and workspace: the checks every request and upgrade passes. */
  function admit(rc: RequestContext, route: RouteDef, mount: string | undefined, queryToken?: string): void {
    if (route.gate && !route.readOnlyAllowed && config.readOnly) throw new ApiError("read_only", "Server is read-only");
    if (route.auth !== "none") {
      const actor = authenticate(context, rc.req, route.auth, queryToken === undefined ? {} : { queryToken });
      const required = route.scope ?? "viewer";
      if (SCOPE_RANK[actor.scope] < SCOPE_RANK[required]) {
        throw new ApiError("forbidden", "Insufficient token scope", { required, scope: actor.scope });
      }
      rc.actor = actor;
    }
    // After authentication: unauthenticated callers cannot probe workspace ids.
    if (mount !== undefined) rc.mount = workspaces.resolve(mount);
    if (route.workspace) rc.workspace = workspaces.resolve(rc.params.id ?? "");
  }

  function found(method: string, path: string): Extract<RouteMatch, { kind: "found" }> {
    const match = router.match(method, path);
    if (match.kind === "not_found") throw new ApiError("not_found", "Not found");
    if (match.kind === "method_not_allowed") {
      throw new ApiError("method_not_allowed", "Method not allowed", undefined, { headers: { Allow: match.allow.join(", ") } });
    }
    return match;
  }

  const bodyLimits = {
    idleMs: options.bodyIdleMs ?? LIMITS.bodyIdleMs,
    minProgressBytes: LIMITS.bodyMinProgressBytes,
    deadlineMs: options.bodyIdleMs === undefined ? LIMITS.bodyDeadlineMs : options.bodyIdleMs * 3,
  };

  // One function for every request's log line, called at end() (http/response.ts): no closure per request.
  const requestLog = log.request ?? ((method: string, path: string, status: number, durationMs: number) => log.info("request", { method, path, status, durationMs }));
  const logFinished = (res: OpenworkResponse): void => {
    requestLog(res.req.method ?? "", res.logPath, res.statusCode, Math.round((performance.now() - res.startedAt) * 10) / 10);
  };

  /**
   * One request. Synchronous up to the handler: a synchronous handler (health, status, cached
   * lists) is answered without any promise; only handlers that wait continue in `settle`.
   */
  function handle(req: IncomingMessage, res: OpenworkResponse): void {
    if (config.logRequests) {
      res.startedAt = performance.now();
      res.onEnd = logFinished;
    }
    guardBody(req, res, bodyLimits);
    res.corsPending = corsPairs(req, config.corsOrigins);
    try {
      if (req.method === "OPTIONS") {
        res.writeHead(204);
        res.end();
        return;
      }
      checkHost(req, config.host, config.allowedHosts);
      const method = (req.method ?? "GET").toUpperCase();
      const path = (res.logPath = requestPath(req.url ?? ""));
      const match = found(method, path);
      const rc = new RequestContext(req, res, context, method, match.path, match.params);
      admit(rc, match.route, match.mount);
      const result = match.route.handler(rc);
      if (result instanceof Promise) void settle(result, match.route, rc);
      else sendAnswer(res, result);
    } catch (err) {
      fail(req, res, err);
    }
  }

  async function settle(pending: Promise<HandlerResult>, route: RouteDef, rc: RequestContext): Promise<void> {
    try {
      const result = await pending;
      if (result === HANDLED) return;
      if (result.kind === "json") return sendAnswer(rc.res, result);
      await track(commit(route, result, rc));
    } catch (err) {
      fail(rc.req, rc.res, err);
    }
  }

  function sendAnswer(res: ServerResponse, result: Answer): void {
    if (result.text !== undefined) sendJsonText(res, result.status, result.text, result.headers);
    else sendJson(res, result.status, result.body, result.headers);
  }

  function fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (isResourceError(err)) log.warn("resource exhausted", { error: String(err) });
    else if (isClientAbort(err, req)) return sendError(req, res, err);
    else if (!(err instanceof ApiError)) log.error("unhandled error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    sendError(req, res, err);
  }

  /**
   * The fixed write sequence: the route's gate → apply → events → audit → response. Events are
   * derived from the plan's paths by the same classifier that turns outside edits into events.
   */
  async function commit(route: RouteDef, p: WritePlan, rc: RequestContext): Promise<void> {
    const actor = rc.actor;
    if (!route.gate || !actor) throw new Error(`write plan from an ungated route ${route.method} ${route.path}`);
    const auditId = p.workspaceId ?? SERVER_AUDIT_ID;
    const target = p.target ?? p.paths[0] ?? p.action;
    try {
      // Shutdown has begun: close() no longer waits for this write and the audit log is closing,
      // so it would be applied unaudited (or held past the denial of all pending approvals).
      if (context.closing) throw new ApiError("service_unavailable", "Server is shutting down");
      // A plan may name its own gate only on routes that decide per request (the engine proxy).
      const gate = route.gate === "owner-or-approval" ? (p.gate ?? route.gate) : route.gate;
      const privileged = actor.type === "host" || actor.scope === "owner";
      if (gate === "approval" || (gate === "owner-or-approval" && !privileged)) {
        const outcome = await context.approvals.request(p, actor, rc.signal);
        if (outcome.result !== "allowed") {
          await audit.append(auditId, actor, { action: `approval.${outcome.result}`, target, summary: p.summary });
          if (outcome.result === "cancelled") {
            rc.res.destroy();
            return;
          }
          throw new ApiError("write_denied", "Write request denied", { requestId: outcome.id, reason: outcome.reason ?? outcome.result });
        }
      }
      const ws = p.workspaceId === null ? undefined : workspaces.get(p.workspaceId);
      const steps = ws ? await Promise.all((p.steps ?? p.paths.map((x) => [x])).map((step) => ownWrites(ws, step))) : [];
      if (ws && steps.length > 0) (await context.configs.state(ws)).expectWrites(steps.flat().map((w) => w.rel));
      // Write-ahead: the intent (with what will be written) is durable before anything changes, so
      // after a crash every applied write has its record (startup closes it as "interrupted").
      const intent = await audit.append(auditId, actor, { action: p.action, target, summary: p.summary, phase: "intent", paths: p.paths, change: p.change });
      let applied;
      const releaseWatcher = ws && steps.length > 0 ? context.catalogs.hold(ws) : undefined;
      try {
        applied = await p.apply();
      } catch (err) {
        const code = err instanceof ApiError ? err.code : "internal_error";
        await audit.append(auditId, actor, { action: p.action, target, summary: p.summary, phase: "outcome", intent: intent.id, result: "failed", error: code }).catch((e: unknown) => log.error("audit append failed", { error: String(e) }));
        throw err;
      } finally {
        // Even a failed (rolled back) write may have touched files: never serve a stale cache.
        for (const step of steps) if (ws && step.length > 0) await noteWrites(ws, step);
        releaseWatcher?.();
      }
      const entries = applied.audit ?? [{ action: p.action, target, summary: p.summary }];
      for (const entry of entries) {
        try {
          await audit.append(auditId, actor, { ...entry, phase: "outcome", intent: intent.id, result: "applied" });
        } catch (err) {
          // The write is already on disk and its intent recorded: keep a record of the outcome in
          // the server log and answer 500 — the client must not be told it succeeded quietly.
          log.error("audit append failed after a write was applied", { workspaceId: auditId, action: entry.action, target: entry.target, summary: entry.summary, error: String(err) });
          throw err;
        }
      }
      if (applied.send) return applied.send(rc.res);
      const body = typeof applied.body === "function" ? await (applied.body as () => Promise<unknown>)() : applied.body;
      sendJson(rc.res, applied.status ?? 200, body);
    } finally {
      if (p.release) await p.release().catch((err: unknown) => log.warn("release failed", { error: String(err) }));
    }
  }

  /** The plan's paths inside the workspace, each with whether it exists before the write. */
  async function ownWrites(ws: Workspace, paths: string[]): Promise<OwnWrite[]> {
    const out: OwnWrite[] = [];
    for (const abs of paths) {
      if (isOutside(ws.path, abs) || path.resolve(abs) === path.resolve(ws.path)) continue;
      const existed = await lstat(abs).then(() => true, () => false);
      out.push({ rel: path.relative(ws.path, abs).split(path.sep).join("/"), existed });
    }
    return out;
  }

  /** One code path for "these files changed": reload events and caches, then the catalog. */
  async function noteWrites(ws: Workspace, writes: OwnWrite[]): Promise<void> {
    try {
      await (await context.configs.state(ws)).noteWrites(writes);
      await context.catalogs.sync(ws, writes.map((w) => w.rel));
    } catch (err) {
      log.warn("recording a write's events failed", { workspaceId: ws.id, error: String(err) });
    }
  }

  /** WebSocket upgrades: the same match, Host check, auth (token also as `?token=`), gates and mounts as a request. */
  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    try {
      checkHost(req, config.host, config.allowedHosts);
      const match = found("GET", requestPath(req.url ?? ""));
      if (!match.route.upgrade) throw new ApiError("not_found", "Not found");
      const rc = new UpgradeRequestContext(req, socket, head, context, match.path, match.params);
      // Browsers cannot set headers on a WebSocket: the token may come as a query parameter (stripped before forwarding).
      const queryToken = rc.query.get("token") ?? undefined;
      admit(rc, match.route, match.mount, queryToken);
      await match.route.upgrade(rc);
    } catch (err) {
      if (!(err instanceof ApiError)) log.error("upgrade failed", { error: String(err) });
      writeSocketError(socket, err);
    }
  }

  const headersTimeoutMs = options.headersTimeoutMs ?? LIMITS.headersTimeoutMs;
  // How often Node checks for expired header/request timers (its default, 30 s, lets a
  // slow-header client hold a socket for up to 50 s).
  const connectionsCheckingInterval = Math.min(1_000, headersTimeoutMs);
  const httpServer: Server = config.tls
    ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key, connectionsCheckingInterval, ServerResponse: OpenworkResponse })
    : createHttpServer({ connectionsCheckingInterval, ServerResponse: OpenworkResponse });
  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => handle(req, res as OpenworkResponse));
  // Expect: 100-continue — refuse an oversized body before the client sends it.
  httpServer.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    const max = Math.max(LIMITS.largeJsonBodyBytes, config.inbox.maxBytes + LIMITS.multipartHeaderBytes * 4);
    if (declared > max) {
      (res as OpenworkResponse).corsPending = corsPairs(req, config.corsOrigins);
      // The body was never read, so sendError also closes the connection.
      sendError(req, res, new ApiError("payload_too_large", "Request body is too large", { maxBytes: max }));
      return;
    }
    res.writeContinue();
    handle(req, res as OpenworkResponse);
  });
  httpServer.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => void handleUpgrade(req, socket, head));
  // Slow-header clients are cut; held approvals, uploads and idle SSE streams are not.
  httpServer.headersTimeout = headersTimeoutMs;
  httpServer.requestTimeout = LIMITS.requestTimeoutMs;
  httpServer.keepAliveTimeout = LIMITS.keepAliveTimeoutMs;
  httpServer.timeout = 0;

  let closed: Promise<void> | undefined;
  return {
    context,
    listen() {
      return new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(config.port, config.host, () => {
          httpServer.off("error", reject);
          const addr = httpServer.address() as AddressInfo;
          const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
          context.url = `${config.tls ? "https" : "http"}://${host}:${addr.port}`;
          void cleanupStaleTempFiles(context).catch((err: unknown) => log.warn("temp cleanup failed", { error: String(err) }));
          // Configuration watchers start before listen() resolves: changes made before the first request are seen.
          void context.configs
            .startAll()
            .catch((err: unknown) => log.warn("workspace watchers failed", { error: String(err) }))
            .finally(() => resolve(context.url));
        });
      });
    },
    close() {
      closed ??= (async () => {
        context.closing = true;
        stopTokenLifecycle();
        const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        context.approvals.denyAll("shutdown");
        shutdown.abort();
        context.streams.closeAll();
        const grace = setTimeout(() => httpServer.closeAllConnections(), LIMITS.shutdownGraceMs - 500);
        grace.unref();
        await Promise.allSettled([...inFlight]);
        context.catalogs.close();
        context.sessions.close();
        context.configs.close();
        context.proxy.close();
        context.authLimiter.close();
        await audit.close();
        await context.roots.close();
        httpServer.closeIdleConnections();
        await stopped;
        clearTimeout(grace);
      })();
      return closed;
    },
  };
}

/**
 * The pathname of a request target. Absolute-form targets (`GET http://host/x`) contribute only
 * their path — the target never chooses a host. Malformed percent-encoding anywhere → 400 (checked
 * once, and only when the path has a `%` at all).
 */
export function requestPath(target: string): string {
  let end = target.length;
  for (let i = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f || c === 0x23) end = i; // ? or #
  }
  let raw = end === target.length ? target : target.slice(0, end);
  if (raw.charCodeAt(0) !== 0x2f) {
    const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(raw);
    if (!absolute) throw new ApiError("invalid_path", "Invalid request target");
    raw = raw.slice(absolute[0].length) || "/";
  }
  if (raw.includes("%")) {
    try {
      decodeURIComponent(raw);
    } catch {
      throw new ApiError("invalid_path", "Malformed percent-encoding in path");
    }
  }
  return raw;
}
