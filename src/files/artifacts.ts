/**
 * Artifacts (outbox): `<ws>/.opencode/openwork/outbox/`, where the agent leaves results.
 * Listing is recursive and newest first; ids are base64url of the outbox-relative path.
 */
import { ApiError } from "../errors.ts";
import type { Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";
import type { ProtectedPaths } from "../fs/paths.ts";
import { encodeItemId, listBox, openBoxItem } from "./listing.ts";

/** 404 outbox_disabled unless the outbox is enabled. */
export function requireOutboxEnabled(server: ServerContext): void {
  if (!server.config.outboxEnabled) throw new ApiError("outbox_disabled", "Outbox is disabled");
}

/** `{"items":[{"id","path","size","updatedAt"}]}`; a missing outbox → no items. */
export async function listArtifacts(ws: Workspace, protect: ProtectedPaths): Promise<{ items: { id: string; path: string; size: number; updatedAt: number }[] }> {
  const files = await listBox(ws, "outbox", protect);
  return { items: files.map((f) => ({ id: encodeItemId(f.path), path: f.path, size: f.size, updatedAt: f.updatedAt })) };
}

/** Opens an artifact by id: 400 invalid_artifact, 404 artifact_not_found, 403 path_outside_workspace. */
export function openArtifact(ws: Workspace, id: string, protect: ProtectedPaths) {
  // Protected paths apply: an outbox symlinked onto a project folder must not serve its .git or token store.
  return openBoxItem(ws, "outbox", id, protect, () => new ApiError("invalid_artifact", "Invalid artifact id"), () => new ApiError("artifact_not_found", "Artifact not found"));
}
