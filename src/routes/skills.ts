// Route table: skills and commands of a workspace. Handlers parse, call the domain, and return its
// answer or write plan.
import { ApiError } from "../errors.ts";
import { hostActor } from "../auth/actor.ts";
import { sendJsonText } from "../http/reply.ts";
import { boolParam } from "../http/query.ts";
import { HANDLED, json, type RouteContext, type RouteDef } from "../http/route.ts";
import { checkSkillName, planSkillDelete, planSkillUpsert, scanGlobalSkills } from "../workspace/skills.ts";
import { commandsList, planCommandDelete, planCommandUpsert, type CommandScope } from "../workspace/commands.ts";
import { READ, WRITE, state } from "./shared.ts";

async function listSkills(rc: RouteContext) {
  const { scan, json: cached } = await (await state(rc)).skills();
  // The project list answer is serialized once per cache generation.
  if (!boolParam(rc.query, "includeGlobal")) {
    sendJsonText(rc.res, 200, cached);
    return HANDLED;
  }
  const g = await scanGlobalSkills(rc.workspace!.path, rc.server.config.homeDir, new Set(scan.records.map((r) => r.item.name)));
  const skipped = [...scan.skipped, ...g.skipped];
  const out: Record<string, unknown> = { items: [...scan.records, ...g.records].map((r) => r.item) };
  if (skipped.length > 0) out.skipped = skipped;
  return json(out);
}

async function getSkill(rc: RouteContext) {
  const name = checkSkillName(rc.params.name);
  const { scan } = await (await state(rc)).skills();
  let rec = scan.records.find((r) => r.item.name === name);
  if (!rec) {
    const g = await scanGlobalSkills(rc.workspace!.path, rc.server.config.homeDir, new Set(scan.records.map((r) => r.item.name)));
    rec = g.records.find((r) => r.item.name === name);
  }
  if (!rec) throw new ApiError("skill_not_found", `Skill not found: ${name}`);
  return json({ item: rec.item, content: rec.content });
}

/** `?scope=global` is for the host only (host-token header or an owner token). */
function commandScope(rc: RouteContext): CommandScope {
  const raw = rc.query.get("scope");
  if (raw === null || raw === "" || raw === "workspace") return "workspace";
  if (raw !== "global") throw new ApiError("invalid_payload", 'scope must be "workspace" or "global"');
  const isHost = rc.actor?.scope === "owner" || hostActor(rc.server, rc.req) !== undefined;
  if (!isHost) throw new ApiError("forbidden", "Insufficient token scope", { required: "owner", scope: rc.actor?.scope });
  return "global";
}

async function listCommandsRoute(rc: RouteContext) {
  const scope = commandScope(rc);
  const s = await state(rc);
  if (scope === "global") return json(await commandsList(s, rc.server.config.homeDir, scope));
  sendJsonText(rc.res, 200, (await s.commands()).json);
  return HANDLED;
}

const home = (rc: RouteContext) => rc.server.config.homeDir;

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/skills", ...READ, handler: listSkills },
  { method: "GET", path: "/workspace/:id/skills/:name", ...READ, handler: getSkill },
  { method: "POST", path: "/workspace/:id/skills", ...WRITE, handler: async (rc) => planSkillUpsert(rc.workspace!, await rc.readJson()) },
  { method: "DELETE", path: "/workspace/:id/skills/:name", ...WRITE, handler: async (rc) => planSkillDelete(rc.workspace!, rc.params.name, rc.server.config.dataDir) },
  { method: "GET", path: "/workspace/:id/commands", ...READ, handler: listCommandsRoute },
  { method: "POST", path: "/workspace/:id/commands", ...WRITE, handler: async (rc) => planCommandUpsert(await state(rc), home(rc), commandScope(rc), await rc.readJson()) },
  { method: "DELETE", path: "/workspace/:id/commands/:name", ...WRITE, handler: async (rc) => planCommandDelete(await state(rc), home(rc), commandScope(rc), rc.params.name) },
];
