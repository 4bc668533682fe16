// Route table: issue 5 — OpenCode and OpenCode Router proxies (HTTP, SSE, WebSocket upgrades)
// and engine session deletion.
//
// Structural note: the proxy routes are not `write: true`. They forward to an engine that has its
// own permission prompts, so there is no WritePlan; read-only mode and the per-method/per-path
// scope rules are enforced inside the handlers (and in handleUpgrade) instead. Session deletion
// is the exception: a `write: true` route, so the router gates and audits it.
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { authenticate } from "../auth/actor.ts";
import { ApiError } from "../http/errors.ts";
import { checkHost } from "../http/guards.ts";
import { assertSafeProxyPath, ProxyPool, proxyHttp, proxyUpgrade, writeSocketError, type ProxyErrors, type ProxyTarget } from "../http/proxy.ts";
import { HANDLED, type RouteContext, type RouteDef } from "../http/route.ts";
import { opencodeTarget, upstreamUrl, type OpencodeTarget } from "../opencode-target.ts";
import { SCOPE_RANK, plan, type Actor, type Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";

/** Service key of the per-server proxy state (tests may create it first with a shorter timeout). */
export const PROXY_SERVICE_KEY = "proxy";

/** Per-server proxy state: the pool, wired to the server's events so revoked tokens lose their proxied streams at once. */
export class ProxyService {
  readonly pool: ProxyPool;
  private readonly onRevoked = (tokenHash: string) => this.pool.closeByToken(tokenHash);

  constructor(
    private readonly server: ServerContext,
    options: { headersTimeoutMs?: number } = {},
  ) {
    this.pool = new ProxyPool(options);
    server.bus.on("token.revoked", this.onRevoked);
  }

  close(): void {
    this.server.bus.off("token.revoked", this.onRevoked);
    this.pool.close();
  }
}

function proxyPool(server: ServerContext): ProxyPool {
  return server.service(PROXY_SERVICE_KEY, () => new ProxyService(server)).pool;
}

const OPENCODE_ERRORS: ProxyErrors = {
  unreachable: (cause) => new ApiError(502, "opencode_unreachable", "OpenCode engine is unavailable", { cause }),
  timeout: () => new ApiError(504, "opencode_timeout", "OpenCode engine did not answer in time"),
};

const ROUTER_ERRORS: ProxyErrors = {
  unreachable: (cause) => new ApiError(503, "opencode_router_unreachable", "OpenCode Router is unavailable", { cause }),
  // A router that accepts but never answers is as good as unreachable for the client.
  timeout: () => new ApiError(503, "opencode_router_unreachable", "OpenCode Router is unavailable", { cause: "timeout" }),
};

const READ_METHODS = new Set(["GET", "HEAD"]);

/** Agent permission replies: `/permission/<id>/reply` and `/session/<id>/permissions/<id>`. */
function isPermissionReply(rest: string): boolean {
  // Match on decoded segments: the engine decodes `repl%79` to `reply`, so must we (the path is
  // already known to decode cleanly and to hold no encoded slashes).
  const path = rest.split("/").map(decodeURIComponent).join("/").replace(/\/+$/, "");
  return /\/permission\/[^/]+\/reply$/.test(path) || /\/session\/[^/]+\/permissions\/[^/]+$/.test(path);
}

/** Scope and read-only rules of the OpenCode proxy (HTTP and WebSocket). */
function authorizeOpencode(server: ServerContext, actor: Actor, method: string, rest: string): void {
  const read = READ_METHODS.has(method);
  if (!read && actor.scope === "viewer") throw new ApiError(403, "forbidden", "Viewer tokens are read-only");
  // Answering the agent's permission prompt can let it run commands on the host: owners only.
  if (!read && isPermissionReply(rest) && SCOPE_RANK[actor.scope] < SCOPE_RANK.owner) {
    throw new ApiError(403, "forbidden", "Insufficient token scope", { required: "owner", scope: actor.scope });
  }
  // Read-only mode is enforced here because proxy routes are not `write: true`.
  if (!read && server.config.readOnly) throw new ApiError(403, "read_only", "Server is read-only");
}

/** The workspace of a mounted (`/w/:id/…`) or unmounted (active workspace) request. */
function proxyWorkspace(server: ServerContext, mounted: Workspace | undefined): Workspace {
  if (mounted) return mounted;
  const active = server.workspaces.active();
  if (!active) throw new ApiError(404, "workspace_not_found", "No workspace is configured");
  return server.workspaces.resolve(active.id);
}

function checkedTarget(server: ServerContext, ws: Workspace): OpencodeTarget {
  const target = opencodeTarget(server.config, ws);
  if (target.baseUrl.protocol !== "http:" && target.baseUrl.protocol !== "https:") {
    throw new ApiError(400, "opencode_unconfigured", "OpenCode base URL must be http or https");
  }
  return target;
}

/** Our headers for OpenCode: the workspace directory (always ours) and upstream credentials. */
function opencodeHeaders(target: OpencodeTarget): Record<string, string> {
  // Header values must be ASCII; non-ASCII directories are percent-encoded (OpenCode decodes them).
  const directory = /^[\x20-\x7e]*$/.test(target.directory) ? target.directory : encodeURIComponent(target.directory);
  const headers: Record<string, string> = { "x-opencode-directory": directory };
  if (target.authorization) headers.authorization = target.authorization;
  return headers;
}

/**
 * Upstream `Location` pointing at the engine itself is rewritten to our mount, so the internal
 * address never reaches remote clients (X16); other internal locations are dropped.
 */
function locationRewriter(base: URL, mount: string): (value: string) => string | undefined {
  const basePath = base.pathname.replace(/\/+$/, "");
  return (value) => {
    let loc: URL;
    try {
      loc = new URL(value, base);
    } catch {
      return undefined;
    }
    if (loc.origin !== base.origin) return value;
    if (loc.pathname !== basePath && !loc.pathname.startsWith(basePath + "/")) return undefined;
    return mount + loc.pathname.slice(basePath.length) + loc.search + loc.hash;
  };
}

/** The request target must be origin-form: an absolute-form target never picks the upstream (X03). */
function assertOriginForm(req: IncomingMessage): void {
  if (!(req.url ?? "").startsWith("/")) throw new ApiError(400, "invalid_path", "Absolute-form request targets are not proxied");
}

async function opencodeProxy(rc: RouteContext): Promise<typeof HANDLED> {
  assertOriginForm(rc.req);
  const rest = rc.params["*"] ?? "";
  assertSafeProxyPath(rest);
  authorizeOpencode(rc.server, rc.actor!, rc.method, rest);
  const ws = proxyWorkspace(rc.server, rc.workspace);
  const target = checkedTarget(rc.server, ws);
  const mount = rc.workspace ? `/w/${encodeURIComponent(ws.id)}/opencode` : "/opencode";
  // `token` is our own credential parameter (WebSocket auth): a secret never travels upstream.
  const query = new URLSearchParams(rc.query);
  query.delete("token");
  const proxied: ProxyTarget = { url: upstreamUrl(target, rest, query), headers: opencodeHeaders(target) };
  await proxyHttp(rc.req, rc.res, proxied, proxyPool(rc.server), OPENCODE_ERRORS, {
    rewriteLocation: locationRewriter(target.baseUrl, mount),
    tokenHash: rc.actor!.tokenHash,
  });
  return HANDLED;
}

/** `DELETE /workspace/:id/sessions/:sessionId` → upstream `DELETE /session/:id`. */
async function deleteSession(rc: RouteContext) {
  const sessionId = rc.params.sessionId ?? "";
  // The id becomes a path segment upstream: no dots, slashes or other surprises.
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(sessionId)) throw new ApiError(400, "invalid_path", "Invalid session id");
  const ws = rc.workspace!;
  const target = checkedTarget(rc.server, ws);
  // A `write: true` route (read-only-gated by the router) and audited; the engine's own data is
  // not a workspace file, so no host approval is asked (as for engine reload).
  return plan({
    workspaceId: ws.id,
    action: "engine.session.delete",
    summary: `Delete OpenCode session ${sessionId}`,
    target: sessionId,
    paths: [],
    change: { sessionId },
    approval: false,
    apply: async () => ({ body: await deleteUpstreamSession(rc, target, sessionId) }),
  });
}

