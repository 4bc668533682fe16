// Routes: export and all-or-nothing import of a workspace's configuration (imported by workspace-config.ts).
import { json, type RouteContext, type RouteDef } from "../http/route.ts";
import { LIMITS } from "../limits.ts";
import { plan } from "../types.ts";
import { readWorkspaceConfig } from "../workspace/opencode-config.ts";
import { scanProjectSkills } from "../workspace/skills.ts";
import { listCommands, workspaceCommandsDir } from "../workspace/commands.ts";
import { applyImport, buildExport, planImport } from "../workspace/transfer.ts";
import { authorizedRootFor, type ReloadReason, type ReloadTrigger } from "../workspace/reload-events.ts";
import type { CacheKind } from "../workspace/cache.ts";
import { redactSecrets } from "../workspace/redaction.ts";
import { commitWrite, isViewer, loadCommands, loadConfig, loadSkills, W, WRITE, ws } from "./workspace-common.ts";

async function exportWorkspace(rc: RouteContext) {
  const [config, skills, commands] = await Promise.all([loadConfig(rc), loadSkills(rc), loadCommands(rc)]);
  const doc = buildExport(ws(rc).id, config, skills.scan.records, commands.records);
  if (!isViewer(rc)) return json(doc);
  return json({ ...doc, opencode: redactSecrets(doc.opencode), openwork: redactSecrets(doc.openwork) });
}

async function importWorkspace(rc: RouteContext) {
  const body = await rc.readJson({ maxBytes: LIMITS.largeJsonBodyBytes });
  const w = ws(rc);
  // Planned against the disk as it is now (not the cache): the approval shows exactly these files.
  const [config, skills, commands] = await Promise.all([
    readWorkspaceConfig(w.path),
    scanProjectSkills(w.path, authorizedRootFor(w, rc.server.config.authorizedRoots), rc.server.config.homeDir),
    listCommands(workspaceCommandsDir(w.path), "workspace"),
  ]);
  const p = await planImport(w.path, body, { config, skills: skills.records, commands });
  if (p.edits.length === 0 && p.removals.length === 0) return json({ ok: true, written: [], removed: [] });
  const kinds: CacheKind[] = [];
  const events: { reason: ReloadReason; trigger: ReloadTrigger }[] = [];
  if (p.touches.opencode || p.touches.openwork) {
    kinds.push("config");
    events.push({ reason: "config", trigger: { type: "config", name: "import", action: "updated" } });
  }
  if (p.touches.skills.length > 0) {
    kinds.push("skills");
    events.push({ reason: "skills", trigger: { type: "skill", name: p.touches.skills[0]!, action: "updated" } });
  }
  if (p.touches.commands.length > 0) {
    kinds.push("commands");
    events.push({ reason: "commands", trigger: { type: "command", name: p.touches.commands[0]!, action: "updated" } });
  }
  const paths = [...p.edits.map((e) => e.path), ...p.removals.map((r) => r.path)];
  return plan({
    workspaceId: w.id,
    action: "config.import",
    summary: `Import configuration: ${p.written.length} file(s) written, ${p.removed.length} removed`,
    paths,
    change: p.change,
    risk: p.touches.opencode ? ["executes-code"] : [],
    target: w.path,
    apply: async () => {
      await commitWrite(rc, { kinds, events, paths }, () => applyImport(w.path, p));
      return { body: { ok: true, written: p.written, removed: p.removed } };
    },
  });
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspace/:id/export", ...W, handler: exportWorkspace },
  { method: "POST", path: "/workspace/:id/import", ...WRITE, handler: importWorkspace },
];
