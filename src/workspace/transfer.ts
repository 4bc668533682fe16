/**
 * Export and all-or-nothing import of a workspace's configuration: both config files, the
 * workspace-local skills (`.opencode/skills/<name>/SKILL.md`) and commands.
 */
import path from "node:path";
import { ApiError, fromFsError } from "../errors.ts";
import { isPlainObject, jsonEqual } from "../formats/jsonc.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { commitFiles } from "../fs/journal.ts";
import { resolveInside } from "../fs/paths.ts";
import {
  describeEdit,
  editOpencode,
  openworkText,
  readTextIfExists,
  readWorkspaceConfig,
  relPosix,
  valueOrThrow,
  type FileEdit,
  type WorkspaceConfigFiles,
} from "./opencode-config.ts";
import { composeSkill, scanProjectSkills, skillFilePath, localSkillsDir, type SkillRecord } from "./skills.ts";
import { commandContent, listCommands, validateCommand, workspaceCommandsDir, type CommandRecord } from "./commands.ts";
import { redactSecrets } from "./redaction.ts";
import type { WorkspaceState } from "./reload-events.ts";
import { answer, plan, type Answer, type WritePlan } from "../types.ts";

export interface ExportedSkill {
  name: string;
  description: string;
  content: string;
}

export interface ExportedCommand {
  name: string;
  description?: string;
  template: string;
  agent?: string;
  model?: string;
  subtask?: boolean;
}

export interface ExportDoc {
  workspaceId: string;
  exportedAt: number;
  opencode: Record<string, unknown>;
  openwork: Record<string, unknown>;
  skills: ExportedSkill[];
  commands: ExportedCommand[];
}

/** The export document (422 when a config file cannot be parsed). */
export function buildExport(workspaceId: string, config: WorkspaceConfigFiles, skills: SkillRecord[], commands: CommandRecord[]): ExportDoc {
  return {
    workspaceId,
    exportedAt: Date.now(),
    opencode: valueOrThrow(config.opencode),
    openwork: valueOrThrow(config.openwork),
    skills: skills.filter((s) => s.local).map((s) => ({ name: s.item.name, description: s.item.description, content: s.content })),
    commands: commands.map(({ item }) => {
      const c = { name: item.name } as ExportedCommand;
      if (item.description !== undefined) c.description = item.description;
      c.template = item.template;
      if (item.agent !== undefined) c.agent = item.agent;
      if (item.model !== null) c.model = item.model;
      // subtask defaults to false (that is what an upsert writes), so export → import round-trips exactly.
      c.subtask = item.subtask ?? false;
      return c;
    }),
  };
}

type Mode = "replace" | "merge";
const MODE_KEYS = ["opencode", "openwork", "skills", "commands"] as const;

/** A removal: a skill folder or a command file, moved aside first so it can be restored. */
export interface Removal {
  path: string;
  display: string;
}

export interface ImportPlan {
  edits: FileEdit[];
  removals: Removal[];
  /** Workspace-relative paths, for the answer. */
  written: string[];
  removed: string[];
  change: Record<string, unknown>;
  /** Which parts change (for reload events and risk flags). */
  touches: { opencode: boolean; openwork: boolean; skills: string[]; commands: string[] };
}

function plainObject(v: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw new ApiError("invalid_payload", `${what} must be an object`);
  return v;
}

/** Re-throws a per-item validation error with the item's index in `details`. */
function atIndex<T>(kind: string, index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ApiError) throw new ApiError(err.code, `${kind}[${index}]: ${err.message}`, { index, ...(typeof err.details === "object" && err.details !== null ? err.details : {}) }, { status: err.status });
    throw err;
  }
}

/**
 * Validates an import body completely and computes every file that will be written or removed.
 * Nothing is touched here; an invalid body never reaches the approval gate.
 */
