// Route table: issue 3 — workspace configuration API (config, plugins, skills, MCP, commands, audit, export/import, events, engine reload).
import path from "node:path";
import { ApiError } from "../http/errors.ts";
import { HANDLED, json, type RouteContext, type RouteDef } from "../http/route.ts";
import { lastEventId, openSse, wantsSse } from "../http/sse.ts";
import { LIMITS } from "../limits.ts";
import { opencodeTarget, upstreamUrl } from "../opencode-target.ts";
import { isPlainObject, jsonEqual } from "../formats/jsonc.ts";
import { plan } from "../types.ts";
import {
  describeEdit,
  editOpencode,
  openworkText,
  readGlobalOpencode,
  readWorkspaceConfig,
  relPosix,
  valueOrThrow,
  type FileEdit,
} from "../workspace/opencode-config.ts";
import { checkPluginSpec, configPlugins, globalPluginsDir, normalizePluginSpec, pluginFiles, PLUGIN_LOAD_ORDER, type PluginItem } from "../workspace/plugins.ts";
import { checkMcpConfig, checkMcpName, listMcp, mcpOf } from "../workspace/mcp.ts";
import { redactSecrets } from "../workspace/redaction.ts";
import { checkEditTargets, commitEdits, isViewer, loadConfig, loadPluginFiles, sendJsonText, W, WRITE, ws, wsState } from "./workspace-common.ts";
import { routes as skillRoutes } from "./workspace-skills.ts";
import { routes as transferRoutes } from "./workspace-transfer.ts";
import type { ReloadEvent, ReloadReason, ReloadTrigger } from "../workspace/reload-events.ts";

function flag(rc: RouteContext, name: string): boolean {
  const v = rc.query.get(name);
  return v === "true" || v === "1";
}

