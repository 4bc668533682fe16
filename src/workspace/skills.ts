/**
 * Skills: `<skills-dir>/<name>/SKILL.md` (or one "domain folder" deeper) with YAML frontmatter.
 * Discovery, validation, the trigger line, and the content written by an upsert.
 */
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { parseFrontmatter, stringifyFrontmatter, YamlError } from "../formats/frontmatter.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { commitFiles } from "../fs/journal.ts";
import { isInsideOrSame, isOutside, resolveInside } from "../fs/paths.ts";
import { answer, plan, type Answer, type Workspace, type WritePlan } from "../types.ts";
import { globalOpencodeDir, planEdits, readTextIfExists, relPosix } from "./opencode-config.ts";
import { lstatAt, type Dir } from "../fs/anchored.ts";
import { withInside, type InsideReader } from "../fs/inside.ts";
import { LIMITS } from "../limits.ts";

export const SKILL_NAME_RE = /^[a-z0-9]+(-[a-z0-9]+)*$/;
/** Names that are JavaScript prototype keys are refused everywhere (they are never object keys here, but clients may use them as such). */
export const RESERVED_NAMES = new Set(["__proto__", "constructor", "prototype"]);

export interface SkillItem {
  name: string;
  description: string;
  path: string;
  scope: "project" | "global";
  trigger?: string;
}

export interface SkillRecord {
  item: SkillItem;
  /** Absolute path of SKILL.md. */
  file: string;
  content: string;
  /** True for `<ws>/.opencode/skills/<name>/SKILL.md` exactly (what export and delete touch). */
  local: boolean;
}

export interface SkillScan {
  records: SkillRecord[];
  skipped: { path: string; reason: string }[];
}

export function isValidSkillName(name: unknown): name is string {
  return typeof name === "string" && name.length >= 1 && name.length <= 64 && SKILL_NAME_RE.test(name) && !RESERVED_NAMES.has(name);
}

/** 400 invalid_skill_name unless `name` is a valid skill name. */
export function checkSkillName(name: unknown): string {
  if (!isValidSkillName(name)) {
    throw new ApiError("invalid_skill_name", "Skill name must match ^[a-z0-9]+(-[a-z0-9]+)*$ (1-64 characters)");
  }
  return name;
}

/** frontmatter trigger, else `when`, else the first line under a "When to use" heading. */
export function skillTrigger(data: Record<string, unknown>, body: string): string | undefined {
  for (const key of ["trigger", "when"]) {
    const v = data[key];
    if (typeof v === "string" && v.trim() !== "") return v.trim();
  }
  const lines = body.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (!/^#{1,6}\s+when to use\b/i.test(lines[i]!.trim())) continue;
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j]!.trim();
      if (line === "") continue;
      if (line.startsWith("#")) return undefined;
      const text = line.replace(/^(?:[-*+]|\d+[.)])\s+/, "").trim();
      return text === "" ? undefined : text;
    }
    return undefined;
  }
  return undefined;
}

/** Validates one SKILL.md text for folder `folderName`; returns the item fields or a skip reason. */
export function inspectSkill(content: string, folderName: string): { ok: true; name: string; description: string; trigger?: string } | { ok: false; reason: string } {
  let fm;
  try {
    fm = parseFrontmatter(content);
  } catch (err) {
    if (err instanceof YamlError) return { ok: false, reason: `invalid frontmatter: ${err.message}` };
    throw err;
  }
  if (!fm.hasFrontmatter) return { ok: false, reason: "missing frontmatter" };
  const { name, description } = fm.data;
  if (typeof name !== "string" || name === "") return { ok: false, reason: "missing name" };
  if (!isValidSkillName(name)) return { ok: false, reason: "invalid name" };
  if (name !== folderName) return { ok: false, reason: "name does not match folder" };
  if (typeof description !== "string" || description.trim() === "") return { ok: false, reason: "missing description" };
  if (description.length > 1024) return { ok: false, reason: "description longer than 1024 characters" };
  const trigger = skillTrigger(fm.data, fm.body);
  return trigger === undefined ? { ok: true, name, description } : { ok: true, name, description, trigger };
}

