/**
 * Plugins: the `plugin` key of the OpenCode config (string or array of strings) and plugin
 * files (`.js`/`.ts`) directly in `.opencode/plugins/` (and, globally, `~/.config/opencode/plugins/`).
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../http/errors.ts";
import { globalOpencodeDir } from "./opencode-config.ts";

export const PLUGIN_LOAD_ORDER = ["config.global", "config.project", "dir.global", "dir.project"] as const;

export interface PluginItem {
  spec: string;
  source: "config" | "dir.project" | "dir.global";
  scope: "project" | "global";
  path?: string;
}

/**
 * Normalized plugin name, for de-dup and removal: specs that are URLs or paths (`file:`, `http:`,
 * `https:`, `git:`, `git+`, `/`, `.`) are kept whole; `@scope/name@ver` → `@scope/name`; `name@ver` → `name`.
 */
export function normalizePluginSpec(spec: string): string {
  const s = spec.trim();
  if (/^(?:file:|https?:|git:|git\+|\/|\.)/.test(s)) return s;
  const at = s.lastIndexOf("@");
  return at > 0 ? s.slice(0, at) : s;
}

/** The `plugin` key as a list of strings (a single string counts as one; non-strings are ignored). */
export function configPlugins(config: Record<string, unknown>): string[] {
  const p = config.plugin;
  if (typeof p === "string") return [p];
  if (Array.isArray(p)) return p.filter((x): x is string => typeof x === "string");
  return [];
}

/** 400 invalid_plugin_spec for blank or non-string specs (and control characters). */
export function checkPluginSpec(raw: unknown): string {
  if (typeof raw !== "string" || raw.trim() === "") throw new ApiError(400, "invalid_plugin_spec", "Plugin spec is required");
  const spec = raw.trim();
  if (/[\u0000-\u001f\u007f]/.test(spec)) throw new ApiError(400, "invalid_plugin_spec", "Plugin spec must not contain control characters");
  if (spec.length > 1024) throw new ApiError(400, "invalid_plugin_spec", "Plugin spec is too long");
  return spec;
}

/** Plugin files directly in `dir` (regular .js/.ts files; symlinks are not followed), sorted. */
export async function pluginFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((d) => d.isFile() && /\.(?:js|ts)$/.test(d.name)).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

export function projectPluginsDir(wsPath: string): string {
  return path.join(wsPath, ".opencode", "plugins");
}

export function globalPluginsDir(homeDir: string): string {
  return path.join(globalOpencodeDir(homeDir), "plugins");
}
