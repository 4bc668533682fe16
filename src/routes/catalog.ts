// Route table: catalog snapshot and catalog events of a file session.
import { HANDLED, json } from "../http/route.ts";
import type { HandlerResult, RouteContext, RouteDef } from "../http/route.ts";
import { ApiError } from "../errors.ts";
import { boolParam, intParam, streamStart } from "../http/query.ts";
import { lastEventId, longPollFor, openSse, wantsSse } from "../http/sse.ts";
import { LIMITS } from "../limits.ts";
import { normalizeRelPath } from "../fs/paths.ts";
import { requireSession } from "../files/sessions.ts";
import type { Workspace } from "../types.ts";

function session(rc: RouteContext): { sessionId: string; ws: Workspace } {
  const sessionId = rc.params.sessionId ?? "";
  const s = requireSession(rc.server, sessionId, rc.actor, rc.mount);
  return { sessionId, ws: rc.server.workspaces.resolve(s.workspaceId) };
}

async function snapshot(rc: RouteContext): Promise<HandlerResult> {
  const { sessionId, ws } = session(rc);
  const rawPrefix = rc.query.get("prefix");
  // Same normalizer as every other path (traversal → 400); "" or "/" means the whole workspace.
  const prefix = rawPrefix === null || /^[\s/\\]*$/.test(rawPrefix) ? undefined : normalizeRelPath(rawPrefix);
  const after = rc.query.get("after");
  const limit = intParam(rc.query, "limit") ?? LIMITS.snapshotDefaultLimit;
  if (limit < 1) throw new ApiError("invalid_payload", "limit must be at least 1");
  const snap = await rc.server.catalogs.snapshot(ws, {
    prefix,
    after: after === null || after === "" ? undefined : after,
    limit: Math.min(limit, LIMITS.snapshotMaxLimit),
    includeDirs: boolParam(rc.query, "includeDirs", true),
    excludeHeavyDirectories: boolParam(rc.query, "excludeHeavyDirectories", false),
  });
  return json({ sessionId, workspaceId: ws.id, ...snap });
}

async function events(rc: RouteContext): Promise<HandlerResult> {
  const { sessionId, ws } = session(rc);
  const catalogs = rc.server.catalogs;
  // Events are recorded only while an index exists: make sure it does before reading.
  await catalogs.index(ws);
  const log = catalogs.log(ws.id);
  if (wantsSse(rc.req)) {
    const sse = openSse(rc);
    sse.follow(log, {
      start: streamStart(lastEventId(rc.req), rc.query),
      event: (e) => e.type,
      reset: (cursor) => ({ reset: true, cursor, workspaceId: ws.id, sessionId }),
      alive: () => catalogs.hasIndex(ws.id),
    });
    // A session that expires, is closed or revoked ends its streams too.
    const recheck = setInterval(() => {
      try {
        requireSession(rc.server, sessionId, rc.actor);
      } catch {
        sse.close();
      }
    }, LIMITS.sessionRecheckMs);
    recheck.unref();
    const unsubscribe = catalogs.onSessionEnd(sessionId, () => sse.close());
    sse.onClose(() => {
      clearInterval(recheck);
      unsubscribe();
    });
    return HANDLED;
  }
  const since = intParam(rc.query, "since") ?? 0;
  const page = await longPollFor(rc, log, since, () => !catalogs.hasIndex(ws.id));
  return json({ sessionId, workspaceId: ws.id, ...page });
}

export const routes: RouteDef[] = [
  { method: "GET", path: "/files/sessions/:sessionId/catalog/snapshot", auth: "client", handler: snapshot },
  { method: "GET", path: "/files/sessions/:sessionId/catalog/events", auth: "client", handler: events },
];