/** SKILL.md of a held skill folder: its text, why it is skipped, or undefined when there is none. */
async function readSkillIn(reader: InsideReader, dir: Dir): Promise<string | { reason: string } | undefined> {
  const st = await lstatAt(dir, "SKILL.md");
  if (!st) return undefined;
  // Symlinks are not followed: a link could expose files from outside the workspace.
  if (st.isSymbolicLink()) return { reason: "symbolic link not followed" };
  if (!st.isFile()) return { reason: "SKILL.md is not a file" };
  if (st.size > LIMITS.configFileMaxBytes) return { reason: "SKILL.md is larger than 1 MiB" };
  try {
    return await reader.textIn(dir, "SKILL.md", LIMITS.configFileMaxBytes);
  } catch {
    return { reason: "SKILL.md cannot be read" };
  }
}

/** Names of the sub-folders of a held folder in code-unit order, minus dot-folders (ours: temp folders of a delete in progress). */
async function subfolders(reader: InsideReader, dir: Dir): Promise<string[]> {
  return (await reader.entries(dir)).filter((d) => d.isDirectory() && !d.name.startsWith(".")).map((d) => d.name).sort();
}

/**
 * Scans one skills folder, `<root>/<relDir>`: `<name>/SKILL.md` and `<group>/<name>/SKILL.md`,
 * read through held folders (fs/inside.ts) — a folder swapped for a link to the outside is never
 * read through. `display` turns an absolute path into what clients see. `seen` de-duplicates by
 * name (first wins). `local`: this is the workspace's own `.opencode/skills`.
 */
export async function scanSkillsDir(
  root: string,
  relDir: string,
  scope: "project" | "global",
  display: (abs: string) => string,
  out: SkillScan,
  seen: Set<string>,
  local = false,
): Promise<void> {
  const dirAbs = path.join(root, relDir);
  await withInside(root, async (reader) => {
    let top: Dir | undefined;
    try {
      top = await reader.folder(relDir);
    } catch (err) {
      // A skills folder that a symlink places outside its level is not read (its files would leak out).
      if (err instanceof ApiError && err.code === "path_outside_workspace") out.skipped.push({ path: display(dirAbs), reason: "resolves outside the workspace" });
      return;
    }
    if (!top) return;
    const inFolder = async (parent: Dir, name: string, fn: (dir: Dir) => Promise<void>): Promise<void> => {
      const dir = await reader.child(parent, name);
      if (!dir) return;
      try {
        await fn(dir);
      } finally {
        await dir.close();
      }
    };
    const consider = async (dir: Dir, folderAbs: string, name: string, domainAllowed: boolean, isLocal: boolean): Promise<void> => {
      const file = path.join(folderAbs, "SKILL.md");
      const content = await readSkillIn(reader, dir);
      if (content === undefined) {
        if (domainAllowed) {
          // A domain folder: one more level of skills.
          let found = false;
          for (const sub of await subfolders(reader, dir)) {
            const before = out.records.length + out.skipped.length;
            await inFolder(dir, sub, (subDir) => consider(subDir, path.join(folderAbs, sub), sub, false, false));
            if (out.records.length + out.skipped.length > before) found = true;
          }
          if (!found) out.skipped.push({ path: display(file), reason: "missing SKILL.md" });
        }
        return;
      }
      if (typeof content !== "string") {
        out.skipped.push({ path: display(file), reason: content.reason });
        return;
      }
      const r = inspectSkill(content, name);
      if (!r.ok) {
        out.skipped.push({ path: display(file), reason: r.reason });
        return;
      }
      if (seen.has(r.name)) return;
      seen.add(r.name);
      const item: SkillItem = { name: r.name, description: r.description, path: display(file), scope };
      if (r.trigger !== undefined) item.trigger = r.trigger;
      out.records.push({ item, file, content, local: isLocal });
    };
    for (const name of await subfolders(reader, top)) await inFolder(top, name, (dir) => consider(dir, path.join(dirAbs, name), name, true, local));
  });
}

