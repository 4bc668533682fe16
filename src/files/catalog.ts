// Catalog index + events of file sessions (issue 4, catalog engineer). Interface first; the
// implementation lands behind it.
import type { ServerContext, Service } from "../context.ts";
import type { Workspace } from "../types.ts";

/** Per-server catalog service: one index + event buffer per workspace with live sessions. */
export class Catalogs implements Service {
  #seq = new Map<string, number>();
  constructor(readonly server: ServerContext) {}
  /** Record a change the server itself just made (write, delete, mkdir) before it answers. */
  async noteChange(_ws: Workspace, _relPath: string): Promise<void> {}
  /** Record a rename the server itself just made. */
  async noteRename(_ws: Workspace, _fromRel: string, _toRel: string): Promise<void> {}
  /** The workspace's current event sequence (0 before any event). */
  cursor(workspaceId: string): number {
    return this.#seq.get(workspaceId) ?? 0;
  }
  close(): void {}
}

/** The per-server catalog service. */
export function getCatalogs(server: ServerContext): Catalogs {
  return server.service("catalog", () => new Catalogs(server));
}
