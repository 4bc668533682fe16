// Route table: issue 4 — inbox, artifacts, file sessions, batch read/write, ops, files/content.
import { HANDLED, json, jsonText } from "../http/route.ts";
import type { RouteContext, RouteDef } from "../http/route.ts";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { boundaryFromContentType, receiveMultipart } from "../http/multipart.ts";
import { sendFile } from "../http/download.ts";
import { normalizeRelPath } from "../fs/paths.ts";
import { constants as C } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { uploadTempName } from "../fs/atomic.ts";
import { requireSession, requireWritableSession, sessionView } from "../files/sessions.ts";
import { readBatchText, planWriteBatch } from "../files/batch.ts";
import { planOps } from "../files/ops.ts";
import { ensureInbox, listInbox, openInboxItem, planInboxUpload, requireInboxEnabled, uploadTarget } from "../files/inbox.ts";
import { listArtifacts, openArtifact, requireOutboxEnabled } from "../files/artifacts.ts";
import { planContentWrite, readContent } from "../files/content.ts";
import { checkViewerDownload } from "../files/viewer-secrets.ts";

function ws(rc: RouteContext) {
  // Routes declare `workspace: true`, so the router has resolved and authorized it.
  return rc.workspace!;
}

async function uploadToInbox(rc: RouteContext) {
  const server = rc.server;
  requireInboxEnabled(server);
  const workspace = ws(rc);
  const boundary = boundaryFromContentType(rc.req.headers["content-type"]);
  // A bad ?path= fails before a single body byte is stored.
  const queryPath = rc.query.get("path");
  if (queryPath !== null && queryPath.trim() !== "" && !queryPath.trim().replace(/\\/g, "/").endsWith("/")) normalizeRelPath(queryPath);
  let inbox = await ensureInbox(server, workspace);
  let staged: string | undefined;
  try {
    const received = await receiveMultipart(rc.req, {
      boundary,
      fileField: "file",
      maxFileBytes: server.config.inbox.maxBytes,
      createTemp: async () => {
        staged = uploadTempName();
        // Created in the inbox folder we hold: a swapped `.opencode` cannot move the bytes outside.
        const create = () => open(inbox.dir.at(staged!), C.O_CREAT | C.O_EXCL | C.O_WRONLY | C.O_NOFOLLOW, 0o666);
        try {
          return { path: inbox.dir.at(staged), fh: await create() };
        } catch (err) {
          // A concurrent refused upload may have just removed the empty inbox it had created.
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
          await inbox.resolver.close();
          inbox = await ensureInbox(server, workspace);
          return { path: inbox.dir.at(staged), fh: await create() };
        }
      },
    });
    const file = received.file;
    if (!file) throw new ApiError("file_required", "A file part named \"file\" is required");
    const target = uploadTarget(queryPath, received.fields.get("path"), file.filename);
    return await planInboxUpload(workspace, inbox, target, { name: staged!, bytes: file.bytes, sha256: file.sha256 }, inbox.undo);
  } catch (err) {
    // Refused before a plan existed: drop the staged bytes and any inbox folder made for them.
    if (staged) await unlink(inbox.dir.at(staged)).catch(() => {});
    await inbox.undo();
    await inbox.resolver.close();
    throw err;
  }
}