/** Project skill folders (with the level they belong to): from the workspace up to the nearest folder with `.git`, never above `root`. */
export async function projectSkillDirs(wsPath: string, root: string): Promise<{ dir: string; level: string }[]> {
  const dirs: { dir: string; level: string }[] = [];
  let cur = wsPath;
  for (;;) {
    dirs.push({ dir: path.join(cur, ".opencode", "skills"), level: cur }, { dir: path.join(cur, ".claude", "skills"), level: cur });
    let hasGit = false;
    try {
      await lstat(path.join(cur, ".git"));
      hasGit = true;
    } catch {
      hasGit = false;
    }
    if (hasGit || cur === root) break;
    const parent = path.dirname(cur);
    // Never above the authorized root.
    if (parent === cur || isOutside(root, parent)) break;
    cur = parent;
  }
  return dirs;
}

export function globalSkillDirs(homeDir: string): string[] {
  return [path.join(globalOpencodeDir(homeDir), "skills"), path.join(homeDir, ".claude", "skills"), path.join(homeDir, ".agents", "skills")];
}

export function displayPath(wsPath: string, homeDir: string, abs: string): string {
  if (isInsideOrSame(wsPath, abs) || isOutside(homeDir, abs)) return relPosix(wsPath, abs);
  return "~/" + relPosix(homeDir, abs);
}

export function localSkillsDir(wsPath: string): string {
  return path.join(wsPath, ".opencode", "skills");
}

/**
 * A skill's `path` in answers: workspace-rooted (`/.opencode/skills/x/SKILL.md`, the leading `/` is
 * the workspace root) so the app's "OpenWork" badge — it looks for `/.opencode/skills/` — works,
 * while no host path reaches remote callers. Walk-up levels (`../…`) stay relative.
 */
export function workspaceRooted(rel: string): string {
  return rel.startsWith("../") ? rel : `/${rel}`;
}

/** Project skills (what the cache keeps). */
export async function scanProjectSkills(wsPath: string, root: string, homeDir: string): Promise<SkillScan> {
  const out: SkillScan = { records: [], skipped: [] };
  const seen = new Set<string>();
  const local = localSkillsDir(wsPath);
  const display = (abs: string) => displayPath(wsPath, homeDir, abs);
  for (const { dir, level } of await projectSkillDirs(wsPath, root)) {
    await scanSkillsDir(level, relPosix(level, dir), "project", display, out, seen, dir === local);
  }
  for (const r of out.records) r.item.path = workspaceRooted(r.item.path);
  return out;
}

/** Global skills (read from disk on each request), excluding names in `seen`. */
export async function scanGlobalSkills(wsPath: string, homeDir: string, seen: Set<string>): Promise<SkillScan> {
  const out: SkillScan = { records: [], skipped: [] };
  for (const dir of globalSkillDirs(homeDir)) {
    await scanSkillsDir(dir, "", "global", (abs) => displayPath(wsPath, homeDir, abs), out, seen);
  }
  return out;
}

/** A validated skill write: the exact SKILL.md text and its effective description. */
export interface SkillWrite {
  name: string;
  content: string;
  description: string;
}

/**
 * Validates an upsert body and composes SKILL.md: frontmatter `name` and `description` set (other
 * keys kept), then the body. Content whose frontmatter already says exactly that is kept byte for
 * byte (comments and formatting survive, and export → import round-trips exactly).
 */
