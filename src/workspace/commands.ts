/**
 * Commands: `<dir>/<name>.md`, frontmatter (name, description, agent, model, subtask) and the
 * template as body. Workspace dir `<ws>/.opencode/commands`, global `~/.config/opencode/commands`.
 */
import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../http/errors.ts";
import { parseFrontmatter, stringifyFrontmatter, YamlError } from "../formats/frontmatter.ts";
import { RESERVED_NAMES } from "./skills.ts";
import { globalOpencodeDir } from "./opencode-config.ts";

export const COMMAND_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_COMMAND_BYTES = 1024 * 1024;

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
  if (typeof raw !== "string") throw new ApiError(400, "invalid_command_name", "Command name is required");
  const name = raw.trim().replace(/^\//, "");
  if (!COMMAND_NAME_RE.test(name) || RESERVED_NAMES.has(name)) {
    throw new ApiError(400, "invalid_command_name", "Command name must match ^[A-Za-z0-9_-]{1,64}$");
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

/** Lists `<dir>/*.md` (regular files, not symlinks), sorted by name. */
export async function listCommands(dir: string, scope: CommandItem["scope"]): Promise<CommandRecord[]> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: CommandRecord[] = [];
  const names = entries.filter((d) => d.isFile() && d.name.endsWith(".md")).map((d) => d.name).sort();
  for (const fileName of names) {
    const name = fileName.slice(0, -3);
    if (!COMMAND_NAME_RE.test(name)) continue;
    const file = path.join(dir, fileName);
    try {
      const st = await lstat(file);
      if (!st.isFile() || st.size > MAX_COMMAND_BYTES) continue;
      const content = await readFile(file, "utf8");
      const item = parseCommand(content, name, scope);
      if (item) out.push({ item, file, content });
    } catch {
      // vanished or unreadable between readdir and read: not listed
    }
  }
  return out;
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
  if (typeof v !== "string") throw new ApiError(400, "invalid_payload", `${key} must be a string`);
  return v;
}

/** Validates an upsert body (400 invalid_command_name / invalid_command_template / invalid_payload). */
export function validateCommand(body: Record<string, unknown>): CommandInput {
  const name = normalizeCommandName(body.name);
  if (typeof body.template !== "string" || body.template.trim() === "") {
    throw new ApiError(400, "invalid_command_template", "Command template is required");
  }
  const input: CommandInput = { name, template: body.template, subtask: false };
  const description = optionalString(body, "description");
  const agent = optionalString(body, "agent");
  const model = optionalString(body, "model");
  if (description !== undefined) input.description = description;
  if (agent !== undefined) input.agent = agent;
  if (model !== undefined) input.model = model;
  if (body.subtask !== undefined && body.subtask !== null) {
    if (typeof body.subtask !== "boolean") throw new ApiError(400, "invalid_payload", "subtask must be a boolean");
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
