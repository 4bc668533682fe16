/**
 * MCP servers: the `mcp` object of the workspace and global OpenCode configs, validation of a
 * new entry, and `disabledByTools` (deny patterns in `tools`, matched with our glob).
 */
import { ApiError } from "../errors.ts";
import { globMatch } from "../formats/glob.ts";
import { isPlainObject, jsonEqual } from "../formats/jsonc.ts";
import path from "node:path";
import { engineRequest, jsonOrText, opencodeTarget } from "../engine.ts";
import { LIMITS } from "../limits.ts";
import { answer, plan, type Answer, type Workspace, type WritePlan } from "../types.ts";
import type { ServerConfig } from "../context.ts";
import { editOpencode, globalConfig, globalOpencodeDir, planEdits, readWorkspaceConfig, valueOrThrow, withKey } from "./opencode-config.ts";
import { redactSecrets } from "./redaction.ts";
import type { WorkspaceState } from "./reload-events.ts";
import { RESERVED_NAMES } from "./skills.ts";

export const MCP_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

export interface McpItem {
  name: string;
  config: unknown;
  source: "config.global" | "config.project";
  disabledByTools?: true;
}

/** The `mcp` object of a config ({} when absent or not an object). */
export function mcpOf(config: Record<string, unknown>): Record<string, unknown> {
  return isPlainObject(config.mcp) ? config.mcp : {};
}

/**
 * Deny patterns of a global and a project config, in both forms in use: OpenCode's own `tools`
 * map (keys whose value is `false`, project overriding global per key) and the reference's
 * `tools.deny` array of globs (both arrays count).
 */
export function denyPatterns(global: Record<string, unknown>, project: Record<string, unknown>): string[] {
  const merged = new Map<string, unknown>();
  const arrays: string[] = [];
  for (const cfg of [global, project]) {
    if (!isPlainObject(cfg.tools)) continue;
    for (const [k, v] of Object.entries(cfg.tools)) {
      if (k === "deny") {
        if (Array.isArray(v)) arrays.push(...v.filter((p): p is string => typeof p === "string"));
      } else merged.set(k, v);
    }
  }
  return [...arrays, ...[...merged].filter(([, v]) => v === false).map(([k]) => k)];
}

/** True when a deny pattern matches mcp.<name>, mcp.<name>.*, mcp:<name> or mcp:<name>:* — or is `mcp.*` / `mcp:*` itself. */
export function disabledByTools(name: string, patterns: string[]): boolean {
  const candidates = [`mcp.${name}`, `mcp.${name}.*`, `mcp:${name}`, `mcp:${name}:*`, "mcp.*", "mcp:*"];
  return patterns.some((p) => candidates.some((c) => globMatch(p, c)));
}

/** Global entries first (unless the project defines the same name), then project entries. */
export function listMcp(global: Record<string, unknown>, project: Record<string, unknown>): McpItem[] {
  const g = mcpOf(global);
  const p = mcpOf(project);
  const patterns = denyPatterns(global, project);
  const items: McpItem[] = [];
  const push = (name: string, config: unknown, source: McpItem["source"]) => {
    const item: McpItem = { name, config, source };
    if (disabledByTools(name, patterns)) item.disabledByTools = true;
    items.push(item);
  };
  for (const [name, config] of Object.entries(g)) if (!Object.prototype.hasOwnProperty.call(p, name)) push(name, config, "config.global");
  for (const [name, config] of Object.entries(p)) push(name, config, "config.project");
  return items;
}

/** 400 invalid_mcp_name unless `^[A-Za-z0-9_-]{1,64}$` and not starting with "-". */
export function checkMcpName(raw: unknown): string {
  if (typeof raw !== "string" || !MCP_NAME_RE.test(raw) || raw.startsWith("-") || RESERVED_NAMES.has(raw)) {
    throw new ApiError("invalid_mcp_name", "MCP name must match ^[A-Za-z0-9_-]{1,64}$ and not start with '-'");
  }
  return raw;
}

