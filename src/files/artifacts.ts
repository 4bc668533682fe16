/**
 * Artifacts (outbox): `<ws>/.opencode/openwork/outbox/`, where the agent leaves results.
 * Listing is recursive and newest first; ids are base64url of the outbox-relative path.
 */
import { ApiError } from "../errors.ts";
import type { Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { PathResolver, type ProtectedPaths } from "../fs/paths.ts";
import { decodeItemId, encodeItemId, listFiles, openListedItem, openworkDir } from "./listing.ts";

/** 404 outbox_disabled unless the outbox is enabled. */
export function requireOutboxEnabled(server: ServerContext): void {
  if (!server.config.outboxEnabled) throw new ApiError("outbox_disabled", "Outbox is disabled");
}

/** `{"items":[{"id","path","size","updatedAt"}]}`; a missing outbox → no items. */
export async function listArtifacts(ws: Workspace, protect?: ProtectedPaths): Promise<{ items: { id: string; path: string; size: number; updatedAt: number }[] }> {
  const dir = await openworkDir(ws.path, "outbox", false);
  if (!dir) return { items: [] };
  const files = await listFiles(dir, protect);
  return { items: files.map((f) => ({ id: encodeItemId(f.path), path: f.path, size: f.size, updatedAt: f.updatedAt })) };
}

/** Opens an artifact by id: 400 invalid_artifact, 404 artifact_not_found, 403 path_outside_workspace. */
export async function openArtifact(ws: Workspace, id: string, protect?: ProtectedPaths) {
  const rel = decodeItemId(id);
  if (rel === undefined) throw new ApiError("invalid_artifact", "Invalid artifact id");
  const dir = await openworkDir(ws.path, "outbox", false);
  if (!dir) throw new ApiError("artifact_not_found", "Artifact not found");
  // Protected paths apply: an outbox symlinked onto a project folder must not serve its .git or token store.
  const resolver = await PathResolver.create(dir, protect);
  let r;
  try {
    r = await resolver.resolve(rel);
  } catch (err) {
    if (err instanceof ApiError && err.code === "invalid_path") throw new ApiError("invalid_artifact", "Invalid artifact id");
    throw err;
  }
  return openListedItem(r, () => new ApiError("artifact_not_found", "Artifact not found"));
}
