/**
 * The workspace registry: ids, authorized roots, resolution, activation and removal.
 * Ids are "ws_" + the first 12 hex chars of sha256(absolute resolved path), exactly as the
 * reference computes them, so existing clients keep their ids.
 */
import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import { basename, resolve } from "node:path";
import { isInsideOrSame } from "./fs/paths.ts";
import { ApiError } from "./errors.ts";
import type { ServerConfig, WorkspaceConfig, WorkspaceRegistry } from "./context.ts";
import { workspaceDirectory } from "./engine.ts";
import { redactEmbedded } from "./workspace/redaction.ts";
import type { Workspace } from "./types.ts";

export function workspaceId(absPath: string): string {
  return "ws_" + createHash("sha256").update(resolve(absPath)).digest("hex").slice(0, 12);
}

/** Real path when it exists (startup only), else the resolved path. */
function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

export function buildWorkspace(entry: WorkspaceConfig, authorizedRoots: readonly string[]): Workspace {
  const path = resolve(entry.path);
  const real = realOrResolved(path);
  const authorized = authorizedRoots.some((root) => isInsideOrSame(realOrResolved(root), real));
  const ws: Workspace = {
    id: workspaceId(path),
    name: entry.name ?? basename(path),
    path,
    workspaceType: entry.workspaceType ?? "local",
    authorized,
  };
  if (entry.baseUrl !== undefined) ws.baseUrl = entry.baseUrl;
  if (entry.directory !== undefined) ws.directory = entry.directory;
  if (entry.opencodeUsername !== undefined) ws.opencodeUsername = entry.opencodeUsername;
  if (entry.opencodePassword !== undefined) ws.opencodePassword = entry.opencodePassword;
  return ws;
}

export class Workspaces implements WorkspaceRegistry {
  private items: Workspace[];
  /** Bumped on every change of the list or its order (answers built from it are cached by it). */
  revision = 0;

  constructor(entries: readonly WorkspaceConfig[], authorizedRoots: readonly string[]) {
    const seen = new Set<string>();
    this.items = [];
    for (const entry of entries) {
      const ws = buildWorkspace(entry, authorizedRoots);
      if (seen.has(ws.id)) continue; // the same folder listed twice is one workspace
      seen.add(ws.id);
      this.items.push(ws);
    }
  }

  list(): Workspace[] {
    return [...this.items];
  }

  active(): Workspace | undefined {
    return this.items[0];
  }

  get(id: string): Workspace | undefined {
    return this.items.find((w) => w.id === id);
  }

  resolve(id: string): Workspace {
    const ws = this.get(id);
    if (!ws) throw new ApiError("workspace_not_found", "Workspace not found");
    if (!ws.authorized) throw new ApiError("workspace_unauthorized", "Workspace is outside the authorized roots");
    return ws;
  }

  activate(id: string): Workspace {
    const ws = this.resolve(id);
    this.items = [ws, ...this.items.filter((w) => w.id !== id)];
    this.revision++;
    return ws;
  }

  remove(id: string): boolean {
    const before = this.items.length;
    this.items = this.items.filter((w) => w.id !== id);
    this.revision++;
    return this.items.length !== before;
  }
}

/** What clients see of a workspace; OpenCode credentials are redacted for viewers. */
export function serializeWorkspace(config: ServerConfig, ws: Workspace, options: { redact: boolean }): Record<string, unknown> {
  const directory = workspaceDirectory(config, ws);
  let baseUrl = ws.baseUrl ?? config.opencode.baseUrl;
  const username = ws.opencodeUsername ?? config.opencode.username;
  const password = ws.opencodePassword ?? config.opencode.password;
  const out: Record<string, unknown> = { id: ws.id, name: ws.name, path: ws.path, workspaceType: ws.workspaceType };
  // A base URL may carry `user:password@`: viewers see it without the credentials.
  if (baseUrl !== undefined) baseUrl = options.redact ? redactEmbedded(baseUrl) : baseUrl;
  if (baseUrl !== undefined) out.baseUrl = baseUrl;
  out.directory = directory;
  const opencode: Record<string, unknown> = {};
  if (baseUrl !== undefined) opencode.baseUrl = baseUrl;
  opencode.directory = directory;
  if (username !== undefined) opencode.username = options.redact ? "[redacted]" : username;
  if (password !== undefined) opencode.password = options.redact ? "[redacted]" : password;
  out.opencode = opencode;
  return out;
}
