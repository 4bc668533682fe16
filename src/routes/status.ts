// Route table: health, status, capabilities, whoami (and their /w/:id/ variants).
import { json, type RouteContext, type RouteDef } from "../http/route.ts";
import { serializeWorkspace } from "../workspaces.ts";
import type { ServerContext } from "../context.ts";
import type { Workspace } from "../types.ts";

function health(server: ServerContext) {
  return json({ ok: true, version: server.version, uptimeMs: Date.now() - server.startedAt });
}

/** Viewers get credentials redacted and no server paths. */
function status(rc: RouteContext, only?: Workspace) {
  const { server } = rc;
  const { config } = server;
  const viewer = rc.actor?.scope === "viewer";
  const active = only ?? server.workspaces.active();
  const body: Record<string, unknown> = {
    ok: true,
    version: server.version,
    uptimeMs: Date.now() - server.startedAt,
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
  return json(body);
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
  { method: "GET", path: "/health", auth: "none", handler: async (rc) => health(rc.server) },
  { method: "GET", path: "/status", auth: "client", handler: async (rc) => status(rc, rc.mount) },
  { method: "GET", path: "/capabilities", auth: "client", handler: async (rc) => capabilities(rc.server) },
  { method: "GET", path: "/whoami", auth: "client", handler: async (rc) => json({ ok: true, actor: rc.actor }) },
];
