// Route table: setting up the OpenCode Router chat bridge of a workspace (identities, bindings,
// outbound messages). Every write is approved by the host; sending a message is audited only.
import { json, type RouteDef } from "../http/route.ts";
import {
  channelOf,
  listBindings,
  listIdentities,
  planBinding,
  planDeleteIdentity,
  planSend,
  planSetTokens,
  planTelegramEnabled,
  planUpsertIdentity,
  telegramInfo,
} from "../workspace/router-bridge.ts";

const P = "/workspace/:id/opencode-router";
const READ = { auth: "client", workspace: true, scope: "collaborator" } as const;
const WRITE = { ...READ, gate: "approval" } as const;

export const routes: RouteDef[] = [
  { method: "POST", path: `${P}/telegram-token`, ...WRITE, handler: async (rc) => planSetTokens(rc.server.config, rc.workspace!, "telegram", await rc.readJson()) },
  { method: "POST", path: `${P}/slack-tokens`, ...WRITE, handler: async (rc) => planSetTokens(rc.server.config, rc.workspace!, "slack", await rc.readJson()) },
  { method: "GET", path: `${P}/telegram`, ...READ, handler: async (rc) => json(await telegramInfo(rc.server.config)) },
  { method: "POST", path: `${P}/telegram-enabled`, ...WRITE, handler: async (rc) => planTelegramEnabled(rc.server.config, rc.workspace!, await rc.readJson()) },
  { method: "GET", path: `${P}/identities/:channel`, ...READ, handler: async (rc) => json(await listIdentities(rc.server.config, rc.workspace!, channelOf(rc.params.channel))) },
  { method: "POST", path: `${P}/identities/:channel`, ...WRITE, handler: async (rc) => planUpsertIdentity(rc.server.config, rc.workspace!, channelOf(rc.params.channel), await rc.readJson()) },
  { method: "DELETE", path: `${P}/identities/:channel/:identityId`, ...WRITE, handler: async (rc) => planDeleteIdentity(rc.server.config, rc.workspace!, channelOf(rc.params.channel), rc.params.identityId) },
  { method: "GET", path: `${P}/bindings`, ...READ, handler: async (rc) => json(await listBindings(rc.server.config, rc.workspace!, rc.query)) },
  { method: "POST", path: `${P}/bindings`, ...WRITE, handler: async (rc) => planBinding(rc.server.config, rc.workspace!, await rc.readJson()) },
  // Chat, not configuration: applied at once (read-only mode too, as the reference), audited.
  { method: "POST", path: `${P}/send`, ...WRITE, gate: "audit", readOnlyAllowed: true, handler: async (rc) => planSend(rc.server.config, rc.workspace!, await rc.readJson()) },
];
