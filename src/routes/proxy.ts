// Route table: OpenCode and OpenCode Router proxies (HTTP, SSE, WebSocket upgrades) and engine
// session deletion.
//
// Structural note: the proxy routes have no gate. They forward to an engine that has its own
// permission prompts, so there is no WritePlan; read-only mode and the per-method/per-path scope
// rules are enforced inside the handlers instead. Session deletion is the exception: an audited
// route, read-only-gated by the server.
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "../errors.ts";
import { assertSafeProxyPath, proxyHttp, proxyUpgrade, type ProxyErrors } from "../http/proxy.ts";
import { HANDLED, type RouteContext, type RouteDef, type UpgradeContext } from "../http/route.ts";
import { engineHeaders, engineRequest, jsonOrText, opencodeTarget, upstreamUrl, type OpencodeTarget } from "../engine.ts";
import { SCOPE_RANK, plan, type Actor, type Workspace, type WritePlan } from "../types.ts";
import { enginePolicy, engineRisk, engineSummary, type EnginePolicy } from "../engine-policy.ts";
import { checkViewerName, secretByContent, viewerRefused } from "../files/viewer-secrets.ts";
import { readBody } from "../http/body.ts";
import { sendJson } from "../http/reply.ts";
import { LIMITS } from "../limits.ts";
import { redactEmbedded, redactSecrets } from "../workspace/redaction.ts";
import type { ServerContext } from "../context.ts";

const OPENCODE_ERRORS: ProxyErrors = {
  unreachable: (cause) => new ApiError("opencode_unreachable", "OpenCode engine is unavailable", { cause }),
  timeout: () => new ApiError("opencode_timeout", "OpenCode engine did not answer in time"),
};

const ROUTER_ERRORS: ProxyErrors = {
  unreachable: (cause) => new ApiError("opencode_router_unreachable", "OpenCode Router is unavailable", { cause }),
  // A router that accepts but never answers is as good as unreachable for the client.
  timeout: () => new ApiError("opencode_router_unreachable", "OpenCode Router is unavailable", { cause: "timeout" }),
};

const READ_METHODS = new Set(["GET", "HEAD"]);

/** The upstream path, decoded segment by segment (the engine decodes `repl%79` to `reply`, so must the policy). */
function decodedPath(rest: string): string {
  return "/" + rest.replace(/^\/+/, "").split("/").map(decodeURIComponent).join("/");
}

const isPrivileged = (actor: Actor) => actor.type === "host" || SCOPE_RANK[actor.scope] >= SCOPE_RANK.owner;

/** Scope and read-only rules of the engine policy (HTTP and WebSocket). */
function authorizeEngine(server: ServerContext, actor: Actor, method: string, policy: EnginePolicy): void {
  if (policy.cls === "read") return;
  if (actor.scope === "viewer") throw new ApiError("forbidden", "Viewer tokens are read-only");
  // The terminal and the agent's permission prompts cannot be approved line by line: owners only.
  if (policy.cls === "owner" && !isPrivileged(actor)) {
    throw new ApiError("forbidden", "Insufficient token scope", { required: "owner", scope: actor.scope });
  }
  // Read-only mode is enforced here because the proxy route allows reads in read-only mode.
  if (!READ_METHODS.has(method) && server.config.readOnly) throw new ApiError("read_only", "Server is read-only");
}

/** The workspace of a mounted (`/w/:id/…`) or unmounted (active workspace) request. */
function proxyWorkspace(server: ServerContext, mounted: Workspace | undefined): Workspace {
  if (mounted) return mounted;
  const active = server.workspaces.active();
  if (!active) throw new ApiError("workspace_not_found", "No workspace is configured");
  return server.workspaces.resolve(active.id);
}

function checkedTarget(server: ServerContext, ws: Workspace): OpencodeTarget {
  const target = opencodeTarget(server.config, ws);
  if (target.baseUrl.protocol !== "http:" && target.baseUrl.protocol !== "https:") {
    throw new ApiError("opencode_unconfigured", "OpenCode base URL must be http or https");
  }
  return target;
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
  if (!(req.url ?? "").startsWith("/")) throw new ApiError("invalid_path", "Absolute-form request targets are not proxied");
}