async function deleteUpstreamSession(rc: RouteContext, target: OpencodeTarget, sessionId: string): Promise<{ ok: true }> {
  const url = upstreamUrl(target, `/session/${sessionId}`);
  const pool = proxyPool(rc.server);
  let response: Response;
  try {
    response = await fetch(url, {
      method: "DELETE",
      headers: opencodeHeaders(target),
      signal: AbortSignal.any([rc.signal, AbortSignal.timeout(pool.headersTimeoutMs)]),
    });
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    if (e.name === "TimeoutError") throw OPENCODE_ERRORS.timeout();
    throw OPENCODE_ERRORS.unreachable(e.cause?.code ?? e.name ?? "unknown");
  }
  const text = await readCapped(response, 64 * 1024);
  if (!response.ok) {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    throw new ApiError(502, "opencode_request_failed", "OpenCode request failed", { status: response.status, body });
  }
  return { ok: true };
}

/** Reads at most `max` bytes of a fetch body (an engine error page must not fill our memory). */
async function readCapped(response: Response, max: number): Promise<string> {
  if (!response.body) return "";
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= max) break;
  }
  return Buffer.concat(chunks).toString("utf8").slice(0, max);
}

/** OpenCode Router: any client → health/root; collaborator → bindings/identities; host → the rest. */
async function routerProxy(rc: RouteContext): Promise<typeof HANDLED> {
  assertOriginForm(rc.req);
  // The rest after `/opencode-router` (the route's own `*` may start deeper, e.g. identities/*).
  const segments = rc.path.split("/");
  const skip = rc.workspace ? 4 : 2;
  const rest = segments.length > skip ? "/" + segments.slice(skip).join("/") : "";
  assertSafeProxyPath(rest);
  // Read-only mode is enforced here because proxy routes are not `write: true`.
  if (!READ_METHODS.has(rc.method) && rc.server.config.readOnly) throw new ApiError(403, "read_only", "Server is read-only");
  const port = rc.server.config.routerHealthPort;
  // Checked after auth (the router ran it), so an anonymous caller learns nothing about the setup.
  if (port === undefined) throw new ApiError(404, "opencode_router_unconfigured", "OpenCode Router is not configured");
  const url = new URL(`http://127.0.0.1:${port}`);
  url.pathname = rest === "" ? "/" : rest;
  url.search = rc.query.toString();
  const mount = rc.workspace ? `/w/${encodeURIComponent(rc.workspace.id)}/opencode-router` : "/opencode-router";
  await proxyHttp(rc.req, rc.res, { url }, proxyPool(rc.server), ROUTER_ERRORS, {
    rewriteLocation: locationRewriter(new URL(`http://127.0.0.1:${port}/`), mount),
    tokenHash: rc.actor!.tokenHash,
  });
  return HANDLED;
}