/** Validates an MCP server config: local needs a non-empty string array `command`, remote an http(s) `url`. */
export function checkMcpConfig(raw: unknown): Record<string, unknown> {
  if (!isPlainObject(raw)) throw new ApiError("invalid_mcp_config", "MCP config must be an object");
  const cfg = raw;
  if (cfg.type === "local") {
    const cmd = cfg.command;
    if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === "string" && c !== "")) {
      throw new ApiError("invalid_mcp_config", "A local MCP server needs a non-empty string array `command`");
    }
  } else if (cfg.type === "remote") {
    let ok = false;
    if (typeof cfg.url === "string") {
      try {
        const u = new URL(cfg.url);
        ok = u.protocol === "http:" || u.protocol === "https:";
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new ApiError("invalid_mcp_config", "A remote MCP server needs an http(s) `url`");
  } else {
    throw new ApiError("invalid_mcp_config", "MCP config `type` must be \"local\" or \"remote\"");
  }
  return cfg;
}

/** The list answer; viewers get every config with its secrets redacted. */
export async function mcpList(state: WorkspaceState, homeDir: string, viewer: boolean): Promise<{ items: McpItem[] }> {
  const items = listMcp(await globalConfig(homeDir), valueOrThrow((await state.config()).opencode));
  return { items: viewer ? items.map((i) => ({ ...i, config: redactSecrets(i.config) })) : items };
}

/**
 * The list answer as JSON text, rendered once per (workspace config, global config, viewer): both
 * configs are cached objects that are replaced when their files change.
 */
export async function mcpListText(state: WorkspaceState, homeDir: string, viewer: boolean): Promise<string> {
  const cfg = await state.config();
  const global = await globalConfig(homeDir);
  let byGlobal = rendered.get(cfg);
  if (!byGlobal || byGlobal.global !== global) rendered.set(cfg, (byGlobal = { global, texts: new Map() }));
  let text = byGlobal.texts.get(viewer);
  if (text === undefined) byGlobal.texts.set(viewer, (text = JSON.stringify(await mcpList(state, homeDir, viewer))));
  return text;
}

const rendered = new WeakMap<object, { global: object; texts: Map<boolean, string> }>();

/** Sets `mcp[name]`; the same config already there → the list, no write. */
export async function planMcpAdd(state: WorkspaceState, homeDir: string, body: Record<string, unknown>): Promise<WritePlan | Answer> {
  const name = checkMcpName(body.name);
  const config = checkMcpConfig(body.config);
  const ws = state.workspace;
  const cfg = await readWorkspaceConfig(ws.path);
  const mcp = mcpOf(valueOrThrow(cfg.opencode));
  const exists = Object.prototype.hasOwnProperty.call(mcp, name);
  if (exists && jsonEqual(mcp[name], config)) return answer(await mcpList(state, homeDir, false));
  return planEdits(ws, [editOpencode(cfg.opencode, { mcp: withKey(mcp, name, config) })!], {
    action: "mcp.add",
    summary: `Add MCP server ${name} (${String(config.type)})`,
    change: { name, config },
    // Any edit of opencode.json(c) can make the agent run code.
    risk: ["executes-code"],
    target: name,
    answer: () => mcpList(state, homeDir, false),
  });
}

/** Removes the project entry; absent (as the reference) → 200 with the unchanged list, no approval. */
export async function planMcpRemove(state: WorkspaceState, homeDir: string, rawName: unknown): Promise<WritePlan | Answer> {
  const name = checkMcpName(rawName);
  const ws = state.workspace;
  const cfg = await readWorkspaceConfig(ws.path);
  const mcp = mcpOf(valueOrThrow(cfg.opencode));
  if (!Object.prototype.hasOwnProperty.call(mcp, name)) return answer(await mcpList(state, homeDir, false));
  const next: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(mcp)) if (k !== name) Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
  return planEdits(ws, [editOpencode(cfg.opencode, { mcp: next })!], {
    action: "mcp.remove",
    summary: `Remove MCP server ${name}`,
    change: { name, removed: mcp[name] },
    risk: ["executes-code"],
    target: name,
    answer: () => mcpList(state, homeDir, false),
  });
}

/**
 * MCP logout: the engine forgets the server's stored credentials (OpenCode's own credential store;
 * the server never edits that file itself). Disconnect is best effort; a 404 from the engine means
 * there was nothing stored, which is success too.
 */
export function planMcpLogout(config: ServerConfig, ws: Workspace, rawName: unknown, signal: AbortSignal): WritePlan {
  const name = checkMcpName(rawName);
  const target = opencodeTarget(config, ws);
  const store = path.join(globalOpencodeDir(config.homeDir), "mcp-auth.json");
  return plan({
    workspaceId: ws.id,
    action: "mcp.auth.remove",
    summary: `Log out of MCP server ${name}`,
    paths: [store],
    change: { name, store: "~/.config/opencode/mcp-auth.json" },
    risk: [],
    target: name,
    apply: async () => {
      const rest = `/mcp/${encodeURIComponent(name)}`;
      await engineRequest(target, "POST", `${rest}/disconnect`, { signal, timeoutMs: LIMITS.proxyHeadersTimeoutMs }).catch(() => undefined);
      const res = await engineRequest(target, "DELETE", `${rest}/auth`, { signal, timeoutMs: LIMITS.proxyHeadersTimeoutMs });
      if (!res.ok && res.status !== 404) throw new ApiError("opencode_request_failed", "OpenCode refused the logout", { status: res.status, body: jsonOrText(res.text), path: `${rest}/auth` });
      return { body: { ok: true } };
    },
  });
}