export const routes: RouteDef[] = [
  // ---- inbox
  {
    method: "POST",
    path: "/workspace/:id/inbox",
    auth: "client",
    scope: "collaborator",
    gate: "approval",
    workspace: true,
    handler: uploadToInbox,
  },
  {
    method: "GET",
    path: "/workspace/:id/inbox",
    auth: "client",
    workspace: true,
    handler: async (rc) => {
      requireInboxEnabled(rc.server);
      return json(await listInbox(ws(rc), await rc.server.protectedPaths()));
    },
  },
  {
    method: "GET",
    path: "/workspace/:id/inbox/:inboxId",
    auth: "client",
    workspace: true,
    handler: async (rc): Promise<typeof HANDLED> => {
      requireInboxEnabled(rc.server);
      const file = await openInboxItem(rc.server, ws(rc), rc.params.inboxId ?? "");
      await checkViewerDownload(rc.actor!.scope === "viewer", file);
      await sendFile(rc.req, rc.res, file);
      return HANDLED;
    },
  },
  // ---- artifacts
  {
    method: "GET",
    path: "/workspace/:id/artifacts",
    auth: "client",
    workspace: true,
    handler: async (rc) => {
      requireOutboxEnabled(rc.server);
      return json(await listArtifacts(ws(rc), await rc.server.protectedPaths()));
    },
  },
  {
    method: "GET",
    path: "/workspace/:id/artifacts/:artifactId",
    auth: "client",
    workspace: true,
    handler: async (rc): Promise<typeof HANDLED> => {
      requireOutboxEnabled(rc.server);
      const file = await openArtifact(ws(rc), rc.params.artifactId ?? "", await rc.server.protectedPaths());
      await checkViewerDownload(rc.actor!.scope === "viewer", file);
      await sendFile(rc.req, rc.res, file);
      return HANDLED;
    },
  },
  // ---- single-file convenience
  {
    method: "GET",
    path: "/workspace/:id/files/content",
    auth: "client",
    workspace: true,
    handler: async (rc) => json(await readContent(rc.server, ws(rc), rc.query.get("path") ?? "", { viewer: rc.actor!.scope === "viewer" })),
  },
  {
    method: "POST",
    path: "/workspace/:id/files/content",
    auth: "client",
    scope: "collaborator",
    gate: "approval",
    workspace: true,
    handler: async (rc) => planContentWrite(rc.server, ws(rc), await rc.readJson({ maxBytes: LIMITS.largeJsonBodyBytes })),
  },
  // ---- file sessions (create/renew/close are on the structural allow-list: not data writes)
  {
    method: "POST",
    path: "/workspace/:id/files/sessions",
    auth: "client",
    workspace: true,
    handler: async (rc) => {
      const body = await rc.readJson();
      const session = rc.server.sessions.create(ws(rc), rc.actor!, { ttlSeconds: body.ttlSeconds, write: body.write });
      return json({ session: sessionView(session) });
    },
  },
  {
    method: "POST",
    path: "/files/sessions/:sessionId/renew",
    auth: "client",
    handler: async (rc) => {
      const body = await rc.readJson();
      requireSession(rc.server, rc.params.sessionId ?? "", rc.actor, rc.mount);
      const session = rc.server.sessions.renew(rc.params.sessionId ?? "", rc.actor, body.ttlSeconds);
      return json({ session: sessionView(session) });
    },
  },
  {
    method: "DELETE",
    path: "/files/sessions/:sessionId",
    auth: "client",
    handler: async (rc) => {
      requireSession(rc.server, rc.params.sessionId ?? "", rc.actor, rc.mount);
      rc.server.sessions.close(rc.params.sessionId ?? "", rc.actor);
      return json({ ok: true });
    },
  },
  {
    method: "POST",
    path: "/files/sessions/:sessionId/read-batch",
    auth: "client",
    handler: async (rc) => {
      const session = requireSession(rc.server, rc.params.sessionId ?? "", rc.actor, rc.mount);
      const body = await rc.readJson();
      return jsonText(await readBatchText(rc.server, rc.server.workspaces.resolve(session.workspaceId), body, { viewer: rc.actor!.scope === "viewer" }));
    },
  },
  {
    method: "POST",
    path: "/files/sessions/:sessionId/write-batch",
    auth: "client",
    scope: "collaborator",
    gate: "approval",
    handler: async (rc) => {
      const session = requireWritableSession(rc.server, rc.params.sessionId ?? "", rc.actor, rc.mount);
      const body = await rc.readJson({ maxBytes: LIMITS.largeJsonBodyBytes, liftStrings: true });
      const plan = await planWriteBatch(rc.server, rc.server.workspaces.resolve(session.workspaceId), body);
      // Large content now waits in staged files: the body's bytes leave the RAM budget.
      rc.bodyStaged();
      return plan;
    },
  },
  {
    method: "POST",
    path: "/files/sessions/:sessionId/ops",
    auth: "client",
    scope: "collaborator",
    gate: "approval",
    handler: async (rc) => {
      const session = requireWritableSession(rc.server, rc.params.sessionId ?? "", rc.actor, rc.mount);
      const body = await rc.readJson();
      return planOps(rc.server, rc.server.workspaces.resolve(session.workspaceId), body);
    },
  },
];
