// Route table: a workspace's configuration — config, plugins, MCP, audit, reload events, engine
// reload, export/import. Handlers parse, call the domain, and return its answer or write plan.
import { ApiError } from "../errors.ts";
import { engineRequest, opencodeTarget } from "../engine.ts";
import { sendJsonText } from "../http/reply.ts";
import { boolParam, intParam, streamStart } from "../http/query.ts";
import { HANDLED, json, jsonText, type RouteContext, type RouteDef } from "../http/route.ts";
import { lastEventId, longPollFor, openSse, wantsSse } from "../http/sse.ts";
import { LIMITS } from "../limits.ts";
import { plan } from "../types.ts";
import { planConfigPatch, valueOrThrow } from "../workspace/opencode-config.ts";
import { listPlugins, planPluginAdd, planPluginRemove } from "../workspace/plugins.ts";
import { mcpListText, planMcpAdd, planMcpLogout, planMcpRemove } from "../workspace/mcp.ts";
import { redactSecrets } from "../workspace/redaction.ts";
import { exportWorkspace, planImportWrite } from "../workspace/transfer.ts";
import { isViewer, READ, state, WRITE } from "./shared.ts";

async function getConfig(rc: RouteContext) {
  const cfg = await (await state(rc)).config();
  const opencode = valueOrThrow(cfg.opencode);
  const openwork = valueOrThrow(cfg.openwork);
  const updatedAt = await rc.server.audit.lastTimestamp(rc.workspace!.id);
  if (isViewer(rc)) return json(redactSecrets({ opencode, openwork, updatedAt }));
  // The config part is rendered once per cache generation; only updatedAt changes per request.
  cfg.rendered ??= JSON.stringify({ opencode, openwork, updatedAt: 0 }).slice(0, -2);
  sendJsonText(rc.res, 200, `${cfg.rendered}${JSON.stringify(updatedAt)}}`);
  return HANDLED;
}

/**
 * The audit list, cached per (workspace, caller class, limit) until the log file changes (its
 * size, mtime and inode: one stat per request instead of reading and parsing the tail).
 */
const auditAnswers = new WeakMap<object, Map<string, { version: string; text: string }>>();

async function getAudit(rc: RouteContext) {
  const limit = Math.min(Math.max(intParam(rc.query, "limit") ?? LIMITS.auditDefaultLimit, 1), LIMITS.auditMaxLimit);
  const audit = rc.server.audit;
  const id = rc.workspace!.id;
  const who = rc.actor!.scope === "owner" ? "owner" : isViewer(rc) ? "viewer" : "collaborator";
  let cache = auditAnswers.get(audit);
  if (!cache) auditAnswers.set(audit, (cache = new Map()));
  const key = `${id}:${who}:${limit}`;
  const version = audit.version(id);
  const hit = cache.get(key);
  if (hit && hit.version === version && version !== "") return jsonText(hit.text);
  // One entry per write: the write-ahead intents and the outcomes of writes that failed stay in the
  // file (and `audit verify`); the list shows what happened.
  const items = (await audit.tail(id, limit * 2 + 1)).filter((e) => e.phase !== "intent" && e.result !== "failed").slice(0, limit);
  // Viewers never see token hashes. Collaborators do not see the host token's hash either: a
  // host token the user chose may be weak, and its plain sha256 could be guessed offline.
  const shown = who === "owner" ? items : items.map((e) => {
    if (!("tokenHash" in e.actor) || (who === "collaborator" && e.actor.type !== "host")) return e;
    const actor: Record<string, unknown> = { ...e.actor };
    delete actor.tokenHash;
    return { ...e, actor };
  });
  const text = JSON.stringify({ items: shown });
  if (cache.size > 1000) cache.clear();
  cache.set(key, { version, text });
  return jsonText(text);
}

