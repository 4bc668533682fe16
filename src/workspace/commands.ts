/**
 * Commands: `<dir>/<name>.md`, frontmatter (name, description, agent, model, subtask) and the
 * template as body. Workspace dir `<ws>/.opencode/commands`, global `~/.config/opencode/commands`.
 */
import { lstat, unlink } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { parseFrontmatter, stringifyFrontmatter, YamlError } from "../formats/frontmatter.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { GIT_ONLY, resolveInside, withResolver } from "../fs/paths.ts";
import { answer, plan, type Answer, type WritePlan } from "../types.ts";
import { RESERVED_NAMES } from "./skills.ts";
import { globalOpencodeDir, planEdits, readTextIfExists } from "./opencode-config.ts";
import type { WorkspaceState } from "./reload-events.ts";
import { withInside } from "../fs/inside.ts";
import { LIMITS } from "../limits.ts";

export const COMMAND_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

export interface CommandItem {
  name: string;
  description?: string;
  template: string;
  agent?: string;
  model: string | null;
  subtask?: boolean;
  scope: "workspace" | "global";
}

export interface CommandRecord {
  item: CommandItem;
  file: string;
  content: string;
}

export function workspaceCommandsDir(wsPath: string): string {
  return path.join(wsPath, ".opencode", "commands");
}

export function globalCommandsDir(homeDir: string): string {
  return path.join(globalOpencodeDir(homeDir), "commands");
}