/** The Router table for one prefix: specific rows first (the router takes the first match). */
function routerRoutes(prefix: string, workspace: boolean): RouteDef[] {
  const w = workspace ? { workspace: true } : {};
  return [
    { method: "GET", path: `${prefix}`, auth: "client", ...w, handler: routerProxy },
    { method: "GET", path: `${prefix}/health`, auth: "client", ...w, handler: routerProxy },
    { method: "GET", path: `${prefix}/bindings`, auth: "client", scope: "collaborator", ...w, handler: routerProxy },
    { method: "GET", path: `${prefix}/identities/*`, auth: "client", scope: "collaborator", ...w, handler: routerProxy },
    { method: "*", path: `${prefix}/*`, auth: "host", ...w, handler: routerProxy },
  ];
}

export const routes: RouteDef[] = [
  // Minimum declared here (any client); viewer/owner/read-only rules per method and path in the handler.
  { method: "*", path: "/opencode/*", auth: "client", handler: opencodeProxy },
  { method: "*", path: "/w/:id/opencode/*", auth: "client", workspace: true, handler: opencodeProxy },
  { method: "DELETE", path: "/workspace/:id/sessions/:sessionId", auth: "client", scope: "collaborator", write: true, workspace: true, handler: deleteSession },
  ...routerRoutes("/opencode-router", false),
  ...routerRoutes("/w/:id/opencode-router", true),
];

