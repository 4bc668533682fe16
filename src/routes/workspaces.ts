// Route table: list, activate and remove workspaces.
import { json, type RouteDef } from "../http/route.ts";
import { plan } from "../types.ts";
import { removeWorkspaceFromConfigFile } from "../config.ts";
import { serializeWorkspace } from "../workspaces.ts";
import type { RouteContext } from "../http/route.ts";

function listBody(rc: RouteContext): { items: Record<string, unknown>[]; activeId: string | null } {
  const { server } = rc;
  const redact = rc.actor?.scope === "viewer";
  return {
    items: server.workspaces.list().map((ws) => serializeWorkspace(server.config, ws, { redact })),
    activeId: server.workspaces.active()?.id ?? null,
  };
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/workspaces", auth: "client", handler: async (rc) => json(listBody(rc)) },
  {
    // Not `write: true`: activation only reorders the running server's list (nothing persisted,
    // allow-listed in the structural test); it is still audited through the plan.
    method: "POST",
    path: "/workspaces/:id/activate",
    auth: "host",
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
        approval: false, // the host itself asks
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
    write: true,
    handler: async (rc) => {
      const id = rc.params.id!;
      const ws = rc.server.workspaces.get(id);
      if (!ws) return json({ ok: true, deleted: false, persisted: false, ...listBody(rc) });
      const { config } = rc.server;
      return plan({
        workspaceId: ws.id,
        action: "workspace.delete",
        summary: `Remove workspace ${ws.name} from the server`,
        target: ws.path,
        paths: config.configFileExists ? [config.configPath] : [],
        change: { id: ws.id, path: ws.path },
        approval: false, // the host itself asks; the folder is not touched
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