/** Copies `obj` with `key` set (defineProperty: a name can never reach a prototype). */
function withKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/** The global OpenCode config, or {} when it is missing or unreadable (the host's own file never fails a workspace request). */
async function globalConfig(rc: RouteContext): Promise<Record<string, unknown>> {
  try {
    const g = await readGlobalOpencode(rc.server.config.homeDir);
    return g.value ?? {};
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------
// Config

async function getConfig(rc: RouteContext) {
  const cfg = await loadConfig(rc);
  const opencode = valueOrThrow(cfg.opencode);
  const openwork = valueOrThrow(cfg.openwork);
  const updatedAt = await rc.server.audit.lastTimestamp(ws(rc).id);
  if (isViewer(rc)) return json(redactSecrets({ opencode, openwork, updatedAt }));
  // The config part is rendered once per cache generation; only updatedAt changes per request.
  cfg.rendered ??= JSON.stringify({ opencode, openwork, updatedAt: 0 }).slice(0, -2);
  return sendJsonText(rc, `${cfg.rendered}${JSON.stringify(updatedAt)}}`);
}

function objectField(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw new ApiError(400, "invalid_payload", `${key} must be an object`);
  return v;
}

async function patchConfig(rc: RouteContext) {
  const body = await rc.readJson();
  const oc = objectField(body, "opencode");
  const ow = objectField(body, "openwork");
  if (!oc && !ow) throw new ApiError(400, "invalid_payload", "Body needs `opencode` and/or `openwork`");
  const w = ws(rc);
  // Writes are computed from the files as they are on disk now, not from the cache.
  const cfg = await readWorkspaceConfig(w.path);
  const ocEdit = oc ? editOpencode(cfg.opencode, oc) : null;
  let owEdit: FileEdit | null = null;
  if (ow) {
    const current = valueOrThrow(cfg.openwork);
    const next = { ...current, ...ow };
    if (!jsonEqual(current, next)) {
      owEdit = { path: cfg.openwork.path, display: cfg.openwork.display, base: cfg.openwork.text, next: openworkText(next) };
    }
  }
  const edits = [ocEdit, owEdit].filter((e): e is FileEdit => e !== null);
  if (edits.length === 0) {
    // Nothing would change: no write, no approval.
    return json({ updatedAt: await rc.server.audit.lastTimestamp(w.id), opencode: valueOrThrow(cfg.opencode), openwork: valueOrThrow(cfg.openwork) });
  }
  const change: Record<string, unknown> = {};
  if (ocEdit) change.opencode = { set: oc, file: describeEdit(ocEdit) };
  if (owEdit) change.openwork = { merge: ow, file: describeEdit(owEdit) };
  await checkEditTargets(w.path, edits);
  const keys = [...(ocEdit ? Object.keys(oc!) : []), ...(owEdit ? Object.keys(ow!).map((k) => `openwork.${k}`) : [])];
  return plan({
    workspaceId: w.id,
    action: "config.patch",
    summary: `Update config: ${keys.join(", ")}`,
    paths: edits.map((e) => e.path),
    change,
    risk: ocEdit ? ["executes-code"] : [],
    target: edits.map((e) => e.display).join(", "),
    apply: async () => {
      const main = ocEdit ?? owEdit!;
      await commitEdits(rc, w.path, edits, { kinds: ["config"], events: [{ reason: "config", trigger: { type: "config", name: path.basename(main.path), action: main.base === undefined ? "added" : "updated", path: main.display } }] });
      const now = await readWorkspaceConfig(w.path);
      return { body: { updatedAt: Date.now(), opencode: valueOrThrow(now.opencode), openwork: valueOrThrow(now.openwork) } };
    },
  });
}

/**
 * The plan of a one-file edit of opencode.json(c) (plugins, MCP). Any such write can make the
 * agent run code, hence always `executes-code`.
 */
function opencodeEditPlan(
  rc: RouteContext,
  edit: FileEdit,
  o: { action: string; summary: string; change: Record<string, unknown>; target: string; event: { reason: ReloadReason; trigger: ReloadTrigger }; answer: () => Promise<unknown> },
) {
  const w = ws(rc);
  return plan({
    workspaceId: w.id,
    action: o.action,
    summary: o.summary,
    paths: [edit.path],
    change: { ...o.change, file: describeEdit(edit) },
    risk: ["executes-code"],
    target: o.target,
    apply: async () => {
      await commitEdits(rc, w.path, [edit], { kinds: ["config"], events: [o.event] });
      return { body: await o.answer() };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Plugins

async function pluginsBody(rc: RouteContext, includeGlobal: boolean) {
  const cfg = await loadConfig(rc);
  const project = valueOrThrow(cfg.opencode);
  const items: PluginItem[] = [];
  const home = rc.server.config.homeDir;
  if (includeGlobal) for (const spec of configPlugins(await globalConfig(rc))) items.push({ spec, source: "config", scope: "global" });
  for (const spec of configPlugins(project)) items.push({ spec, source: "config", scope: "project" });
  if (includeGlobal) {
    const dir = globalPluginsDir(home);
    for (const f of await pluginFiles(dir)) items.push({ spec: f, source: "dir.global", scope: "global", path: "~/" + relPosix(home, path.join(dir, f)) });
  }
  for (const f of await loadPluginFiles(rc)) items.push({ spec: f, source: "dir.project", scope: "project", path: `.opencode/plugins/${f}` });
  return { items, loadOrder: [...PLUGIN_LOAD_ORDER] };
}

async function addPlugin(rc: RouteContext) {
  const body = await rc.readJson();
  const spec = checkPluginSpec(body.spec);
  const w = ws(rc);
  const cfg = await readWorkspaceConfig(w.path);
  const current = valueOrThrow(cfg.opencode);
  const norm = normalizePluginSpec(spec);
  if (configPlugins(current).some((p) => normalizePluginSpec(p) === norm)) return json(await pluginsBody(rc, false));
  const raw = current.plugin;
  const next = Array.isArray(raw) ? [...raw, spec] : typeof raw === "string" ? [raw, spec] : [spec];
  const edit = editOpencode(cfg.opencode, { plugin: next })!;
  await checkEditTargets(w.path, [edit]);
  return opencodeEditPlan(rc, edit, {
    action: "plugins.add",
    summary: `Add plugin ${spec}`,
    change: { spec, plugin: next },
    target: spec,
    event: { reason: "plugins", trigger: { type: "plugin", name: spec, action: "added", path: edit.display } },
    answer: () => pluginsBody(rc, false),
  });
}

async function removePlugin(rc: RouteContext) {
  const name = (rc.params.name ?? "").trim();
  if (name === "") throw new ApiError(400, "invalid_plugin_spec", "Plugin name is required");
  const w = ws(rc);
  const cfg = await readWorkspaceConfig(w.path);
  const current = valueOrThrow(cfg.opencode);
  const norm = normalizePluginSpec(name);
  const raw = current.plugin;
  const list: unknown[] = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  const next = list.filter((p) => !(typeof p === "string" && normalizePluginSpec(p) === norm));
  if (next.length === list.length) throw new ApiError(404, "plugin_not_found", `Plugin not found: ${name}`);
  const edit = editOpencode(cfg.opencode, { plugin: next })!;
  return opencodeEditPlan(rc, edit, {
    action: "plugins.remove",
    summary: `Remove plugin ${norm}`,
    change: { name: norm, removed: list.filter((p) => !next.includes(p)), plugin: next },
    target: norm,
    event: { reason: "plugins", trigger: { type: "plugin", name: norm, action: "removed", path: edit.display } },
    answer: () => pluginsBody(rc, false),
  });
}

// ---------------------------------------------------------------------------------------------
// MCP

async function mcpBody(rc: RouteContext) {
  const cfg = await loadConfig(rc);
  const items = listMcp(await globalConfig(rc), valueOrThrow(cfg.opencode));
  return { items: isViewer(rc) ? items.map((i) => ({ ...i, config: redactSecrets(i.config) })) : items };
}

async function addMcp(rc: RouteContext) {
  const body = await rc.readJson();
  const name = checkMcpName(body.name);
  const config = checkMcpConfig(body.config);
  const w = ws(rc);
  const cfg = await readWorkspaceConfig(w.path);
  const current = valueOrThrow(cfg.opencode);
  const mcp = mcpOf(current);
  if (Object.prototype.hasOwnProperty.call(mcp, name) && jsonEqual(mcp[name], config)) return json(await mcpBody(rc));
  const edit = editOpencode(cfg.opencode, { mcp: withKey(mcp, name, config) })!;
  await checkEditTargets(w.path, [edit]);
  return opencodeEditPlan(rc, edit, {
    action: "mcp.add",
    summary: `Add MCP server ${name} (${String(config.type)})`,
    change: { name, config },
    target: name,
    event: { reason: "mcp", trigger: { type: "mcp", name, action: Object.prototype.hasOwnProperty.call(mcp, name) ? "updated" : "added", path: edit.display } },
    answer: () => mcpBody(rc),
  });
}

async function removeMcp(rc: RouteContext) {
  const name = checkMcpName(rc.params.name);
  const w = ws(rc);
  const cfg = await readWorkspaceConfig(w.path);
  const mcp = mcpOf(valueOrThrow(cfg.opencode));
  if (!Object.prototype.hasOwnProperty.call(mcp, name)) throw new ApiError(404, "mcp_not_found", `MCP server not found: ${name}`);
  const next: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(mcp)) if (k !== name) Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
  const edit = editOpencode(cfg.opencode, { mcp: next })!;
  return opencodeEditPlan(rc, edit, {
    action: "mcp.remove",
    summary: `Remove MCP server ${name}`,
    change: { name, removed: mcp[name] },
    target: name,
    event: { reason: "mcp", trigger: { type: "mcp", name, action: "removed", path: edit.display } },
    answer: () => mcpBody(rc),
  });
}

// ---------------------------------------------------------------------------------------------
// Audit

async function getAudit(rc: RouteContext) {
  const raw = rc.query.get("limit");
  let limit: number = LIMITS.auditDefaultLimit;
  if (raw !== null && raw !== "") {
    if (!/^\d{1,9}$/.test(raw)) throw new ApiError(400, "invalid_payload", "limit must be a positive integer");
    limit = Math.min(Math.max(Number(raw), 1), LIMITS.auditMaxLimit);
  }
  const items = await rc.server.audit.tail(ws(rc).id, limit);
  const viewer = isViewer(rc);
  const owner = rc.actor!.scope === "owner";
  if (owner) return json({ items });
  // Viewers never see token hashes. Collaborators do not see the host token's hash either: a
  // host token the user chose may be weak, and its plain sha256 could be guessed offline.
  return json({
    items: items.map((e) => {
      if (!("tokenHash" in e.actor) || (!viewer && e.actor.type !== "host")) return e;
      const actor: Record<string, unknown> = { ...e.actor };
      delete actor.tokenHash;
      return { ...e, actor };
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// Reload events

function parseSeq(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw === "") return undefined;
  return /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
}

async function getEvents(rc: RouteContext) {
  const state = await wsState(rc);
  const w = ws(rc);
  if (wantsSse(rc.req)) {
    // Last-Event-ID wins over ?since; garbage in either means "resync".
    const header = lastEventId(rc.req);
    const since = parseSeq(header ?? rc.query.get("since"));
    const stream = openSse(rc);
    const unsubscribe = state.subscribe((e) => stream.send({ id: e.seq, event: "reload", data: e }));
    stream.onClose(unsubscribe);
    if (since !== undefined) {
      const r = Number.isNaN(since) ? { items: [] as ReloadEvent[], reset: true } : state.since(since);
      if (r.reset) stream.send({ event: "reset", data: { reset: true, cursor: state.cursor, workspaceId: w.id } });
      for (const e of r.items) stream.send({ id: e.seq, event: "reload", data: e });
    }
    return HANDLED;
  }
  const since = parseSeq(rc.query.get("since"));
  if (since !== undefined && Number.isNaN(since)) throw new ApiError(400, "invalid_payload", "since must be a non-negative integer");
  const waitRaw = rc.query.get("wait");
  let waitS = 0;
  if (waitRaw !== null && waitRaw !== "") {
    const n = Number(waitRaw);
    if (!Number.isFinite(n) || n < 0) throw new ApiError(400, "invalid_payload", "wait must be a number of seconds");
    waitS = Math.min(n, LIMITS.longPollMaxSeconds);
  }
  const answer = () => {
    const r = since === undefined ? { items: state.since(0).items, reset: false } : state.since(since);
    const body: Record<string, unknown> = { items: r.items, cursor: state.cursor, workspaceId: w.id, disabled: false };
    if (r.reset) body.reset = true;
    return body;
  };
  let body = answer();
  if ((body.items as unknown[]).length === 0 && !body.reset && waitS > 0) {
    // Held until an event, the deadline, the client leaving, or server shutdown (never past close()).
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        rc.signal.removeEventListener("abort", done);
        rc.server.bus.off("shutdown", done);
        resolve();
      };
      const timer = setTimeout(done, waitS * 1000);
      timer.unref();
      const unsubscribe = state.subscribe(done);
      rc.signal.addEventListener("abort", done);
      rc.server.bus.on("shutdown", done);
    });
    body = answer();
  }
  return json(body);
}

// ---------------------------------------------------------------------------------------------
// Engine reload

async function engineReload(rc: RouteContext) {
  const w = ws(rc);
  const target = opencodeTarget(rc.server.config, w);
  const state = await wsState(rc);
  const now = Date.now();
  if (now - state.lastEngineReload < LIMITS.engineReloadMinIntervalMs) {
    throw new ApiError(429, "reload_rate_limited", "Engine reload was requested less than 2 s ago", { retryAfterMs: LIMITS.engineReloadMinIntervalMs - (now - state.lastEngineReload) });
  }
  state.lastEngineReload = now;
  const url = upstreamUrl(target, "/instance/dispose");
  return plan({
    workspaceId: w.id,
    action: "engine.reload",
    summary: "Reload the OpenCode engine",
    paths: [],
    change: { url: `${url.origin}${url.pathname}`, directory: target.directory },
    target: target.directory,
    approval: false,
    apply: async () => {
      const headers: Record<string, string> = { accept: "application/json" };
      if (target.authorization) headers.authorization = target.authorization;
      let res: Response;
      try {
        res = await fetch(url, { method: "POST", headers, signal: AbortSignal.any([rc.signal, AbortSignal.timeout(LIMITS.proxyHeadersTimeoutMs)]) });
      } catch {
        throw new ApiError(502, "opencode_unreachable", "OpenCode server is unreachable");
      }
      const text = await res.text().catch(() => "");
      if (!res.ok) {
        throw new ApiError(502, "opencode_reload_failed", "OpenCode engine reload failed", { status: res.status, body: text.slice(0, 2048) });
      }
      return { body: { ok: true, reloadedAt: Date.now() } };
    },
  });
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/config", ...W, handler: getConfig },
  { method: "PATCH", path: "/workspace/:id/config", ...WRITE, handler: patchConfig },
  { method: "GET", path: "/workspace/:id/plugins", ...W, handler: async (rc) => json(await pluginsBody(rc, flag(rc, "includeGlobal"))) },
  { method: "POST", path: "/workspace/:id/plugins", ...WRITE, handler: addPlugin },
  { method: "DELETE", path: "/workspace/:id/plugins/:name", ...WRITE, handler: removePlugin },
  { method: "GET", path: "/workspace/:id/mcp", ...W, handler: async (rc) => json(await mcpBody(rc)) },
  { method: "POST", path: "/workspace/:id/mcp", ...WRITE, handler: addMcp },
  { method: "DELETE", path: "/workspace/:id/mcp/:name", ...WRITE, handler: removeMcp },
  { method: "GET", path: "/workspace/:id/audit", ...W, handler: getAudit },
  { method: "GET", path: "/workspace/:id/events", ...W, handler: getEvents },
  { method: "POST", path: "/workspace/:id/engine/reload", ...WRITE, handler: engineReload },
  ...skillRoutes,
  ...transferRoutes,
];
