// Route table: issue 4 — catalog snapshot and catalog events of a file session.
import type { ServerResponse } from "node:http";
import { HANDLED, json } from "../http/route.ts";
import type { HandlerResult, RouteContext, RouteDef } from "../http/route.ts";
import { ApiError } from "../http/errors.ts";
import { lastEventId, openSse, wantsSse } from "../http/sse.ts";
import { LIMITS } from "../limits.ts";
import { normalizeRelPath } from "../fs/paths.ts";
import { getCatalogs, type Catalogs } from "../files/catalog.ts";
import { requireSession } from "../files/sessions.ts";
import type { Workspace } from "../types.ts";

const SNAPSHOT_DEFAULT_LIMIT = 2000;
const SNAPSHOT_MAX_LIMIT = 10_000;
/** Bytes queued on an SSE socket before we wait for it to drain (events stay in the shared ring meanwhile). */
const SSE_HIGH_WATER = 64 * 1024;
/** Events read from the ring per step of an SSE stream. */
const SSE_STEP = 500;
/** How often an open SSE stream re-checks that its session is still alive (expiry; ends are pushed). */
const SESSION_RECHECK_MS = 5_000;

function session(rc: RouteContext): { sessionId: string; ws: Workspace } {
  const sessionId = rc.params.sessionId ?? "";
  const s = requireSession(rc.server, sessionId, rc.actor);
  return { sessionId, ws: rc.server.workspaces.resolve(s.workspaceId) };
}

function intParam(rc: RouteContext, name: string): number | undefined {
  const raw = rc.query.get(name);
  if (raw === null || raw.trim() === "") return undefined;
  if (!/^\d{1,15}$/.test(raw.trim())) throw new ApiError(400, "invalid_payload", `${name} must be a non-negative integer`);
  return Number(raw.trim());
}

function boolParam(rc: RouteContext, name: string, dflt: boolean): boolean {
  const raw = rc.query.get(name);
  if (raw === null || raw.trim() === "") return dflt;
  const v = raw.trim().toLowerCase();
  if (v === "true" || v === "1" || v === "yes") return true;
  if (v === "false" || v === "0" || v === "no") return false;
  throw new ApiError(400, "invalid_payload", `${name} must be true or false`);
}

async function snapshot(rc: RouteContext): Promise<HandlerResult> {
  const { sessionId, ws } = session(rc);
  const rawPrefix = rc.query.get("prefix");
  // Same normalizer as every other path (traversal → 400); "" or "/" means the whole workspace.
  const prefix = rawPrefix === null || /^[\s/\\]*$/.test(rawPrefix) ? undefined : normalizeRelPath(rawPrefix);
  const after = rc.query.get("after");
  const limit = intParam(rc, "limit") ?? SNAPSHOT_DEFAULT_LIMIT;
  if (limit < 1) throw new ApiError(400, "invalid_payload", "limit must be at least 1");
  const snap = await getCatalogs(rc.server).snapshot(ws, {
    prefix,
    after: after === null || after === "" ? undefined : after,
    limit: Math.min(limit, SNAPSHOT_MAX_LIMIT),
    includeDirs: boolParam(rc, "includeDirs", true),
    excludeHeavyDirectories: boolParam(rc, "excludeHeavyDirectories", false),
  });
  return json({ sessionId, workspaceId: ws.id, ...snap });
}

async function events(rc: RouteContext): Promise<HandlerResult> {
  const { sessionId, ws } = session(rc);
  const catalogs = getCatalogs(rc.server);
  // Events are recorded only while an index exists: make sure it does before reading.
  await catalogs.index(ws);
  if (wantsSse(rc.req)) return stream(rc, catalogs, sessionId, ws);
  const since = intParam(rc, "since") ?? 0;
  const waitRaw = rc.query.get("wait");
  let waitS = 0;
  if (waitRaw !== null && waitRaw.trim() !== "") {
    const n = Number(waitRaw.trim());
    if (!/^\d+(\.\d+)?$/.test(waitRaw.trim()) || !Number.isFinite(n)) throw new ApiError(400, "invalid_payload", "wait must be a number of seconds");
    waitS = Math.min(n, LIMITS.longPollMaxSeconds);
  }
  const log = catalogs.log(ws.id);
  let page = log.read(since);
  const deadline = Date.now() + waitS * 1000;
  while (!page.reset && page.items.length === 0 && Date.now() < deadline && !rc.signal.aborted && !rc.server.closing && catalogs.hasIndex(ws.id)) {
    await log.wait(deadline - Date.now(), rc.signal);
    page = log.read(since);
  }
  return json({ sessionId, workspaceId: ws.id, ...page });
}

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** SSE: `id:` = seq, `event:` = type; resumes from Last-Event-ID (or ?since), else live. */
function stream(rc: RouteContext, catalogs: Catalogs, sessionId: string, ws: Workspace): HandlerResult {
  const log = catalogs.log(ws.id);
  const header = lastEventId(rc.req);
  let start: number | undefined;
  let bad = false;
  if (header !== undefined) {
    // Garbage or a cursor from another life of the server: the client must re-snapshot (W07).
    if (/^\d{1,15}$/.test(header)) start = Number(header);
    else bad = true;
  } else start = intParam(rc, "since");
  const sse = openSse(rc);
  const ac = new AbortController();
  sse.onClose(() => ac.abort());
  let last = log.seq;
  const reset = () => {
    last = log.seq;
    sse.send({ id: last, event: "reset", data: { reset: true, cursor: last, workspaceId: ws.id, sessionId } });
  };
  if (bad || (start !== undefined && log.read(start, 0).reset)) reset();
  else if (start !== undefined) last = start;

  // A session that expires, is closed or revoked ends its streams too.
  const recheck = setInterval(() => {
    try {
      requireSession(rc.server, sessionId, rc.actor);
      if (!catalogs.hasIndex(ws.id)) sse.close();
    } catch {
      sse.close();
    }
  }, SESSION_RECHECK_MS);
  recheck.unref();
  const unsubscribe = catalogs.onSessionEnd(sessionId, () => sse.close());
  sse.onClose(() => {
    clearInterval(recheck);
    unsubscribe();
  });

  const pump = async () => {
    while (!sse.closed) {
      if (!catalogs.hasIndex(ws.id)) {
        sse.close();
        break;
      }
      const page = log.read(last, SSE_STEP);
      // A client that fell behind the ring (slow reader) gets a reset instead of a growing queue.
      if (page.reset) {
        reset();
        continue;
      }
      for (const ev of page.items) {
        if (rc.res.writableLength > SSE_HIGH_WATER) await drained(rc.res, ac.signal);
        if (sse.closed || !sse.send({ id: ev.seq, event: ev.type, data: ev })) break;
        last = ev.seq;
      }
      if (page.items.length === 0) await log.wait(LIMITS.sseHeartbeatMs, ac.signal);
    }
  };
  pump().catch((err) => {
    rc.server.log.warn("catalog event stream failed", { error: String(err) });
    sse.close();
  });
  return HANDLED;
}

export const routes: RouteDef[] = [
  {
    method: "GET",
    path: "/files/sessions/:sessionId/catalog/snapshot",
    auth: "client",
    handler: snapshot,
  },
  {
    method: "GET",
    path: "/files/sessions/:sessionId/catalog/events",
    auth: "client",
    handler: events,
  },
];