/** `/opencode…` or `/w/<id>/opencode…` → the workspace id (or null for the active one) and the rest. */
function matchUpgradePath(path: string): { id: string | null; rest: string } | undefined {
  const plain = /^\/opencode(\/.*)?$/.exec(path);
  if (plain) return { id: null, rest: plain[1] ?? "" };
  const mounted = /^\/w\/([^/]+)\/opencode(\/.*)?$/.exec(path);
  if (mounted) return { id: mounted[1]!, rest: mounted[2] ?? "" };
  return undefined;
}

/**
 * WebSocket upgrades (OpenCode's terminal): same auth as HTTP, with the token also accepted as
 * `?token=` (browsers cannot set headers on WebSockets) and stripped before forwarding. Returns
 * true when the request was taken (answered or proxied).
 */
export function handleUpgrade(server: ServerContext, req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
  const target = req.url ?? "";
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  const match = matchUpgradePath(path);
  if (!match) return false;
  try {
    const query = new URLSearchParams(q === -1 ? "" : target.slice(q + 1));
    // Same DNS-rebinding Host check as every HTTP request (upgrades bypass the request pipeline).
    checkHost(req, server.config.host);
    const queryToken = query.get("token") ?? undefined;
    // Auth first: a bad token is answered 401 before anything reaches the engine.
    const actor = authenticate(server, req, "client", queryToken === undefined ? {} : { queryToken });
    query.delete("token");
    assertSafeProxyPath(match.rest);
    if (String(req.headers.upgrade ?? "").toLowerCase() !== "websocket") {
      throw new ApiError(400, "invalid_payload", "Only WebSocket upgrades are proxied");
    }
    // A terminal socket sends keystrokes to a shell: viewers and read-only mode may not open one.
    if (actor.scope === "viewer") throw new ApiError(403, "forbidden", "Viewer tokens are read-only");
    if (server.config.readOnly) throw new ApiError(403, "read_only", "Server is read-only");
    let id: string | undefined;
    if (match.id !== null) {
      try {
        id = decodeURIComponent(match.id);
      } catch {
        throw new ApiError(400, "invalid_path", "Malformed percent-encoding in path");
      }
    }
    const ws = id === undefined ? proxyWorkspace(server, undefined) : server.workspaces.resolve(id);
    const oc = checkedTarget(server, ws);
    const mount = id === undefined ? "/opencode" : `/w/${encodeURIComponent(ws.id)}/opencode`;
    proxyUpgrade(req, socket, head, { url: upstreamUrl(oc, match.rest, query), headers: opencodeHeaders(oc) }, proxyPool(server), OPENCODE_ERRORS, {
      tokenHash: actor.tokenHash,
      rewriteLocation: locationRewriter(oc.baseUrl, mount),
    });
  } catch (err) {
    if (!(err instanceof ApiError)) server.log.error("upgrade failed", { error: String(err) });
    writeSocketError(socket, err);
  }
  return true;
}
