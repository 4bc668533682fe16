/**
 * MCP servers: the `mcp` object of the workspace and global OpenCode configs, validation of a
 * new entry, and `disabledByTools` (deny patterns in `tools`, matched with our glob).
 */
import { ApiError } from "../http/errors.ts";
import { globMatch } from "../formats/glob.ts";
import { isPlainObject } from "../formats/jsonc.ts";
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

/** Deny patterns: keys of `tools` whose value is false (project entries override global ones). */
export function denyPatterns(global: Record<string, unknown>, project: Record<string, unknown>): string[] {
  const merged = new Map<string, unknown>();
  for (const cfg of [global, project]) {
    if (isPlainObject(cfg.tools)) for (const [k, v] of Object.entries(cfg.tools)) merged.set(k, v);
  }
  return [...merged].filter(([, v]) => v === false).map(([k]) => k);
}

/** True when a deny pattern matches mcp.<name>, mcp.<name>.*, mcp:<name> or mcp:<name>:*. */
export function disabledByTools(name: string, patterns: string[]): boolean {
  const candidates = [`mcp.${name}`, `mcp.${name}.*`, `mcp:${name}`, `mcp:${name}:*`];
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
    throw new ApiError(400, "invalid_mcp_name", "MCP name must match ^[A-Za-z0-9_-]{1,64}$ and not start with '-'");
  }
  return raw;
}

/** Validates an MCP server config: local needs a non-empty string array `command`, remote an http(s) `url`. */
export function checkMcpConfig(raw: unknown): Record<string, unknown> {
  if (!isPlainObject(raw)) throw new ApiError(400, "invalid_mcp_config", "MCP config must be an object");
  const cfg = raw;
  if (cfg.type === "local") {
    const cmd = cfg.command;
    if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === "string" && c !== "")) {
      throw new ApiError(400, "invalid_mcp_config", "A local MCP server needs a non-empty string array `command`");
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
    if (!ok) throw new ApiError(400, "invalid_mcp_config", "A remote MCP server needs an http(s) `url`");
  } else {
    throw new ApiError(400, "invalid_mcp_config", "MCP config `type` must be \"local\" or \"remote\"");
  }
  return cfg;
}
