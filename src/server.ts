/**
 * createServer(config) wires the parts: route tables, auth, the approval gate, the audit log,
 * SSE streams and per-server services. The request pipeline is fixed here, in one place:
 *   CORS → OPTIONS → path checks → route match (404/405) → read-only → auth/scope → workspace →
 *   handler → (write plan: approval → apply → audit) → response.
 */
import { EventEmitter } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { Approvals } from "./approvals.ts";
import { createAuditLog } from "./audit.ts";
import { authenticate } from "./auth/actor.ts";
import { FileTokenStore } from "./auth/tokens.ts";
import { watchTokenLifecycle } from "./auth/token-lifecycle.ts";
import { cleanupStaleTempFiles } from "./files/cleanup.ts";
import { startWorkspaceWatchers } from "./workspace/reload-events.ts";
import { RequestContext } from "./http/request-context.ts";
import { applyCors } from "./http/cors.ts";
import { ApiError, resourceError } from "./http/errors.ts";
import { sendError, sendJson } from "./http/reply.ts";
import { HANDLED, type HandlerResult, type RouteContext, type RouteDef } from "./http/route.ts";
import { Router } from "./http/router.ts";
import { SseRegistry } from "./http/sse.ts";
import { checkHost } from "./http/guards.ts";
import { LIMITS } from "./limits.ts";
import { createLogger } from "./log.ts";
import { allRoutes, handleUpgrade } from "./routes/index.ts";
import { Workspaces } from "./workspaces.ts";
import { SCOPE_RANK, type Actor, type Scope, type WritePlan } from "./types.ts";
import type { Logger, ServerConfig, ServerContext, Service } from "./context.ts";

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
  /** Tests shorten the SSE heartbeat interval instead of waiting 15 s. */
  sseHeartbeatMs?: number;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function createServer(config: ServerConfig, options: CreateServerOptions = {}): Promise<OpenworkServer> {
  const log = options.log ?? createLogger({ format: config.logFormat, verbose: config.verbose });
  const services = new Map<string, Service>();
  const inFlight = new Set<Promise<unknown>>();
  const streams = new SseRegistry(options.sseHeartbeatMs);
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const tokens = await FileTokenStore.open(config.tokenStorePath);
  const audit = createAuditLog(config.dataDir, log);

  const context: ServerContext = {
    config,
    version: packageVersion(),
    startedAt: Date.now(),
    log,
    workspaces: new Workspaces(config.workspaces, config.authorizedRoots),
    tokens,
    approvals: new Approvals(config.approval),
    audit,
    streams,
    bus,
    service<T extends Service>(key: string, create: () => T): T {
      let s = services.get(key) as T | undefined;
      if (!s) {
        s = create();
        services.set(key, s);
      }
      return s;
    },
    url: "",
    closing: false,
  };

  const router = new Router([...allRoutes(), ...(options.extraRoutes ?? [])]);

  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    const done = () => inFlight.delete(p);
    p.then(done, done);
    return p;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let logPath = "";
    res.on("finish", () => {
      log.info("request", { method: req.method, path: logPath, status: res.statusCode, durationMs: Math.round((performance.now() - started) * 10) / 10 });
    });
    applyCors(req, res, config.corsOrigins);
    try {
      if (req.method === "OPTIONS") {
        res.writeHead(204);
        res.end();
        return;
      }
      checkHost(req, config.host);
      const path = requestPath(req.url ?? "");
      logPath = path;
      const method = (req.method ?? "GET").toUpperCase();
      const match = router.match(method, path);
      if (match.kind === "not_found") throw new ApiError(404, "not_found", "Not found");
      if (match.kind === "method_not_allowed") {
        throw new ApiError(405, "method_not_allowed", "Method not allowed", undefined, { Allow: match.allow.join(", ") });
      }
      const route = match.route;
      if (route.write && config.readOnly) throw new ApiError(403, "read_only", "Server is read-only");
      let actor: Actor | null = null;
      if (route.auth === "client") {
        actor = authenticate(context, req, "client");
        requireScope(actor, route.scope ?? "viewer");
      } else if (route.auth === "host") {
        actor = authenticate(context, req, "host");
      }
      const workspace = route.workspace ? context.workspaces.resolve(match.params.id ?? "") : undefined;
      const rc = new RequestContext(req, res, context, method, path, match.params, actor, workspace);
      const result: HandlerResult = await route.handler(rc);
      if (result === HANDLED) return;
      if (result.kind === "json") {
        sendJson(res, result.status, result.body, result.headers);
        return;
      }
      if (!actor) throw new Error(`write plan from unauthenticated route ${route.method} ${route.path}`);
      await track(runPlan(result, rc, actor));
    } catch (err) {
      if (resourceError(err)) log.warn("resource exhausted", { error: String(err) });
      else if (!(err instanceof ApiError)) log.error("unhandled error", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      sendError(req, res, err);
    }
  }

  /** The fixed write sequence: approval → apply → audit → response. */
  async function runPlan(p: WritePlan, rc: RouteContext, actor: Actor): Promise<void> {
    const auditId = p.workspaceId ?? SERVER_AUDIT_ID;
    const target = p.target ?? p.paths[0] ?? p.action;
    try {
      // Shutdown has begun: close() no longer waits for this write and the audit log is closing,
      // so it would be applied unaudited (or held past the denial of all pending approvals).
      if (context.closing) throw new ApiError(503, "service_unavailable", "Server is shutting down");
      if (p.approval !== false) {
        const outcome = await context.approvals.request(p, actor, rc.signal);
        if (outcome.result !== "allowed") {
          await audit.append(auditId, actor, { action: `approval.${outcome.result}`, target, summary: p.summary });
          if (outcome.result === "cancelled") {
            rc.res.destroy();
            return;
          }
          throw new ApiError(403, "write_denied", "Write request denied", { requestId: outcome.id, reason: outcome.reason ?? outcome.result });
        }
      }
      const applied = await p.apply();
      const entries = applied.audit ?? [{ action: p.action, target, summary: p.summary }];
      for (const entry of entries) {
        try {
          await audit.append(auditId, actor, entry);
        } catch (err) {
          // The write is already on disk: keep a record of it somewhere (the server log) and
          // answer 500 — the client must not be told that an unaudited write succeeded quietly.
          log.error("audit append failed after a write was applied", { workspaceId: auditId, action: entry.action, target: entry.target, summary: entry.summary, error: String(err) });
          throw err;
        }
      }
      sendJson(rc.res, applied.status ?? 200, applied.body);
    } finally {
      if (p.release) await p.release().catch((err: unknown) => log.warn("release failed", { error: String(err) }));
    }
  }

  const headersTimeoutMs = options.headersTimeoutMs ?? LIMITS.headersTimeoutMs;
  // How often Node checks for expired header/request timers (its default, 30 s, lets a
  // slow-header client hold a socket for up to 50 s).
  const connectionsCheckingInterval = Math.min(1_000, headersTimeoutMs);
  const httpServer: Server = config.tls
    ? createHttpsServer({ cert: config.tls.cert, key: config.tls.key, connectionsCheckingInterval })
    : createHttpServer({ connectionsCheckingInterval });
  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => void handle(req, res));
  // Expect: 100-continue — refuse an oversized body before the client sends it.
  httpServer.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    const max = Math.max(LIMITS.largeJsonBodyBytes, config.inbox.maxBytes + LIMITS.multipartHeaderBytes * 4);
    if (declared > max) {
      applyCors(req, res, config.corsOrigins);
      // The body was never read, so sendError also closes the connection.
      sendError(req, res, new ApiError(413, "payload_too_large", "Request body is too large", { maxBytes: max }));
      return;
    }
    res.writeContinue();
    void handle(req, res);
  });
  httpServer.on("upgrade", (req, socket, head) => {
    try {
      if (!handleUpgrade(context, req, socket, head)) socket.destroy();
    } catch (err) {
      log.error("upgrade failed", { error: String(err) });
      socket.destroy();
    }
  });
  // Slow-header clients are cut; held approvals, uploads and idle SSE streams are not.
  httpServer.headersTimeout = headersTimeoutMs;
  httpServer.requestTimeout = LIMITS.requestTimeoutMs;
  httpServer.keepAliveTimeout = LIMITS.keepAliveTimeoutMs;
  httpServer.timeout = 0;

  const stopTokenLifecycle = watchTokenLifecycle(context);

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
          // Configuration reload watchers (issue 3) start before listen() resolves: changes made before the first request are seen.
          void startWorkspaceWatchers(context)
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
        bus.emit("shutdown");
        streams.closeAll();
        const grace = setTimeout(() => httpServer.closeAllConnections(), LIMITS.shutdownGraceMs - 500);
        grace.unref();
        await Promise.allSettled([...inFlight]);
        for (const service of services.values()) {
          try {
            await service.close?.();
          } catch (err) {
            log.warn("service close failed", { error: String(err) });
          }
        }
        await audit.close();
        httpServer.closeIdleConnections();
        await stopped;
        clearTimeout(grace);
      })();
      return closed;
    },
  };
}

function requireScope(actor: Actor, required: Scope): void {
  if (SCOPE_RANK[actor.scope] < SCOPE_RANK[required]) {
    throw new ApiError(403, "forbidden", "Insufficient token scope", { required, scope: actor.scope });
  }
}

/**
 * The pathname of a request target. Absolute-form targets (`GET http://host/x`) contribute only
 * their path — the target never chooses a host. Malformed percent-encoding anywhere → 400.
 */
export function requestPath(target: string): string {
  let raw = target;
  const q = raw.indexOf("?");
  if (q !== -1) raw = raw.slice(0, q);
  const hash = raw.indexOf("#");
  if (hash !== -1) raw = raw.slice(0, hash);
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(raw);
  if (absolute) raw = raw.slice(absolute[0].length) || "/";
  if (!raw.startsWith("/")) throw new ApiError(400, "invalid_path", "Invalid request target");
  try {
    decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "invalid_path", "Malformed percent-encoding in path");
  }
  return raw;
}
