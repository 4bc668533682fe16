// Route table: health, status, capabilities, whoami (and their /w/:id/ variants).
import { json, jsonText, type RouteContext, type RouteDef } from "../http/route.ts";
import { serializeWorkspace } from "../workspaces.ts";
import type { ServerContext } from "../context.ts";
import type { Workspace } from "../types.ts";

/** `{"ok":true,"version":…,"uptimeMs":…}`: only the uptime changes, so only it is formatted per request. */
const healthHead = new WeakMap<ServerContext, string>();
function health(server: ServerContext) {
  let head = healthHead.get(server);
  if (head === undefined) healthHead.set(server, (head = `{"ok":true,"version":${JSON.stringify(server.version)},"uptimeMs":`));
  return jsonText(`${head}${Date.now() - server.startedAt}}`);
}

/**
 * Viewers get credentials redacted and no server paths. The answer only changes with the workspace
 * list, the listening URL and the clock: it is serialized once per (viewer, mount, list revision)
 * and only `uptimeMs` is spliced in per request (`/status` is the clients' heartbeat).
 */
const statusCache = new WeakMap<ServerContext, Map<string, { revision: number; url: string | undefined; head: string; tail: string }>>();

function status(rc: RouteContext, only?: Workspace) {
  const { server } = rc;
  const viewer = rc.actor?.scope === "viewer";
  const key = `${viewer ? "v" : "c"}:${only?.id ?? ""}`;
  let cache = statusCache.get(server);
  if (!cache) statusCache.set(server, (cache = new Map()));
  let hit = cache.get(key);
  if (!hit || hit.revision !== server.workspaces.revision || hit.url !== server.url) {
    const text = JSON.stringify(statusBody(server, viewer, only));
    const at = text.indexOf(UPTIME_MARK) + UPTIME_MARK.length;
    hit = { revision: server.workspaces.revision, url: server.url, head: text.slice(0, at), tail: text.slice(at + 2) };
    cache.set(key, hit);
  }
  return jsonText(hit.head + String(Date.now() - server.startedAt) + hit.tail);
}

const UPTIME_MARK = '"uptimeMs":';

function statusBody(server: ServerContext, viewer: boolean, only?: Workspace): Record<string, unknown> {
  const { config } = server;
  const active = only ?? server.workspaces.active();
  const body: Record<string, unknown> = {
    ok: true,
    version: server.version,
    uptimeMs: -1, // replaced per request (two characters: see `tail`)
    readOnly: config.readOnly,
    approval: { mode: config.approval.mode, timeoutMs: config.approval.timeoutMs },
    corsOrigins: config.corsOrigins,
    workspaceCount: only ? 1 : server.workspaces.list().length,
    activeWorkspaceId: active?.id ?? null,
  };
  if (active) body.workspace = serializeWorkspace(config, active, { redact: viewer });
  if (!viewer) body.authorizedRoots = config.authorizedRoots;
  // The real port (config.port may be 0): the last ":" of the listening URL.
  const port = server.url ? Number(server.url.slice(server.url.lastIndexOf(":") + 1)) : config.port;
  const serverInfo: Record<string, unknown> = { host: config.host, port };
  if (!viewer) serverInfo.configPath = config.configPath;
  body.server = serverInfo;
  body.tokenSource = config.tokenSource;
  return body;
}

function capabilities(server: ServerContext) {
  const { config } = server;
  const write = !config.readOnly;
  const rw = { read: true, write };
  const proxyOpencode = Boolean(config.opencode.baseUrl) || server.workspaces.list().some((w) => Boolean(w.baseUrl));
  return json({
    schemaVersion: 1,
    serverVersion: server.version,
    skills: { ...rw, source: "openwork" },
    plugins: rw,
    mcp: rw,
    commands: rw,
    config: rw,
    approvals: { mode: config.approval.mode, timeoutMs: config.approval.timeoutMs },
    sandbox: config.sandbox,
    ui: { toy: config.toyUi },
    tokens: { scoped: true, scopes: ["owner", "collaborator", "viewer"] },
    proxy: { opencode: proxyOpencode, opencodeRouter: config.routerHealthPort !== undefined },
    events: { sse: true },
    // The app uses our hub routes only when these say so (else it lists straight from GitHub).
    hub: { skills: { read: config.hub.enabled, install: config.hub.enabled && write, repo: { ...config.hub.repo } } },
    toolProviders: {
      browser: { enabled: false, placement: "external", mode: "none" },
      files: {
        injection: write && config.inbox.enabled,
        outbox: config.outboxEnabled,
        inboxPath: ".opencode/openwork/inbox/",
        outboxPath: ".opencode/openwork/outbox/",
        maxBytes: config.inbox.maxBytes,
      },
    },
  });
}

// Under a mounted base URL (`/w/<id>/…`) health stays credential-free (an unknown id is still a
// 404 so clients notice a stale id) and status describes that workspace only.
export const routes: RouteDef[] = [
  { method: "GET", path: "/health", auth: "none", handler: (rc) => health(rc.server) },
  { method: "GET", path: "/status", auth: "client", handler: (rc) => status(rc, rc.mount) },
  { method: "GET", path: "/capabilities", auth: "client", handler: async (rc) => capabilities(rc.server) },
  { method: "GET", path: "/whoami", auth: "client", handler: async (rc) => json({ ok: true, actor: rc.actor }) },
];
