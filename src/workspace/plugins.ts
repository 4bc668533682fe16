/**
 * Plugins: the `plugin` key of the OpenCode config (string or array of strings) and plugin
 * files (`.js`/`.ts`) directly in `.opencode/plugins/` (and, globally, `~/.config/opencode/plugins/`).
 */
import { CONTROL_CHARS_RE, DECEPTIVE_CHARS_RE } from "../formats/visible-text.ts";
import { withInside } from "../fs/inside.ts";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { answer, type Answer, type WritePlan } from "../types.ts";
import { editOpencode, globalConfig, globalOpencodeDir, planEdits, readWorkspaceConfig, relPosix, valueOrThrow } from "./opencode-config.ts";
import type { WorkspaceState } from "./reload-events.ts";

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

/** 400 invalid_plugin_spec for blank or non-string specs (and control, bidi, zero-width characters: the host must read what it approves). */
export function checkPluginSpec(raw: unknown): string {
  if (typeof raw !== "string" || raw.trim() === "") throw new ApiError("invalid_plugin_spec", "Plugin spec is required");
  const spec = raw.trim();
  if (CONTROL_CHARS_RE.test(spec) || DECEPTIVE_CHARS_RE.test(spec)) {
    throw new ApiError("invalid_plugin_spec", "Plugin spec must not contain control, bidirectional or invisible characters");
  }
  if (spec.length > 1024) throw new ApiError("invalid_plugin_spec", "Plugin spec is too long");
  return spec;
}

/** Plugin files directly in `<root>/<relDir>` (regular .js/.ts files; links are not followed), sorted. */
export async function pluginFiles(root: string, relDir: string): Promise<string[]> {
  // Listed through the held folder (fs/inside.ts): one a link places outside `root` lists nothing.
  const names = await withInside(root, async (reader) => {
    const dir = await reader.folder(relDir).catch(() => undefined);
    return dir ? (await reader.entries(dir)).filter((d) => d.isFile() && /\.(?:js|ts)$/.test(d.name)).map((d) => d.name).sort() : [];
  });
  return names ?? [];
}

export function projectPluginsDir(wsPath: string): string {
  return path.join(wsPath, ".opencode", "plugins");
}

export function globalPluginsDir(homeDir: string): string {
  return path.join(globalOpencodeDir(homeDir), "plugins");
}

/** The list answer: config entries and plugin files, project (and with `includeGlobal`, global) ones. */
export async function listPlugins(state: WorkspaceState, homeDir: string, includeGlobal: boolean): Promise<{ items: PluginItem[]; loadOrder: string[] }> {
  const project = valueOrThrow((await state.config()).opencode);
  const items: PluginItem[] = [];
  if (includeGlobal) for (const spec of configPlugins(await globalConfig(homeDir))) items.push({ spec, source: "config", scope: "global" });
  for (const spec of configPlugins(project)) items.push({ spec, source: "config", scope: "project" });
  if (includeGlobal) {
    const dir = globalPluginsDir(homeDir);
    for (const f of await pluginFiles(dir, "")) items.push({ spec: f, source: "dir.global", scope: "global", path: "~/" + relPosix(homeDir, path.join(dir, f)) });
  }
  for (const f of await state.pluginFiles()) items.push({ spec: f, source: "dir.project", scope: "project", path: `.opencode/plugins/${f}` });
  return { items, loadOrder: [...PLUGIN_LOAD_ORDER] };
}

/** Adds a plugin spec to the workspace config; already present (same normalized name) → the list, no write. */
export async function planPluginAdd(state: WorkspaceState, homeDir: string, rawSpec: unknown): Promise<WritePlan | Answer> {
  const spec = checkPluginSpec(rawSpec);
  const ws = state.workspace;
  const cfg = await readWorkspaceConfig(ws.path);
  const current = valueOrThrow(cfg.opencode);
  const norm = normalizePluginSpec(spec);
  if (configPlugins(current).some((p) => normalizePluginSpec(p) === norm)) return answer(await listPlugins(state, homeDir, false));
  const raw = current.plugin;
  const next = Array.isArray(raw) ? [...raw, spec] : typeof raw === "string" ? [raw, spec] : [spec];
  // Any edit of opencode.json(c) can make the agent run code.
  return planEdits(ws, [editOpencode(cfg.opencode, { plugin: next })!], {
    action: "plugins.add",
    summary: `Add plugin ${spec}`,
    change: { spec, plugin: next },
    risk: ["executes-code"],
    target: spec,
    answer: () => listPlugins(state, homeDir, false),
  });
}

/**
 * Removes every config entry whose normalization matches `name`. None (as the reference) → 200
 * with the unchanged list, without approval, write or audit.
 */
export async function planPluginRemove(state: WorkspaceState, homeDir: string, rawName: string): Promise<WritePlan | Answer> {
  const name = rawName.trim();
  if (name === "") throw new ApiError("invalid_plugin_spec", "Plugin name is required");
  const ws = state.workspace;
  const cfg = await readWorkspaceConfig(ws.path);
  const current = valueOrThrow(cfg.opencode);
  const norm = normalizePluginSpec(name);
  const raw = current.plugin;
  const list: unknown[] = Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : [];
  const next = list.filter((p) => !(typeof p === "string" && normalizePluginSpec(p) === norm));
  if (next.length === list.length) return answer(await listPlugins(state, homeDir, false));
  return planEdits(ws, [editOpencode(cfg.opencode, { plugin: next })!], {
    action: "plugins.remove",
    summary: `Remove plugin ${norm}`,
    change: { name: norm, removed: list.filter((p) => !next.includes(p)), plugin: next },
    risk: ["executes-code"],
    target: norm,
    answer: () => listPlugins(state, homeDir, false),
  });
}
