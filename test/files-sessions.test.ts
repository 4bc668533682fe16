/** File sessions: create/renew/close, ownership, caps without eviction, expiry, revocation. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { startServer } from "./helpers/server.ts";
import { FileSessions, ttlFromSeconds } from "../src/files/sessions.ts";
import { ApiError } from "../src/errors.ts";
import type { ServerContext } from "../src/context.ts";
import type { Actor, Workspace } from "../src/types.ts";

test("sessions over HTTP: create, renew, close, ownership and scopes", async () => {
  const s = await startServer({ files: { "a.txt": "a" } });
  try {
    const base = `/workspace/${s.workspaceId}/files/sessions`;
    // empty body = {}
    const c = await s.request("POST", base);
    assert.equal(c.status, 200, c.text);
    const sess = c.json.session;
    assert.deepEqual(Object.keys(sess).sort(), ["canWrite", "createdAt", "expiresAt", "id", "ttlMs", "workspaceId"]);
    assert.equal(sess.workspaceId, s.workspaceId);
    assert.equal(sess.ttlMs, 900_000);
    assert.equal(sess.canWrite, true);
    assert.equal(sess.expiresAt - sess.createdAt, 900_000);

    // TTL clamps
    assert.equal((await s.request("POST", base, { json: { ttlSeconds: 1 } })).json.session.ttlMs, 30_000);
    assert.equal((await s.request("POST", base, { json: { ttlSeconds: 10 ** 9 } })).json.session.ttlMs, 86_400_000);
    assert.equal((await s.request("POST", base, { json: { ttlSeconds: "x" } })).json.code, "invalid_payload");
    assert.equal((await s.request("POST", base, { json: { write: false } })).json.session.canWrite, false);

    // a viewer silently gets a read-only session and cannot write through it
    const viewer = await s.mintToken("viewer");
    const v = await s.request("POST", base, { token: viewer, json: { write: true } });
    assert.equal(v.status, 200);
    assert.equal(v.json.session.canWrite, false);
    const vr = await s.request("POST", `/files/sessions/${v.json.session.id}/read-batch`, { token: viewer, json: { paths: ["a.txt"] } });
    assert.equal(vr.status, 200);
    assert.equal(vr.json.items[0].ok, true);
    const vw = await s.request("POST", `/files/sessions/${v.json.session.id}/write-batch`, { token: viewer, json: { writes: [{ path: "a.txt", contentBase64: "" }] } });
    assert.equal(vw.status, 403);

    // a read session of a collaborator cannot write either
    const ro = (await s.request("POST", base, { json: { write: false } })).json.session.id;
    const row = await s.request("POST", `/files/sessions/${ro}/write-batch`, { json: { writes: [{ path: "a.txt", contentBase64: "" }] } });
    assert.equal(row.status, 403);
    assert.equal(row.json.code, "forbidden");

    // another token → 403, unknown → 404
    const other = await s.mintToken("collaborator");
    for (const [method, path, json] of [
      ["POST", `/files/sessions/${sess.id}/renew`, {}],
      ["POST", `/files/sessions/${sess.id}/read-batch`, { paths: ["a.txt"] }],
      ["DELETE", `/files/sessions/${sess.id}`, undefined],
    ] as const) {
      const r = await s.request(method, path, { token: other, ...(json ? { json } : {}) });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.json.code, "forbidden");
      assert.equal(r.json.message, "File session does not belong to this token");
    }
    const unknown = await s.request("POST", `/files/sessions/00000000-0000-4000-8000-000000000000/renew`, { json: {} });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, "file_session_not_found");

    // renew
    const r = await s.request("POST", `/files/sessions/${sess.id}/renew`, { json: { ttlSeconds: 60 } });
    assert.equal(r.status, 200);
    assert.equal(r.json.session.ttlMs, 60_000);
    assert.ok(r.json.session.expiresAt >= sess.createdAt + 60_000);

    // close, then gone
    assert.deepEqual((await s.request("DELETE", `/files/sessions/${sess.id}`)).json, { ok: true });
    const gone = await s.request("POST", `/files/sessions/${sess.id}/read-batch`, { json: { paths: ["a.txt"] } });
    assert.equal(gone.status, 404);
    assert.equal(gone.json.code, "file_session_not_found");

    // no token at all
    assert.equal((await s.request("POST", base, { token: null })).status, 401);
  } finally {
    await s.close();
  }
});

test("per-token cap: the 33rd session is refused and nobody else's session is evicted", async () => {
  const s = await startServer();
  try {
    const base = `/workspace/${s.workspaceId}/files/sessions`;
    const other = await s.mintToken("collaborator");
    const otherSession = (await s.request("POST", base, { token: other })).json.session.id;
    const mine: string[] = [];
    // one already exists for `other`; the client token gets 32
    for (let i = 0; i < 32; i++) {
      const r = await s.request("POST", base);
      assert.equal(r.status, 200, `session ${i}`);
      mine.push(r.json.session.id);
    }
    const over = await s.request("POST", base);
    assert.equal(over.status, 429);
    assert.equal(over.json.code, "too_many_sessions");
    // every earlier session still works, including the other token's
    const first = await s.request("POST", `/files/sessions/${mine[0]}/renew`, { json: {} });
    assert.equal(first.status, 200);
    const o = await s.request("POST", `/files/sessions/${otherSession}/renew`, { token: other, json: {} });
    assert.equal(o.status, 200);
    // the other token can still open sessions
    assert.equal((await s.request("POST", base, { token: other })).status, 200);
    // closing one frees a slot
    await s.request("DELETE", `/files/sessions/${mine[0]}`);
    assert.equal((await s.request("POST", base)).status, 200);
  } finally {
    await s.close();
  }
});

test("sessions of a revoked token end at once", async () => {
  const s = await startServer();
  try {
    const mint = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "collaborator" } });
    assert.equal(mint.status, 201);
    const tok = mint.json.token as string;
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token: tok })).json.session.id;
    const keep = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`)).json.session.id;
    const rv = await s.request("DELETE", `/tokens/${mint.json.id}`, { token: null, host: true });
    assert.equal(rv.status, 200, rv.text);
    // the session is gone (the token itself is refused too)
    assert.equal((await s.request("POST", `/files/sessions/${sid}/renew`, { token: tok, json: {} })).status, 401);
    const sessions = s.context.sessions;
    assert.throws(() => sessions.require(sid, null), (e: unknown) => e instanceof ApiError && e.code === "file_session_not_found");
    // the client token's session is untouched
    assert.equal((await s.request("POST", `/files/sessions/${keep}/renew`, { json: {} })).status, 200);
  } finally {
    await s.close();
  }
});

function fakeServer(readOnly = false): ServerContext {
  return { bus: new EventEmitter(), config: { readOnly } } as unknown as ServerContext;
}

const ws = { id: "ws_1", path: "/tmp/x" } as Workspace;
const actor = (tokenHash: string, scope: Actor["scope"] = "collaborator"): Actor => ({ type: "remote", scope, tokenHash });

test("registry: lazy expiry, workspace-idle, global cap, read-only server", () => {
  let now = 1_000_000;
  const server = fakeServer();
  const reg = new FileSessions(server, () => now);
  try {
    const idle: string[] = [];
    reg.on("workspace-idle", (id) => idle.push(id));
    const a = reg.create(ws, actor("h1"), { ttlSeconds: 30 });
    const b = reg.create(ws, actor("h2"), { ttlSeconds: 60 });
    assert.equal(reg.countForWorkspace("ws_1"), 2);
    now += 30_000;
    assert.throws(() => reg.require(a.id, actor("h1")), (e: unknown) => e instanceof ApiError && e.code === "file_session_not_found");
    assert.deepEqual(idle, []);
    assert.equal(reg.countForWorkspace("ws_1"), 1);
    // renew pushes the expiry from now
    const renewed = reg.renew(b.id, actor("h2"), 120);
    assert.equal(renewed.expiresAt, now + 120_000);
    now += 119_999;
    assert.equal(reg.require(b.id, actor("h2")).id, b.id);
    now += 1;
    reg.purgeExpired();
    assert.deepEqual(idle, ["ws_1"]);
    assert.equal(reg.size, 0);

    // revocation through the bus
    const c = reg.create(ws, actor("h3"), {});
    server.bus.emit("token.revoked", "h3");
    assert.throws(() => reg.require(c.id, actor("h3")), ApiError);
    assert.deepEqual(idle, ["ws_1", "ws_1"]);

    // global cap: 1024 across tokens, never evicting
    for (let i = 0; i < 1024; i++) reg.create(ws, actor(`t${i % 40}`), {});
    assert.throws(() => reg.create(ws, actor("new"), {}), (e: unknown) => e instanceof ApiError && e.status === 429 && e.code === "too_many_sessions");
    assert.equal(reg.size, 1024);
  } finally {
    reg.close();
  }
  const ro = new FileSessions(fakeServer(true), () => now);
  try {
    assert.equal(ro.create(ws, actor("h"), {}).canWrite, false);
    assert.equal(ro.create(ws, actor("h", "owner"), { write: true }).canWrite, false);
  } finally {
    ro.close();
  }
  assert.equal(ttlFromSeconds(undefined), 900_000);
  assert.equal(ttlFromSeconds(0), 30_000);
});