interface EngineCall {
  target: OpencodeTarget;
  rest: string;
  query: URLSearchParams;
  path: string;
}

async function opencodeProxy(rc: RouteContext): Promise<typeof HANDLED | WritePlan> {
  assertOriginForm(rc.req);
  const rest = rc.params["*"] ?? "";
  assertSafeProxyPath(rest);
  const path = decodedPath(rest);
  const policy = enginePolicy(rc.method, path);
  const actor = rc.actor!;
  authorizeEngine(rc.server, actor, rc.method, policy);
  const ws = proxyWorkspace(rc.server, rc.mount);
  const target = checkedTarget(rc.server, ws);
  // `token` is our own credential parameter (WebSocket auth): a secret never travels upstream.
  const query = new URLSearchParams(rc.query);
  query.delete("token");
  const call: EngineCall = { target, rest, query, path };
  if (policy.cls === "read" && actor.scope === "viewer" && (policy.secretRead || policy.fileRead)) return viewerRead(rc, call, policy);
  if (policy.cls === "read" || policy.cls === "chat") {
    const mount = rc.mount ? `/w/${encodeURIComponent(ws.id)}/opencode` : "/opencode";
    await proxyHttp(rc.req, rc.res, { url: upstreamUrl(target, rest, query), headers: engineHeaders(target) }, rc.server.proxy, OPENCODE_ERRORS, {
      rewriteLocation: locationRewriter(target.baseUrl, mount),
      tokenHash: actor.tokenHash,
    });
    return HANDLED;
  }
  return gatedEngineWrite(rc, ws, call, policy);
}

/**
 * An engine write through the gate: the body is read first (≤ 1 MiB) so the host approves exactly
 * what will be sent — the command line, the config change, the MCP server — then it is sent, and
 * the engine's answer is audited and relayed as it came.
 */
async function gatedEngineWrite(rc: RouteContext, ws: Workspace, call: EngineCall, policy: EnginePolicy): Promise<WritePlan | typeof HANDLED> {
  const bytes = await readBody(rc.req, LIMITS.jsonBodyBytes);
  const contentType = rc.req.headers["content-type"];
  const body = bytes.length === 0 ? undefined : jsonOrText(bytes.toString("utf8"));
  const send = () => engineRequest(call.target, rc.method, call.rest, {
    raw: { bytes, ...(contentType ? { contentType } : {}) },
    query: call.query,
    signal: rc.signal,
    timeoutMs: LIMITS.engineGatedTimeoutMs,
    maxBytes: LIMITS.engineRelayMaxBytes,
  });
  // A slash command is a prompt unless its template runs a shell (`!` + backquoted command):
  // only those wait for the host; the others go on at once like chat.
  if (policy.action === "engine.command" && !(await commandRunsShell(rc, call, body))) {
    relay(rc.res, await send());
    return HANDLED;
  }
  const summary = engineSummary(policy.action, rc.method, call.path, body);
  const risk = engineRisk(policy.cls, policy.action, body);
  return plan({
    workspaceId: ws.id,
    action: policy.action,
    summary,
    target: call.path,
    paths: [],
    change: { method: rc.method, path: call.path, ...(call.query.size > 0 ? { query: call.query.toString() } : {}), ...(body === undefined ? {} : { body }) },
    ...(risk ? { risk } : {}),
    // Session deletes, disposes and the owner class are the caller's own acts: audited, not approved.
    gate: policy.cls === "audit" || policy.cls === "owner" ? "audit" : "owner-or-approval",
    apply: async () => {
      const up = await send();
      return { body: undefined, audit: [{ action: policy.action, target: call.path, summary: `${summary} (engine answered ${up.status})` }], send: (res) => relay(res, up) };
    },
  });
}

function relay(res: ServerResponse, up: { status: number; contentType: string | undefined; text: string }): void {
  res.writeHead(up.status, { "Content-Type": up.contentType ?? "application/json" });
  res.end(up.text);
}

