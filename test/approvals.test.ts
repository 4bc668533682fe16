// The approval gate, through a gated test route: allow, deny, timeout, cancel, caps, SSE, shutdown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { request } from "node:http";
import { firstApproval, pendingApprovals, readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { gatedRoute, GATED_FILE } from "./helpers/gated-route.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";

const start = (opts: Parameters<typeof startServer>[0] = {}) => startServer({ approval: "manual", extraRoutes: [gatedRoute], ...opts });
const gatedPath = (s: TestServer) => `/test/workspace/${s.workspaceId}/gated`;

const auditActions = async (s: TestServer) => (await readAuditLog(s)).map((e) => e.action);

test("auto mode applies at once and audits", async () => {
  const s = await start({ approval: "auto" });
  try {
    const res = await s.request("POST", gatedPath(s), { json: { text: "hello" } });
    assert.equal(res.status, 200);
    assert.equal(await readFile(join(s.workspace, GATED_FILE), "utf8"), "hello");
    assert.deepEqual(await auditActions(s), ["test.write"]);
  } finally {
    await s.close();
  }
});

test("manual: the write is held until the host allows it, then applied and audited", async () => {
  const s = await start();
  try {
    const held = s.request("POST", gatedPath(s), { json: { text: "allowed" }, headers: { "x-openwork-client-id": "laptop" } });
    const [item] = await waitFor(async () => ((await pendingApprovals(s)).length === 1 ? await pendingApprovals(s) : undefined), { what: "pending approval" });
    assert.equal(item!.action, "test.write");
    assert.equal(item!.workspaceId, s.workspaceId);
    assert.deepEqual(item!.change, { file: GATED_FILE, text: "allowed" });
    assert.deepEqual(item!.paths, [join(s.workspace, GATED_FILE)]);
    assert.equal((item!.actor as { clientId: string }).clientId, "laptop");
    assert.equal((item!.expiresAt as number) - (item!.createdAt as number), 30000);
    assert.ok(!existsSync(join(s.workspace, GATED_FILE)), "nothing written before approval");
    const reply = await s.request("POST", `/approvals/${item!.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.deepEqual(reply.json, { ok: true, allowed: true });
    const res = await held;
    assert.equal(res.status, 200);
    assert.equal(await readFile(join(s.workspace, GATED_FILE), "utf8"), "allowed");
    assert.deepEqual(await auditActions(s), ["test.write"]);
    const again = await s.request("POST", `/approvals/${item!.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal(again.status, 404);
    assert.equal(again.json.code, "approval_not_found");
  } finally {
    await s.close();
  }
});

test("deny (and any reply other than exactly \"allow\") → 403 write_denied, nothing written", async () => {
  const s = await start();
  try {
    for (const reply of ["deny", "ALLOW", "yes"]) {
      const held = s.request("POST", gatedPath(s), { json: { text: "x" } });
      const item = await firstApproval(s);
      const r = await s.request("POST", `/approvals/${item!.id}`, { token: null, host: true, json: { reply } });
      assert.deepEqual(r.json, { ok: true, allowed: false });
      const res = await held;
      assert.equal(res.status, 403);
      assert.deepEqual(res.json, { code: "write_denied", message: "Write request denied", details: { requestId: item!.id, reason: "denied" } });
    }
    assert.ok(!existsSync(join(s.workspace, GATED_FILE)));
    assert.deepEqual(await auditActions(s), ["approval.denied", "approval.denied", "approval.denied"]);
  } finally {
    await s.close();
  }
});

test("timeout → 403 write_denied reason timeout, audited", async () => {
  const s = await start({ approvalTimeoutMs: 200 });
  try {
    const res = await s.request("POST", gatedPath(s), { json: { text: "late" } });
    assert.equal(res.status, 403);
    assert.equal(res.json.details.reason, "timeout");
    assert.ok(!existsSync(join(s.workspace, GATED_FILE)));
    assert.deepEqual(await auditActions(s), ["approval.timeout"]);
    assert.equal((await pendingApprovals(s)).length, 0);
  } finally {
    await s.close();
  }
});

test("client disconnect cancels the approval; the write never runs", async () => {
  const s = await start();
  try {
    const feed = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    const body = JSON.stringify({ text: "gone" });
    const req = request(`${s.url}${gatedPath(s)}`, {
      method: "POST",
      headers: { authorization: `Bearer ${s.clientToken}`, "content-type": "application/json", "content-length": String(body.length) },
    });
    req.on("error", () => {});
    req.end(body);
    const item = await firstApproval(s);
    req.destroy();
    await waitFor(() => feed.events.some((e) => e.event === "approval.resolved"), { what: "resolved event" });
    const resolved = feed.events.find((e) => e.event === "approval.resolved")!;
    assert.deepEqual(JSON.parse(resolved.data), { id: item!.id, result: "cancelled" });
    assert.equal((await pendingApprovals(s)).length, 0);
    const reply = await s.request("POST", `/approvals/${item!.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal(reply.status, 404, "a cancelled approval cannot be allowed afterwards");
    await waitFor(async () => (await auditActions(s)).includes("approval.cancelled"));
    assert.ok(!existsSync(join(s.workspace, GATED_FILE)));
    feed.close();
  } finally {
    await s.close();
  }
});

test("SSE feed delivers approval.requested (with the item) and approval.resolved", async () => {
  const s = await start();
  try {
    const feed = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    assert.equal(feed.status, 200);
    assert.match(String(feed.headers["content-type"]), /^text\/event-stream/);
    const held = s.request("POST", gatedPath(s), { json: { text: "sse" } });
    await waitFor(() => feed.events.find((e) => e.event === "approval.requested"), { what: "requested event" });
    const requested = JSON.parse(feed.events.find((e) => e.event === "approval.requested")!.data);
    assert.equal(requested.action, "test.write");
    await s.request("POST", `/approvals/${requested.id}`, { token: null, host: true, json: { reply: "allow" } });
    await waitFor(() => feed.events.find((e) => e.event === "approval.resolved"));
    assert.deepEqual(JSON.parse(feed.events.find((e) => e.event === "approval.resolved")!.data), { id: requested.id, result: "allowed" });
    assert.equal((await held).status, 200);
    feed.close();
  } finally {
    await s.close();
  }
});

test("65th pending approval of a workspace → 429 at once", async () => {
  const s = await start();
  try {
    const held = Array.from({ length: 64 }, (_, i) => s.request("POST", gatedPath(s), { json: { text: String(i) } }));
    await waitFor(async () => (await pendingApprovals(s)).length === 64, { what: "64 pending", timeoutMs: 20000 });
    const extra = await s.request("POST", gatedPath(s), { json: { text: "65" } });
    assert.equal(extra.status, 429);
    assert.equal(extra.json.code, "too_many_pending_approvals");
    await s.close();
    const results = await Promise.all(held);
    assert.ok(results.every((r) => r.status === 403 && r.json.details.reason === "shutdown"), "shutdown denies pending writes");
    assert.ok(!existsSync(join(s.workspace, GATED_FILE)));
  } finally {
    await s.close();
  }
});

test("validation errors, viewer scope and read-only mode never create an approval", async () => {
  const s = await start();
  try {
    const feed = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    const bad = await s.request("POST", gatedPath(s), { json: { text: 42 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_payload");
    const viewer = await s.mintToken("viewer");
    const v = await s.request("POST", gatedPath(s), { token: viewer, json: { text: "v" } });
    assert.equal(v.status, 403);
    assert.equal(v.json.code, "forbidden");
    const nullBody = await s.request("POST", gatedPath(s), { body: "null", headers: { "content-type": "application/json" } });
    assert.equal(nullBody.json.code, "invalid_json");
    assert.equal(feed.events.length, 0);
    assert.equal((await pendingApprovals(s)).length, 0);
    feed.close();
  } finally {
    await s.close();
  }
  const ro = await start({ readOnly: true });
  try {
    const res = await ro.request("POST", gatedPath(ro), { json: { text: "ro" } });
    assert.equal(res.status, 403);
    assert.deepEqual(res.json, { code: "read_only", message: "Server is read-only" });
    // read-only answers before auth: even without a token
    assert.equal((await ro.request("POST", gatedPath(ro), { token: null, json: {} })).json.code, "read_only");
  } finally {
    await ro.close();
  }
});

test("a write whose audit record cannot be written is not applied (write-ahead) and answered 500", async () => {
  const s = await start({ approval: "auto" });
  try {
    // Make the audit file impossible to open: a directory where the file should be.
    await mkdir(join(s.dataDir, "audit", `${s.workspaceId}.jsonl`), { recursive: true });
    const res = await s.request("POST", gatedPath(s), { json: { text: "applied" } });
    assert.equal(res.status, 500);
    assert.deepEqual(res.json, { code: "internal_error", message: "Unexpected server error" });
    // The intent is recorded before anything changes: without it, nothing changes.
    await assert.rejects(stat(join(s.workspace, GATED_FILE)), "the write was not applied");
    assert.ok(s.logs.some((l) => l.level === "error"), "the failure is logged");
    assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
  } finally {
    await s.close();
  }
});
