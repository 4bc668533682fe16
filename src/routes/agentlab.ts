// Route table: Agent Lab automations of a workspace (stored prompts on a schedule, and their logs).
import { json, type RouteDef } from "../http/route.ts";
import { listAutomationLogs, planAutomationDelete, planAutomationRun, planAutomationUpsert, readAutomationLog, readAutomations } from "../workspace/agentlab.ts";
import { READ, WRITE } from "./shared.ts";

const P = "/workspace/:id/agentlab/automations";

export const routes: RouteDef[] = [
  { method: "GET", path: P, ...READ, handler: async (rc) => json((({ items, updatedAt }) => ({ items, updatedAt }))(await readAutomations(rc.workspace!))) },
  { method: "POST", path: P, ...WRITE, handler: async (rc) => planAutomationUpsert(rc.workspace!, await rc.readJson()) },
  { method: "GET", path: `${P}/logs`, ...READ, handler: async (rc) => json(await listAutomationLogs(rc.workspace!)) },
  { method: "GET", path: `${P}/logs/:automationId`, ...READ, handler: async (rc) => json(await readAutomationLog(rc.workspace!, rc.params.automationId ?? "")) },
  { method: "DELETE", path: `${P}/:automationId`, ...WRITE, handler: async (rc) => planAutomationDelete(rc.workspace!, rc.params.automationId ?? "") },
  // A run is a chat with the engine: no approval by spec, allowed in read-only mode, audited.
  { method: "POST", path: `${P}/:automationId/run`, ...WRITE, gate: "audit", readOnlyAllowed: true, handler: async (rc) => planAutomationRun(rc.server.config, rc.workspace!, rc.params.automationId ?? "", rc.signal) },
];