async function getEvents(rc: RouteContext) {
  const s = await state(rc);
  const workspaceId = rc.workspace!.id;
  if (wantsSse(rc.req)) {
    openSse(rc).follow(s.log, {
      start: streamStart(lastEventId(rc.req), rc.query),
      event: () => "reload",
      reset: (cursor) => ({ reset: true, cursor, workspaceId }),
    });
    return HANDLED;
  }
  // No `since`: everything still buffered (the cursor just before the oldest event never resets).
  const since = intParam(rc.query, "since") ?? s.cursor - s.log.all().length;
  const page = await longPollFor(rc, s.log, since);
  // Reload clients refetch on reset: they get the whole buffer with it.
  const body: Record<string, unknown> = { items: page.reset ? s.log.all() : page.items, cursor: s.cursor, workspaceId, disabled: false };
  if (page.reset) body.reset = true;
  return json(body);
}

async function engineReload(rc: RouteContext) {
  const ws = rc.workspace!;
  const target = opencodeTarget(rc.server.config, ws);
  const s = await state(rc);
  const now = Date.now();
  if (now - s.lastEngineReload < LIMITS.engineReloadMinIntervalMs) {
    throw new ApiError("reload_rate_limited", "Engine reload was requested less than 2 s ago", { retryAfterMs: LIMITS.engineReloadMinIntervalMs - (now - s.lastEngineReload) });
  }
  s.lastEngineReload = now;
  return plan({
    workspaceId: ws.id,
    action: "engine.reload",
    summary: "Reload the OpenCode engine",
    paths: [],
    change: { url: `${target.baseUrl.origin}${target.baseUrl.pathname}`, directory: target.directory },
    target: target.directory,
    apply: async () => {
      const res = await engineRequest(target, "POST", "/instance/dispose", { signal: rc.signal, timeoutMs: LIMITS.proxyHeadersTimeoutMs });
      if (!res.ok) throw new ApiError("opencode_reload_failed", "OpenCode engine reload failed", { status: res.status, body: res.text.slice(0, 2048) });
      return { body: { ok: true, reloadedAt: Date.now() } };
    },
  });
}

const home = (rc: RouteContext) => rc.server.config.homeDir;

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/config", ...READ, handler: getConfig },
  { method: "PATCH", path: "/workspace/:id/config", ...WRITE, handler: async (rc) => planConfigPatch(rc.workspace!, await rc.readJson(), () => rc.server.audit.lastTimestamp(rc.workspace!.id), rc.server.config.dataDir) },
  { method: "GET", path: "/workspace/:id/plugins", ...READ, handler: async (rc) => json(await listPlugins(await state(rc), home(rc), boolParam(rc.query, "includeGlobal"))) },
  { method: "POST", path: "/workspace/:id/plugins", ...WRITE, handler: async (rc) => planPluginAdd(await state(rc), home(rc), (await rc.readJson()).spec) },
  { method: "DELETE", path: "/workspace/:id/plugins/:name", ...WRITE, handler: async (rc) => planPluginRemove(await state(rc), home(rc), rc.params.name ?? "") },
  { method: "GET", path: "/workspace/:id/mcp", ...READ, handler: async (rc) => jsonText(await mcpListText(await state(rc), home(rc), isViewer(rc))) },
  { method: "POST", path: "/workspace/:id/mcp", ...WRITE, handler: async (rc) => planMcpAdd(await state(rc), home(rc), await rc.readJson()) },
  { method: "DELETE", path: "/workspace/:id/mcp/:name", ...WRITE, handler: async (rc) => planMcpRemove(await state(rc), home(rc), rc.params.name) },
  { method: "DELETE", path: "/workspace/:id/mcp/:name/auth", ...WRITE, handler: async (rc) => planMcpLogout(rc.server.config, rc.workspace!, rc.params.name, rc.signal) },
  { method: "GET", path: "/workspace/:id/audit", ...READ, handler: getAudit },
  { method: "GET", path: "/workspace/:id/events", ...READ, handler: getEvents },
  // Collaborators may reload their engine at once (no approval by spec); read-only-gated and audited.
  { method: "POST", path: "/workspace/:id/engine/reload", ...WRITE, gate: "audit", handler: engineReload },
  { method: "GET", path: "/workspace/:id/export", ...READ, handler: async (rc) => json(await exportWorkspace(await state(rc), isViewer(rc))) },
  { method: "POST", path: "/workspace/:id/import", ...WRITE, handler: async (rc) => planImportWrite(await state(rc), await rc.readJson({ maxBytes: LIMITS.largeJsonBodyBytes }), rc.server.config.dataDir) },
];