/** Whether the named command's template runs a shell (unknown commands are treated as if they do). */
async function commandRunsShell(rc: RouteContext, call: EngineCall, body: unknown): Promise<boolean> {
  const name = body !== null && typeof body === "object" ? (body as { command?: unknown }).command : undefined;
  if (typeof name !== "string") return true;
  const list = await engineRequest(call.target, "GET", "/command", { signal: rc.signal, timeoutMs: rc.server.proxy.headersTimeoutMs, maxBytes: LIMITS.engineRelayMaxBytes });
  const commands = list.ok ? jsonOrText(list.text) : undefined;
  const found = Array.isArray(commands) ? commands.find((c: { name?: unknown }) => c?.name === name) as { template?: unknown } | undefined : undefined;
  return typeof found?.template !== "string" || /!`/.test(found.template);
}

/**
 * A viewer's read of engine secrets: the answer is fetched whole and redacted like our own config
 * (provider keys, MCP headers, credentials); file content of a secret-class file is refused.
 */
async function viewerRead(rc: RouteContext, call: EngineCall, policy: EnginePolicy): Promise<typeof HANDLED> {
  if (policy.fileRead) checkViewerName(true, call.query.get("path") ?? "");
  const up = await engineRequest(call.target, "GET", call.rest, { query: call.query, signal: rc.signal, timeoutMs: rc.server.proxy.headersTimeoutMs, maxBytes: LIMITS.engineRelayMaxBytes });
  const body = jsonOrText(up.text);
  if (policy.fileRead) {
    const content = body !== null && typeof body === "object" ? (body as { content?: unknown }).content : undefined;
    if (typeof content === "string" && secretByContent(Buffer.from(content))) throw viewerRefused();
  }
  sendJson(rc.res, up.status, typeof body === "string" ? redactEmbedded(body) : redactSecrets(body));
  return HANDLED;
}

/** `DELETE /workspace/:id/sessions/:sessionId` → upstream `DELETE /session/:id`. */
async function deleteSession(rc: RouteContext) {
  const sessionId = rc.params.sessionId ?? "";
  // The id becomes a path segment upstream: no dots, slashes or other surprises.
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(sessionId)) throw new ApiError("invalid_path", "Invalid session id");
  const ws = rc.workspace!;
  const target = checkedTarget(rc.server, ws);
  // The engine's own data is not a workspace file, so no host approval is asked (as for engine
  // reload); the route is read-only-gated and audited.
  return plan({
    workspaceId: ws.id,
    action: "engine.session.delete",
    summary: `Delete OpenCode session ${sessionId}`,
    target: sessionId,
    paths: [],
    change: { sessionId },
    apply: async () => {
      const res = await engineRequest(target, "DELETE", `/session/${sessionId}`, { signal: rc.signal, timeoutMs: rc.server.proxy.headersTimeoutMs });
      if (!res.ok) throw new ApiError("opencode_request_failed", "OpenCode request failed", { status: res.status, body: jsonOrText(res.text) });
      return { body: { ok: true } };
    },
  });
}

/**
 * OpenCode Router: any client → health/root; collaborator → bindings/identities; host → the rest.
 * The host's writes (identities holding bot tokens, bindings that route a chat into a workspace,
 * messages sent) are audited like the engine's — in the mounted, else the active, workspace's
 * log, with the method and path but never the body (it may carry bot tokens).
 */
async function routerProxy(rc: RouteContext): Promise<typeof HANDLED | WritePlan> {
  assertOriginForm(rc.req);
  // The rest after `/opencode-router` (the route's own `*` may start deeper, e.g. identities/*).
  const segments = rc.path.split("/");
  const rest = segments.length > 2 ? "/" + segments.slice(2).join("/") : "";
  assertSafeProxyPath(rest);
  const write = !READ_METHODS.has(rc.method);
  // Read-only mode is enforced here: the route also relays the host's reads.
  if (write && rc.server.config.readOnly) throw new ApiError("read_only", "Server is read-only");
  const port = rc.server.config.routerHealthPort;
  // Checked after auth (the router ran it), so an anonymous caller learns nothing about the setup.
  if (port === undefined) throw new ApiError("opencode_router_unconfigured", "OpenCode Router is not configured");
  const url = new URL(`http://127.0.0.1:${port}`);
  url.pathname = rest === "" ? "/" : rest;
  url.search = rc.query.toString();
  const mount = rc.mount ? `/w/${encodeURIComponent(rc.mount.id)}/opencode-router` : "/opencode-router";
  const relay = () => proxyHttp(rc.req, rc.res, { url }, rc.server.proxy, ROUTER_ERRORS, {
    rewriteLocation: locationRewriter(new URL(`http://127.0.0.1:${port}/`), mount),
    tokenHash: rc.actor!.tokenHash,
  });
  if (!write) {
    await relay();
    return HANDLED;
  }
  const summary = `${rc.method} /opencode-router${rest} (OpenCode Router)`;
  return plan({
    workspaceId: (rc.mount ?? rc.server.workspaces.active())?.id ?? null,
    action: "opencodeRouter.request",
    summary,
    target: `opencodeRouter${rest}`,
    paths: [],
    // No body and no query: either may carry a bot token.
    change: { method: rc.method, path: rest },
    apply: async () => {
      // The router's answer goes to the client as it comes; the outcome records its status.
      await relay();
      return { body: undefined, send: () => {}, audit: [{ action: "opencodeRouter.request", target: `opencodeRouter${rest}`, summary: `${summary}: router answered ${rc.res.statusCode}` }] };
    },
  });
}