/** Trim, strip a leading "/", then `^[A-Za-z0-9_-]{1,64}$` → else 400 invalid_command_name. */
export function normalizeCommandName(raw: unknown): string {
  if (typeof raw !== "string") throw new ApiError("invalid_command_name", "Command name is required");
  const name = raw.trim().replace(/^\//, "");
  if (!COMMAND_NAME_RE.test(name) || RESERVED_NAMES.has(name)) {
    throw new ApiError("invalid_command_name", "Command name must match ^[A-Za-z0-9_-]{1,64}$");
  }
  return name;
}

/** Reads one command file into its list item; undefined when it is not a readable command. */
export function parseCommand(content: string, name: string, scope: CommandItem["scope"]): CommandItem | undefined {
  let fm;
  try {
    fm = parseFrontmatter(content);
  } catch (err) {
    if (err instanceof YamlError) return undefined;
    throw err;
  }
  const d = fm.data;
  // The body is a blank line, the template, and a final newline (what we write); strip exactly those.
  let template = fm.body;
  if (fm.hasFrontmatter) template = template.replace(/^\r?\n/, "");
  template = template.replace(/\r?\n$/, "");
  // Key order of the answer: name, description, template, agent, model, subtask, scope.
  const item = { name } as CommandItem;
  if (typeof d.description === "string") item.description = d.description;
  item.template = template;
  if (typeof d.agent === "string") item.agent = d.agent;
  item.model = typeof d.model === "string" ? d.model : null;
  if (typeof d.subtask === "boolean") item.subtask = d.subtask;
  item.scope = scope;
  return item;
}

/**
 * Lists `<root>/<relDir>/*.md` (regular files, not links), sorted by name, read through held
 * folders (fs/inside.ts): a folder that a link places outside `root` lists nothing.
 */
export async function listCommands(root: string, relDir: string, scope: CommandItem["scope"]): Promise<CommandRecord[]> {
  const dirAbs = path.join(root, relDir);
  const records = await withInside(root, async (reader) => {
    const dir = await reader.folder(relDir).catch(() => undefined);
    if (!dir) return [];
    const names = (await reader.entries(dir)).filter((d) => d.isFile() && d.name.endsWith(".md")).map((d) => d.name).sort();
    const out: CommandRecord[] = [];
    for (const fileName of names) {
      const name = fileName.slice(0, -3);
      if (!COMMAND_NAME_RE.test(name)) continue;
      try {
        const content = await reader.textIn(dir, fileName, LIMITS.configFileMaxBytes);
        const item = parseCommand(content, name, scope);
        if (item) out.push({ item, file: path.join(dirAbs, fileName), content });
      } catch {
        // vanished, replaced by a link or grown too large since the listing: not listed
      }
    }
    return out;
  });
  return records ?? [];
}

export interface CommandInput {
  name: string;
  template: string;
  description?: string;
  agent?: string;
  model?: string;
  subtask: boolean;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ApiError("invalid_payload", `${key} must be a string`);
  return v;
}

/** Validates an upsert body (400 invalid_command_name / invalid_command_template / invalid_payload). */
export function validateCommand(body: Record<string, unknown>): CommandInput {
  const name = normalizeCommandName(body.name);
  if (typeof body.template !== "string" || body.template.trim() === "") {
    throw new ApiError("invalid_command_template", "Command template is required");
  }
  const input: CommandInput = { name, template: body.template, subtask: false };
  const description = optionalString(body, "description");
  const agent = optionalString(body, "agent");
  const model = optionalString(body, "model");
  if (description !== undefined) input.description = description;
  if (agent !== undefined) input.agent = agent;
  if (model !== undefined) input.model = model;
  if (body.subtask !== undefined && body.subtask !== null) {
    if (typeof body.subtask !== "boolean") throw new ApiError("invalid_payload", "subtask must be a boolean");
    input.subtask = body.subtask;
  }
  return input;
}

/** The file text: frontmatter name, description?, agent?, model?, subtask; a blank line; the template; "\n". */
export function commandContent(c: CommandInput): string {
  const data: Record<string, unknown> = { name: c.name };
  if (c.description !== undefined) data.description = c.description;
  if (c.agent !== undefined) data.agent = c.agent;
  if (c.model !== undefined) data.model = c.model;
  data.subtask = c.subtask;
  return stringifyFrontmatter(data, `\n${c.template}\n`);
}

export type CommandScope = "workspace" | "global";

/** The command file, the root it must stay inside, and its display name (`~/…` for global ones). */
export function commandTarget(wsPath: string, homeDir: string, scope: CommandScope, name: string): { root: string; file: string; display: string } {
  if (scope === "global") {
    return { root: globalOpencodeDir(homeDir), file: path.join(globalCommandsDir(homeDir), `${name}.md`), display: `~/.config/opencode/commands/${name}.md` };
  }
  const file = path.join(workspaceCommandsDir(wsPath), `${name}.md`);
  return { root: wsPath, file, display: path.relative(wsPath, file).split(path.sep).join("/") };
}

/** The list answer: cached for the workspace, read from disk for the global folder. */
export async function commandsList(state: WorkspaceState, homeDir: string, scope: CommandScope): Promise<Record<string, unknown>> {
  if (scope === "workspace") return (await state.commands()).body;
  return { items: (await listCommands(globalCommandsDir(homeDir), "", "global")).map((r) => r.item) };
}

/** Upsert of a command file; the same text already there → the list, no write. */
export async function planCommandUpsert(state: WorkspaceState, homeDir: string, scope: CommandScope, body: Record<string, unknown>): Promise<WritePlan | Answer> {
  const c = validateCommand(body);
  const t = commandTarget(state.workspace.path, homeDir, scope, c.name);
  const next = commandContent(c);
  const base = await readTextIfExists(t.file);
  if (base === next) return answer(await commandsList(state, homeDir, scope));
  return planEdits(state.workspace, [{ path: t.file, display: t.display, base, next }], {
    action: "commands.upsert",
    summary: `${base === undefined ? "Create" : "Update"} ${scope === "global" ? "global " : ""}command /${c.name}`,
    change: { name: c.name, scope },
    root: t.root,
    answer: () => commandsList(state, homeDir, scope),
  });
}

/** Deletes a command file; missing → 404 before anybody is asked. */
export async function planCommandDelete(state: WorkspaceState, homeDir: string, scope: CommandScope, rawName: unknown): Promise<WritePlan> {
  const name = normalizeCommandName(rawName);
  const t = commandTarget(state.workspace.path, homeDir, scope, name);
  const st = await lstat(t.file).catch(() => undefined);
  if (!st || st.isDirectory()) throw new ApiError("command_not_found", `Command not found: ${name}`);
  const rel = path.relative(t.root, t.file).split(path.sep).join("/");
  await resolveInside(t.root, rel);
  return plan({
    workspaceId: state.workspace.id,
    action: "commands.delete",
    summary: `Delete ${scope === "global" ? "global " : ""}command /${name}`,
    paths: [t.file],
    change: { name, scope, path: t.display, bytes: st.size },
    risk: [],
    target: t.display,
    apply: async () => {
      await withPathLocks([t.file], () =>
        // Re-walked under the lock and removed through the held folder: a folder swapped for a symlink meanwhile is refused.
        withResolver(t.root, GIT_ONLY, async (resolver) => {
          const r = await resolver.resolveNormalized(rel, { follow: false });
          if (r.missing > 0) throw new ApiError("conflict", `${t.display} changed since the delete was requested`);
          await unlink(r.dir.at(r.below[0]!));
        }),
      );
      return { body: { ok: true } };
    },
  });
}