export function composeSkill(input: { name: unknown; content: unknown; description?: unknown }): SkillWrite {
  const name = checkSkillName(input.name);
  if (typeof input.content !== "string" || input.content.trim() === "") {
    throw new ApiError("invalid_skill_content", "Skill content is required");
  }
  const content = input.content;
  let fm;
  try {
    fm = parseFrontmatter(content);
  } catch (err) {
    if (err instanceof YamlError) throw new ApiError("invalid_skill_content", "Skill frontmatter is not valid YAML", { line: err.line, error: err.message });
    throw err;
  }
  if (fm.data.name !== undefined && fm.data.name !== name) {
    throw new ApiError("invalid_skill_name", "Frontmatter name does not match the skill name");
  }
  const fmDesc = fm.data.description;
  let description: string | undefined;
  if (typeof fmDesc === "string" && fmDesc.trim() !== "") description = fmDesc;
  else if (input.description !== undefined) {
    if (typeof input.description !== "string") throw new ApiError("invalid_description", "Description must be a string");
    description = input.description;
  }
  if (description === undefined || description.trim() === "") throw new ApiError("invalid_description", "Skill description is required");
  if (description.length > 1024) throw new ApiError("invalid_description", "Skill description is longer than 1024 characters", { maxLength: 1024 });
  if (fm.hasFrontmatter && fm.data.name === name && fm.data.description === description) {
    return { name, content, description };
  }
  const data: Record<string, unknown> = {};
  if (!("name" in fm.data)) data.name = name;
  if (!("description" in fm.data)) data.description = description;
  for (const [k, v] of Object.entries(fm.data)) {
    const value = k === "name" ? name : k === "description" ? description : v;
    Object.defineProperty(data, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return { name, content: stringifyFrontmatter(data, fm.body), description };
}

export function skillFilePath(wsPath: string, name: string): string {
  return path.join(localSkillsDir(wsPath), name, "SKILL.md");
}

/** Upsert of `<ws>/.opencode/skills/<name>/SKILL.md`; the same text already there → the answer, no write. */
export async function planSkillUpsert(ws: Workspace, body: Record<string, unknown>): Promise<WritePlan | Answer> {
  const s = composeSkill({ name: body.name, content: body.content, description: body.description });
  const file = skillFilePath(ws.path, s.name);
  const rel = relPosix(ws.path, file);
  // Real-path containment before anything else: a symlinked .opencode cannot redirect the write.
  await resolveInside(ws.path, rel, { create: true });
  const base = await readTextIfExists(file);
  const result = { name: s.name, path: workspaceRooted(rel), description: s.description, scope: "project" };
  if (base === s.content) return answer(result);
  return planEdits(ws, [{ path: file, display: rel, base, next: s.content }], {
    action: "skills.upsert",
    summary: `${base === undefined ? "Create" : "Update"} skill ${s.name}`,
    change: { name: s.name, description: s.description },
    target: rel,
    answer: async () => result,
  });
}

/** Files below `dir` (relative names with sizes), for the approval prompt; bounded. */
async function listTree(dir: string, limit = 200): Promise<{ path: string; bytes: number }[]> {
  const out: { path: string; bytes: number }[] = [];
  const walk = async (d: string, prefix: string): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= limit) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p, `${prefix}${e.name}/`);
      else out.push({ path: `${prefix}${e.name}`, bytes: await lstat(p).then((st) => st.size, () => 0) });
    }
  };
  await walk(dir, "");
  return out;
}

/** Deletes only `<ws>/.opencode/skills/<name>`; missing → 404 before anybody is asked. */
export async function planSkillDelete(ws: Workspace, rawName: unknown, dataDir: string): Promise<WritePlan> {
  const name = checkSkillName(rawName);
  const dir = path.join(localSkillsDir(ws.path), name);
  const rel = relPosix(ws.path, dir);
  if (!(await lstat(dir).then(() => true, () => false))) throw new ApiError("skill_not_found", `Skill not found: ${name}`);
  await resolveInside(ws.path, rel);
  return plan({
    workspaceId: ws.id,
    action: "skills.delete",
    summary: `Delete skill ${name}`,
    paths: [dir],
    change: { name, path: rel, files: await listTree(dir) },
    risk: [],
    target: rel,
    apply: async () => {
      await withPathLocks([dir], async () => {
        if (!(await lstat(dir).then(() => true, () => false))) throw new ApiError("conflict", `${rel} changed since the delete was requested`);
        // Re-checked by the journal's walk: a folder swapped for a symlink (into .git, outside) while
        // the host decided is refused. Moved aside and removed crash-atomically: no half-deleted
        // skill and no leftover folder, even after a crash.
        await commitFiles(dataDir, ws.path, { writes: [], removals: [rel] });
      });
      return { body: { ok: true, name, path: rel } };
    },
  });
}
