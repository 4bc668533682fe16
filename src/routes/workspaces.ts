// Route table: list, activate and remove workspaces.
import { ApiError } from "../errors.ts";
import { json, type RouteDef } from "../http/route.ts";
import { plan } from "../types.ts";
import { removeWorkspaceFromConfigFile } from "../config.ts";
import { serializeWorkspace } from "../workspaces.ts";
import type { RouteContext } from "../http/route.ts";

/** The list; under a mounted base URL only that workspace, as the active one. */
function listBody(rc: RouteContext): { items: Record<string, unknown>[]; activeId: string | null } {
  const { server } = rc;
  const redact = rc.actor?.scope === "viewer";
  const items = rc.mount ? [rc.mount] : server.workspaces.list();
  return {
    items: items.map((ws) => serializeWorkspace(server.config, ws, { redact })),
    activeId: rc.mount ? rc.mount.id : (server.workspaces.active()?.id ?? null),
  };
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspaces", auth: "client", handler: async (rc) => json(listBody(rc)) },
  {
    // The host's own action, audited; it only reorders the running server's list (nothing is
    // persisted), so read-only mode allows it.
    method: "POST",
    path: "/workspaces/:id/activate",
    auth: "host",
    gate: "audit",
    readOnlyAllowed: true,
    workspace: true,
    handler: async (rc) => {
      const ws = rc.workspace!;
      return plan({
        workspaceId: ws.id,
        action: "workspace.activate",
        summary: `Activate workspace ${ws.name}`,
        target: ws.path,
        paths: [],
        change: { activeId: ws.id },
        apply: async () => {
          const active = rc.server.workspaces.activate(ws.id);
          return { body: { activeId: active.id, workspace: serializeWorkspace(rc.server.config, active, { redact: false }) } };
        },
      });
    },
  },
  {
    method: "DELETE",
    path: "/workspaces/:id",
    auth: "host",
    gate: "audit",
    handler: async (rc) => {
      const id = rc.params.id!;
      const ws = rc.server.workspaces.get(id);
      // As the reference: an unknown id is a 404 (after host auth and the read-only check).
      if (!ws) throw new ApiError("workspace_not_found", "Workspace not found");
      const { config } = rc.server;
      return plan({
        workspaceId: ws.id,
        action: "workspace.delete",
        summary: `Remove workspace ${ws.name} from the server`,
        target: ws.path,
        paths: config.configFileExists ? [config.configPath] : [],
        change: { id: ws.id, path: ws.path },
        apply: async () => {
          const deleted = rc.server.workspaces.remove(ws.id);
          const persisted = config.configFileExists ? await removeWorkspaceFromConfigFile(config.configPath, ws.path) : false;
          rc.server.bus.emit("workspace.removed", ws.id);
          return { body: { ok: true, deleted, persisted, ...listBody(rc) } };
        },
      });
    },
  },
];
