/**
 * Inbox (file injection): `<ws>/.opencode/openwork/inbox/`. The route streams the multipart body
 * to a staging file `.upload-<uuid>.tmp` inside the inbox; this module picks and validates the
 * target, builds the approval plan and, once allowed, renames the staged file into place.
 */
import { realpath, unlink } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { plan } from "../types.ts";
import type { Workspace, WritePlan } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { normalizeRelPath, type ProtectedPaths } from "../fs/paths.ts";
import { placeStagedAt } from "../fs/anchored.ts";
import { removeEmptyChain, withPathLock } from "../fs/atomic.ts";
import { fsError, riskFor } from "./common.ts";
import { currentRevision } from "../fs/revision.ts";
import { encodeItemId, listBox, openBox, openBoxItem, type Box } from "./listing.ts";

export const INBOX_REL = ".opencode/openwork/inbox";

/** 404 inbox_disabled unless the inbox is enabled. */
export function requireInboxEnabled(server: ServerContext): void {
  if (!server.config.inbox.enabled) throw new ApiError("inbox_disabled", "Inbox is disabled");
}

/**
 * The inbox, created when missing (403 when `.opencode` leads outside the workspace), held open,
 * and an `undo` that removes the folders this call created if they are still empty (a refused
 * upload leaves the workspace exactly as it was).
 */
export async function ensureInbox(server: ServerContext, ws: Workspace): Promise<Box & { undo: () => Promise<void> }> {
  const box = (await openBox(ws, "inbox", true, await server.protectedPaths()))!;
  const top = box.createdTop;
  return { ...box, undo: top === undefined ? async () => {} : () => removeEmptyChain(box.dir.real, top) };
}

/** Basename of a client file name (`C:\x\y.pdf`, `../../y.pdf` → `y.pdf`); 400 invalid_path when nothing usable is left. */
export function uploadBasename(filename: string | undefined): string {
  const base = (filename ?? "").replace(/\\/g, "/").split("/").pop() ?? "";
  return normalizeRelPath(base);
}

/**
 * The target path inside the inbox: `?path=`, else the `path` field, else the file name's
 * basename. A given path ending in "/" names a folder: the file name's basename goes inside it.
 */
export function uploadTarget(queryPath: string | null, fieldPath: string | undefined, filename: string | undefined): string {
  const given = queryPath ?? fieldPath;
  if (given === undefined || given.trim() === "") return uploadBasename(filename);
  const g = given.trim().replace(/\\/g, "/");
  if (g.endsWith("/")) return normalizeRelPath(`${g}${uploadBasename(filename)}`);
  return normalizeRelPath(g);
}

export interface StagedUpload {
  /** Name of the staged file in the inbox folder. */
  name: string;
  bytes: number;
  sha256: string;
}

/**
 * Validates the target and returns the approval plan; once allowed, exactly the approved bytes
 * are put in place (the staged file is hashed again). The staged file is removed and the inbox
 * closed when the plan settles; `abandon` runs when the upload never landed (denied, failed).
 */
export async function planInboxUpload(ws: Workspace, inbox: Box, targetRel: string, staged: StagedUpload, abandon: () => Promise<void> = async () => {}): Promise<WritePlan> {
  let landed = false;
  const resolver = inbox.resolver;
  const first = await resolver.resolveNormalized(targetRel, { create: true });
  if (first.lstat?.isDirectory()) throw new ApiError("not_a_file", "Target is a folder");
  const wsRel = `${INBOX_REL}/${first.rel}`;
  // What the host approves is "replace this version" (or "create"): re-checked right before the rename (M32).
  const approvedRevision = await currentRevision(first.real);
  // An inbox folder symlinked onto .opencode/plugins turns an upload into a plugin: judge where it lands.
  const wsReal = await realpath(ws.path).catch(() => path.resolve(ws.path));
  const risk = riskFor([path.relative(wsReal, first.real).split(path.sep).join("/")]);
  return plan({
    workspaceId: ws.id,
    action: "workspace.inbox.upload",
    summary: `Upload ${first.rel} (${staged.bytes} bytes) to the inbox`,
    paths: [first.abs],
    target: wsRel,
    change: { path: first.rel, bytes: staged.bytes, sha256: staged.sha256, op: first.missing > 0 ? "create" : "overwrite" },
    ...(risk ? { risk } : {}),
    apply: async () => {
      const r = await withPathLock(first.real, async () => {
        const r = await resolver.resolveNormalized(targetRel, { create: true });
        if (r.lstat?.isDirectory()) throw new ApiError("not_a_file", "Target is a folder");
        const now = await currentRevision(r.real);
        if (now !== approvedRevision) {
          throw new ApiError("conflict", "The inbox file changed while the upload waited for approval", { expectedRevision: approvedRevision, currentRevision: now });
        }
        try {
          const target = await resolver.parentFor(r);
          await placeStagedAt(inbox.dir, staged.name, target.dir, target.name, staged, { createOnly: approvedRevision === null });
          landed = true;
        } catch (err) {
          throw fsError(err);
        }
        return r;
      });
      return {
        body: { ok: true, path: r.rel, bytes: staged.bytes, sha256: staged.sha256 },
        audit: [{ action: "workspace.inbox.upload", target: `${INBOX_REL}/${r.rel}`, summary: `Uploaded ${r.rel} (${staged.bytes} bytes)` }],
      };
    },
    release: async () => {
      await unlink(inbox.dir.at(staged.name)).catch(() => {});
      if (!landed) await abandon();
      await resolver.close();
    },
  });
}

/** `{"items":[{"id","path","name","size","updatedAt"}]}` newest first; a missing inbox lists nothing. */
export async function listInbox(ws: Workspace, protect: ProtectedPaths): Promise<{ items: { id: string; path: string; name: string; size: number; updatedAt: number }[] }> {
  const files = await listBox(ws, "inbox", protect);
  return { items: files.map((f) => ({ id: encodeItemId(f.path), path: f.path, name: f.name, size: f.size, updatedAt: f.updatedAt })) };
}

/** Opens an inbox item for download by id (400 invalid_path, 404 inbox_file_not_found, 403 outside). */
export async function openInboxItem(server: ServerContext, ws: Workspace, id: string) {
  const notFound = () => new ApiError("inbox_file_not_found", "Inbox file not found");
  return openBoxItem(ws, "inbox", id, await server.protectedPaths(), () => new ApiError("invalid_path", "Invalid inbox item id"), notFound);
}
