// Routes: skills and commands of a workspace (imported by workspace-config.ts).
import { lstat, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../http/errors.ts";
import { json, type RouteContext, type RouteDef } from "../http/route.ts";
import { hostActor } from "../auth/actor.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { resolveInside } from "../fs/paths.ts";
import { plan } from "../types.ts";
import { applyEdits, describeEdit, globalOpencodeDir, readTextIfExists, relPosix, type FileEdit } from "../workspace/opencode-config.ts";
import { checkSkillName, composeSkill, localSkillsDir, scanGlobalSkills, skillFilePath, type SkillScan } from "../workspace/skills.ts";
import { commandContent, globalCommandsDir, listCommands, normalizeCommandName, validateCommand, workspaceCommandsDir, type CommandRecord } from "../workspace/commands.ts";
import { moveAside } from "../workspace/transfer.ts";
import { commitEdits, commitWrite, loadCommands, loadSkills, relPath, sendJsonText, W, WRITE, ws } from "./workspace-common.ts";

async function listSkills(rc: RouteContext) {
  const { scan, json: cached } = await loadSkills(rc);
  const v = rc.query.get("includeGlobal");
  // The project list answer is serialized once per cache generation.
  if (v !== "true" && v !== "1") return sendJsonText(rc, cached);
  const seen = new Set(scan.records.map((r) => r.item.name));
  const g: SkillScan = await scanGlobalSkills(ws(rc).path, rc.server.config.homeDir, seen);
  const skipped = [...scan.skipped, ...g.skipped];
  const out: Record<string, unknown> = { items: [...scan.records, ...g.records].map((r) => r.item) };
  if (skipped.length > 0) out.skipped = skipped;
  return json(out);
}

async function getSkill(rc: RouteContext) {
  const name = checkSkillName(rc.params.name);
  const { scan } = await loadSkills(rc);
  let rec = scan.records.find((r) => r.item.name === name);
  if (!rec) {
    const g = await scanGlobalSkills(ws(rc).path, rc.server.config.homeDir, new Set(scan.records.map((r) => r.item.name)));
    rec = g.records.find((r) => r.item.name === name);
  }
  if (!rec) throw new ApiError(404, "skill_not_found", `Skill not found: ${name}`);
  return json({ item: rec.item, content: rec.content });
}

async function upsertSkill(rc: RouteContext) {
  const body = await rc.readJson();
  const w = ws(rc);
  const s = composeSkill({ name: body.name, content: body.content, description: body.description });
  const file = skillFilePath(w.path, s.name);
  const rel = relPath(rc, file);
  // Real-path containment before anything else: a symlinked .opencode cannot redirect the write.
  await resolveInside(w.path, rel, { create: true });
  const base = await readTextIfExists(file);
  const result = { name: s.name, path: rel, description: s.description, scope: "project" };
  if (base === s.content) return json(result);
  const edit: FileEdit = { path: file, display: rel, base, next: s.content };
  return plan({
    workspaceId: w.id,
    action: "skills.upsert",
    summary: `${base === undefined ? "Create" : "Update"} skill ${s.name}`,
    paths: [file],
    change: { name: s.name, description: s.description, file: describeEdit(edit) },
    risk: [],
    target: rel,
    apply: async () => {
      const events = [{ reason: "skills" as const, trigger: { type: "skill" as const, name: s.name, action: base === undefined ? ("added" as const) : ("updated" as const), path: rel } }];
      await commitEdits(rc, w.path, [edit], { kinds: ["skills"], events });
      return { body: result };
    },
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
      else {
        let bytes = 0;
        try {
          bytes = (await lstat(p)).size;
        } catch {
          // vanished
        }
        out.push({ path: `${prefix}${e.name}`, bytes });
      }
    }
  };
  await walk(dir, "");
  return out;
}

async function deleteSkill(rc: RouteContext) {
  const name = checkSkillName(rc.params.name);
  const w = ws(rc);
  const dir = path.join(localSkillsDir(w.path), name);
  const rel = relPath(rc, dir);
  try {
    await lstat(dir);
  } catch {
    throw new ApiError(404, "skill_not_found", `Skill not found: ${name}`);
  }
  await resolveInside(w.path, rel);
  const files = await listTree(dir);
  return plan({
    workspaceId: w.id,
    action: "skills.delete",
    summary: `Delete skill ${name}`,
    paths: [dir],
    change: { name, path: rel, files },
    risk: [],
    target: rel,
    apply: async () => {
      const events = [{ reason: "skills" as const, trigger: { type: "skill" as const, name, action: "removed" as const, path: rel } }];
      await commitWrite(rc, { kinds: ["skills"], events, paths: [dir] }, () => withPathLocks([dir], async () => {
        try {
          await lstat(dir);
        } catch {
          throw new ApiError(409, "conflict", `${rel} changed since the delete was requested`);
        }
        // Re-checked under the lock: a folder swapped for a symlink (into .git, outside) while the host decided.
        await resolveInside(w.path, rel);
        // Moved aside first, so the skill disappears at once and a failing rm leaves no half-deleted skill.
        const aside = await moveAside(dir);
        await rm(aside, { recursive: true, force: true });
      }));
      return { body: { ok: true, name, path: rel } };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Commands

/** `?scope=global` is for the host only (host-token header or an owner token). */
function commandScope(rc: RouteContext): "workspace" | "global" {
  const raw = rc.query.get("scope");
  if (raw === null || raw === "" || raw === "workspace") return "workspace";
  if (raw !== "global") throw new ApiError(400, "invalid_payload", 'scope must be "workspace" or "global"');
  const isHost = rc.actor?.scope === "owner" || hostActor(rc.server, rc.req) !== undefined;
  if (!isHost) throw new ApiError(403, "forbidden", "Insufficient token scope", { required: "owner", scope: rc.actor?.scope });
  return "global";
}

/** The list answer: cached for the workspace, read from disk for the global folder. */
async function commandsList(rc: RouteContext, scope: "workspace" | "global"): Promise<Record<string, unknown>> {
  if (scope === "workspace") return (await loadCommands(rc)).body;
  const records: CommandRecord[] = await listCommands(globalCommandsDir(rc.server.config.homeDir), "global");
  return { items: records.map((r) => r.item) };
}

/** The command file, the root it must stay inside, its path relative to that root, and its display name. */
function commandTarget(rc: RouteContext, scope: "workspace" | "global", name: string): { root: string; file: string; rel: string; display: string } {
  if (scope === "global") {
    const root = globalOpencodeDir(rc.server.config.homeDir);
    const file = path.join(globalCommandsDir(rc.server.config.homeDir), `${name}.md`);
    return { root, file, rel: relPosix(root, file), display: `~/.config/opencode/commands/${name}.md` };
  }
  const file = path.join(workspaceCommandsDir(ws(rc).path), `${name}.md`);
  const rel = relPath(rc, file);
  return { root: ws(rc).path, file, rel, display: rel };
}

async function upsertCommand(rc: RouteContext) {
  const scope = commandScope(rc);
  const body = await rc.readJson();
  const c = validateCommand(body);
  const w = ws(rc);
  const t = commandTarget(rc, scope, c.name);
  await resolveInside(t.root, t.rel, { create: true });
  const next = commandContent(c);
  const base = await readTextIfExists(t.file);
  if (base === next) return json(await commandsList(rc, scope));
  const edit: FileEdit = { path: t.file, display: t.display, base, next };
  return plan({
    workspaceId: w.id,
    action: "commands.upsert",
    summary: `${base === undefined ? "Create" : "Update"} ${scope === "global" ? "global " : ""}command /${c.name}`,
    paths: [t.file],
    change: { name: c.name, scope, file: describeEdit(edit) },
    risk: [],
    target: t.display,
    apply: async () => {
      const events = [{ reason: "commands" as const, trigger: { type: "command" as const, name: c.name, action: base === undefined ? ("added" as const) : ("updated" as const), path: t.display } }];
      await commitWrite(rc, { kinds: ["commands"], events, paths: scope === "workspace" ? [t.file] : [] }, () => withPathLocks([t.file], () => applyEdits(t.root, [edit])));
      return { body: await commandsList(rc, scope) };
    },
  });
}

async function deleteCommand(rc: RouteContext) {
  const scope = commandScope(rc);
  const name = normalizeCommandName(rc.params.name);
  const w = ws(rc);
  const t = commandTarget(rc, scope, name);
  let st;
  try {
    st = await lstat(t.file);
  } catch {
    throw new ApiError(404, "command_not_found", `Command not found: ${name}`);
  }
  if (st.isDirectory()) throw new ApiError(404, "command_not_found", `Command not found: ${name}`);
  await resolveInside(t.root, t.rel);
  return plan({
    workspaceId: w.id,
    action: "commands.delete",
    summary: `Delete ${scope === "global" ? "global " : ""}command /${name}`,
    paths: [t.file],
    change: { name, scope, path: t.display, bytes: st.size },
    risk: [],
    target: t.display,
    apply: async () => {
      const events = [{ reason: "commands" as const, trigger: { type: "command" as const, name, action: "removed" as const, path: t.display } }];
      await commitWrite(rc, { kinds: ["commands"], events, paths: scope === "workspace" ? [t.file] : [] }, () => withPathLocks([t.file], async () => {
        // Re-checked under the lock: a folder swapped for a symlink while the host decided.
        await resolveInside(t.root, t.rel);
        try {
          await rm(t.file);
        } catch {
          throw new ApiError(409, "conflict", `${t.display} changed since the delete was requested`);
        }
      }));
      return { body: { ok: true } };
    },
  });
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/skills", ...W, handler: listSkills },
  { method: "GET", path: "/workspace/:id/skills/:name", ...W, handler: getSkill },
  { method: "POST", path: "/workspace/:id/skills", ...WRITE, handler: upsertSkill },
  { method: "DELETE", path: "/workspace/:id/skills/:name", ...WRITE, handler: deleteSkill },
  { method: "GET", path: "/workspace/:id/commands", ...W, handler: async (rc) => (commandScope(rc) === "workspace" ? sendJsonText(rc, (await loadCommands(rc)).json) : json(await commandsList(rc, "global"))) },
  { method: "POST", path: "/workspace/:id/commands", ...WRITE, handler: upsertCommand },
  { method: "DELETE", path: "/workspace/:id/commands/:name", ...WRITE, handler: deleteCommand },
];
