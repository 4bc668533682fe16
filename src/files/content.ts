/**
 * Single-file convenience used by the UI: GET/POST /workspace/:id/files/content.
 * Same path rules, protected paths, revisions and atomic writes as file sessions.
 */
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { plan } from "../types.ts";
import type { Workspace, WritePlan } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { openFileAt, readAll } from "../fs/anchored.ts";
import { withPathLock } from "../fs/atomic.ts";
import { mtimeMsOf, revisionOf } from "../fs/revision.ts";
import { checkViewerBytes, checkViewerName } from "./viewer-secrets.ts";
import { realRel, riskFor, sha256Hex, workspaceResolver } from "./common.ts";
import { checkWritePreconditions, writeResolved } from "./batch.ts";

/** `{"path","content","bytes","updatedAt","revision"}` for a UTF-8 text file (binary → 415 unsupported_media). */
export async function readContent(server: ServerContext, ws: Workspace, input: unknown, options: { viewer: boolean }) {
  const resolver = await workspaceResolver(server, ws);
  let file;
  let r;
  try {
    r = await resolver.resolve(input);
    if (r.missing > 0) throw new ApiError("file_not_found", "File not found");
    checkViewerName(options.viewer, r.rel, realRel(r));
    file = await openFileAt(r.dir, r.below[0]!);
  } finally {
    await resolver.close();
  }
  const stat = file.stat;
  try {
    const size = Number(stat.size);
    if (size > LIMITS.sessionFileBytes) throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size });
    const data = await readAll(file, size);
    checkViewerBytes(options.viewer, stat, data);
    let content: string;
    try {
      if (data.includes(0)) throw new Error("binary");
      content = new TextDecoder("utf-8", { fatal: true }).decode(data);
    } catch {
      throw new ApiError("unsupported_media", "File is not UTF-8 text");
    }
    return { path: r.rel, content, bytes: data.length, updatedAt: mtimeMsOf(stat), revision: revisionOf(stat) };
  } finally {
    await file.close().catch(() => {});
  }
}

/**
 * Validates `{"path","content","baseRevision"?,"baseUpdatedAt"?,"force"?}` and returns the plan;
 * 409 conflict when baseRevision or baseUpdatedAt is stale (checked now and again under the lock).
 */
export async function planContentWrite(server: ServerContext, ws: Workspace, body: Record<string, unknown>): Promise<WritePlan> {
  if (typeof body.content !== "string") throw new ApiError("invalid_payload", "content must be a string");
  if (body.baseRevision !== undefined && body.baseRevision !== null && typeof body.baseRevision !== "string") {
    throw new ApiError("invalid_payload", "baseRevision must be a string");
  }
  if (body.force !== undefined && typeof body.force !== "boolean") throw new ApiError("invalid_payload", "force must be a boolean");
  const base = body.baseUpdatedAt;
  if (base !== undefined && base !== null && (typeof base !== "number" || !Number.isFinite(base))) throw new ApiError("invalid_payload", "baseUpdatedAt must be a number of milliseconds");
  const data = Buffer.from(body.content, "utf8");
  if (data.length > LIMITS.sessionFileBytes) throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size: data.length });
  const pre: { ifMatchRevision?: string; baseUpdatedAt?: number; force: boolean } = { force: body.force === true };
  if (typeof body.baseRevision === "string") pre.ifMatchRevision = body.baseRevision;
  if (typeof base === "number") pre.baseUpdatedAt = base;
  const resolver = await workspaceResolver(server, ws);
  let first;
  let previousRevision;
  try {
    first = await resolver.resolve(body.path, { create: true });
    ({ previousRevision } = await checkWritePreconditions(first.real, pre));
  } catch (err) {
    await resolver.close();
    throw err;
  }
  const sha256 = sha256Hex(data);
  const risk = riskFor([first.rel, realRel(first)]);
  return plan({
    workspaceId: ws.id,
    action: "workspace.file.write",
    summary: `Write ${first.rel} (${data.length} bytes)`,
    paths: [first.abs],
    target: first.rel,
    change: { path: first.rel, ...(realRel(first) !== first.rel ? { resolvesTo: realRel(first) } : {}), bytes: data.length, sha256, op: previousRevision === null ? "create" : "overwrite" },
    ...(risk ? { risk } : {}),
    apply: async () => {
      const result = await withPathLock(first.real, async () => {
        // Re-checked under the lock: the file may have changed while the host was deciding.
        const r = await resolver.resolveNormalized(first.rel, { create: true });
        const { previousRevision: prev } = await checkWritePreconditions(r.real, pre);
        const out = await writeResolved(resolver, r, data, { createOnly: previousRevision === null && !pre.force });
        return { path: r.rel, bytes: data.length, updatedAt: out.updatedAt, revision: out.revision, previousRevision: prev };
      });
      return { body: { ok: true, ...result } };
    },
    release: () => resolver.close(),
  });
}