export async function planImport(
  wsPath: string,
  body: Record<string, unknown>,
  current: { config: WorkspaceConfigFiles; skills: SkillRecord[]; commands: CommandRecord[] },
): Promise<ImportPlan> {
  const mode: Record<(typeof MODE_KEYS)[number], Mode> = { opencode: "merge", openwork: "merge", skills: "merge", commands: "merge" };
  if (body.mode !== undefined) {
    const m = plainObject(body.mode, "mode");
    for (const k of Object.keys(m)) {
      if (!(MODE_KEYS as readonly string[]).includes(k)) throw new ApiError("invalid_payload", `Unknown mode key: ${k}`);
      if (m[k] !== "replace" && m[k] !== "merge") throw new ApiError("invalid_payload", `mode.${k} must be "replace" or "merge"`);
      mode[k as (typeof MODE_KEYS)[number]] = m[k] as Mode;
    }
  }
  const edits: FileEdit[] = [];
  const removals: Removal[] = [];
  const touches: ImportPlan["touches"] = { opencode: false, openwork: false, skills: [], commands: [] };

  if (body.opencode !== undefined) {
    const value = plainObject(body.opencode, "opencode");
    const s = current.config.opencode;
    if (mode.opencode === "merge") {
      const e = editOpencode(s, value);
      if (e) edits.push(e);
    } else if (s.error || !jsonEqual(s.value, value)) {
      edits.push({ path: s.path, display: s.display, base: s.text, next: JSON.stringify(value, null, 2) + "\n" });
    }
    touches.opencode = edits.length > 0;
  }
  if (body.openwork !== undefined) {
    const value = plainObject(body.openwork, "openwork");
    const s = current.config.openwork;
    const next = mode.openwork === "merge" ? { ...valueOrThrow(s), ...value } : value;
    if (s.error || !jsonEqual(s.value, next)) {
      edits.push({ path: s.path, display: s.display, base: s.text, next: openworkText(next) });
      touches.openwork = true;
    }
  }
  if (body.skills !== undefined) {
    if (!Array.isArray(body.skills)) throw new ApiError("invalid_payload", "skills must be an array");
    const names = new Set<string>();
    const writes = body.skills.map((raw, i) =>
      atIndex("skills", i, () => {
        const item = plainObject(raw, "skill");
        const w = composeSkill({ name: item.name, content: item.content, description: item.description });
        if (names.has(w.name)) throw new ApiError("invalid_payload", `Duplicate skill name: ${w.name}`);
        names.add(w.name);
        return w;
      }),
    );
    for (const w of writes) {
      const file = skillFilePath(wsPath, w.name);
      const base = await readTextIfExists(file);
      if (base !== w.content) {
        edits.push({ path: file, display: relPosix(wsPath, file), base, next: w.content });
        touches.skills.push(w.name);
      }
    }
    if (mode.skills === "replace") {
      for (const s of current.skills) {
        if (!s.local || names.has(s.item.name)) continue;
        const dir = path.join(localSkillsDir(wsPath), s.item.name);
        removals.push({ path: dir, display: relPosix(wsPath, dir) });
        touches.skills.push(s.item.name);
      }
    }
  }
  if (body.commands !== undefined) {
    if (!Array.isArray(body.commands)) throw new ApiError("invalid_payload", "commands must be an array");
    const names = new Set<string>();
    const inputs = body.commands.map((raw, i) =>
      atIndex("commands", i, () => {
        const c = validateCommand(plainObject(raw, "command"));
        if (names.has(c.name)) throw new ApiError("invalid_payload", `Duplicate command name: ${c.name}`);
        names.add(c.name);
        return c;
      }),
    );
    const dir = workspaceCommandsDir(wsPath);
    for (const c of inputs) {
      const file = path.join(dir, `${c.name}.md`);
      const next = commandContent(c);
      const base = await readTextIfExists(file);
      if (base !== next) {
        edits.push({ path: file, display: relPosix(wsPath, file), base, next });
        touches.commands.push(c.name);
      }
    }
    if (mode.commands === "replace") {
      for (const c of current.commands) {
        if (names.has(c.item.name)) continue;
        removals.push({ path: c.file, display: relPosix(wsPath, c.file) });
        touches.commands.push(c.item.name);
      }
    }
  }
  // Every target must stay inside the workspace by real path (a symlinked .opencode cannot redirect us).
  for (const t of [...edits, ...removals]) await resolveInside(wsPath, relPosix(wsPath, t.path), { create: true });
  return {
    edits,
    removals,
    written: edits.map((e) => e.display),
    removed: removals.map((r) => r.display),
    change: { mode, written: edits.map(describeEdit), removed: removals.map((r) => r.display) },
    touches,
  };
}

/**
 * Applies an import: every file must still hold what the plan saw (409 otherwise); then all of it
 * lands crash-atomically (fs/journal.ts) — after a failure or a crash the workspace holds the old
 * configuration, never a part of the new one.
 */
export async function applyImport(dataDir: string, wsPath: string, p: ImportPlan): Promise<void> {
  const paths = [...p.edits.map((e) => e.path), ...p.removals.map((r) => r.path)];
  await withPathLocks(paths, () =>
    commitFiles(dataDir, wsPath, { writes: p.edits.map((e) => ({ rel: relPosix(wsPath, e.path), data: e.next })), removals: p.removals.map((r) => relPosix(wsPath, r.path)) }, {
      beforeCommit: async () => {
        for (const e of p.edits) {
          if ((await readTextIfExists(e.path)) !== e.base) throw new ApiError("conflict", `${e.display} changed since the import was requested`);
        }
      },
    }).catch((err: unknown) => {
      throw fromFsError(err);
    }),
  );
}

/** The import write: everything validated and computed from the disk as it is now (not the cache), before the host is asked. */
export async function planImportWrite(state: WorkspaceState, body: Record<string, unknown>, dataDir: string): Promise<WritePlan | Answer> {
  const ws = state.workspace;
  const [config, skills, commands] = await Promise.all([
    readWorkspaceConfig(ws.path),
    scanProjectSkills(ws.path, state.skillRoot, state.homeDir),
    listCommands(ws.path, relPosix(ws.path, workspaceCommandsDir(ws.path)), "workspace"),
  ]);
  const p = await planImport(ws.path, body, { config, skills: skills.records, commands });
  if (p.edits.length === 0 && p.removals.length === 0) return answer({ ok: true, written: [], removed: [] });
  return plan({
    workspaceId: ws.id,
    action: "config.import",
    summary: `Import configuration: ${p.written.length} file(s) written, ${p.removed.length} removed`,
    paths: [...p.edits.map((e) => e.path), ...p.removals.map((r) => r.path)],
    change: p.change,
    risk: p.touches.opencode ? ["executes-code"] : [],
    target: ws.path,
    apply: async () => {
      await applyImport(dataDir, ws.path, p);
      return { body: { ok: true, written: p.written, removed: p.removed } };
    },
  });
}

/** The export document of a workspace (from the cache); viewers get the configs redacted. */
export async function exportWorkspace(state: WorkspaceState, viewer: boolean): Promise<ExportDoc> {
  const [config, skills, commands] = await Promise.all([state.config(), state.skills(), state.commands()]);
  const doc = buildExport(state.workspace.id, config, skills.scan.records, commands.records);
  return viewer ? { ...doc, opencode: redactSecrets(doc.opencode), openwork: redactSecrets(doc.openwork) } : doc;
}
