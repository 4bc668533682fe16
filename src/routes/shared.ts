// Helpers shared by route tables (not a route table itself).
import type { RouteContext } from "../http/route.ts";
import type { WorkspaceState } from "../workspace/reload-events.ts";

/** RouteDef options of the workspace routes: reads, and collaborator writes through the host's approval. */
export const READ = { auth: "client", workspace: true } as const;
export const WRITE = { auth: "client", workspace: true, gate: "approval", scope: "collaborator" } as const;

/** The configuration state of the route's workspace (watchers, cache, loaders, reload events). */
export function state(rc: RouteContext): Promise<WorkspaceState> {
  return rc.server.configs.state(rc.workspace!);
}

export function isViewer(rc: RouteContext): boolean {
  return rc.actor?.scope === "viewer";
}