/**
 * WebSocket upgrades (OpenCode's terminal): matched, authenticated (token also as `?token=`) and
 * mounted by the server's pipeline like any request; the `token` parameter never travels upstream.
 * Each socket opened is audited first (a terminal cannot be approved keystroke by keystroke, but
 * who opened which one is on record); no record, no socket.
 */
async function opencodeUpgrade(rc: UpgradeContext): Promise<void> {
  const rest = rc.params["*"] ?? "";
  assertSafeProxyPath(rest);
  if (String(rc.req.headers.upgrade ?? "").toLowerCase() !== "websocket") throw new ApiError("invalid_payload", "Only WebSocket upgrades are proxied");
  // A socket carries input both ways: never for viewers or in read-only mode, and the terminal
  // (keystrokes to a shell) only for owners and the host, as its HTTP endpoints.
  const path = decodedPath(rest);
  const terminal = /^\/(api\/)?pty(\/|$)/.test(path);
  authorizeEngine(rc.server, rc.actor!, "POST", { cls: terminal ? "owner" : "chat", action: "engine.socket" });
  const ws = proxyWorkspace(rc.server, rc.mount);
  const oc = checkedTarget(rc.server, ws);
  await rc.server.audit.append(ws.id, rc.actor!, { action: terminal ? "engine.pty.connect" : "engine.socket", target: path, summary: `${terminal ? "Terminal" : "WebSocket"} opened: ${path}` });
  const query = new URLSearchParams(rc.query);
  query.delete("token");
  const mount = rc.mount ? `/w/${encodeURIComponent(ws.id)}/opencode` : "/opencode";
  proxyUpgrade(rc.req, rc.socket, rc.head, { url: upstreamUrl(oc, rest, query), headers: engineHeaders(oc) }, rc.server.proxy, OPENCODE_ERRORS, {
    tokenHash: rc.actor!.tokenHash,
    rewriteLocation: locationRewriter(oc.baseUrl, mount),
  });
}

export const routes: RouteDef[] = [
  // Any client; the engine policy table (src/engine-policy.ts) decides per method and path who may
  // do what, and which writes wait for the host (reads are allowed in read-only mode).
  { method: "*", path: "/opencode/*", auth: "client", gate: "owner-or-approval", readOnlyAllowed: true, handler: opencodeProxy, upgrade: opencodeUpgrade },
  { method: "DELETE", path: "/workspace/:id/sessions/:sessionId", auth: "client", scope: "collaborator", gate: "audit", workspace: true, handler: deleteSession },
  // OpenCode Router: any client → health/root; collaborator → bindings/identities; host → the rest.
  // Specific rows first (the router takes the first match).
  { method: "GET", path: "/opencode-router", auth: "client", handler: routerProxy },
  { method: "GET", path: "/opencode-router/health", auth: "client", handler: routerProxy },
  { method: "GET", path: "/opencode-router/bindings", auth: "client", scope: "collaborator", handler: routerProxy },
  { method: "GET", path: "/opencode-router/identities/*", auth: "client", scope: "collaborator", handler: routerProxy },
  // The host's reads and writes; writes are audited (gate "audit": host and owners only, no approval).
  { method: "*", path: "/opencode-router/*", auth: "host", gate: "audit", readOnlyAllowed: true, handler: routerProxy },
];
