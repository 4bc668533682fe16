/**
 * Security review regressions for the HTTP side: request pipeline, write-plan sequence and
 * shutdown, auth, proxy, SSE and the audit log.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { pendingApprovals, readAuditLog, startServer } from "./helpers/server.ts";
import { gatedRoute, GATED_FILE } from "./helpers/gated-route.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";

test("a write whose body is still arriving when shutdown starts is refused (never applied without its audit entry)", async () => {
  const s = await startServer({ approval: "auto", extraRoutes: [gatedRoute] });
  const body = JSON.stringify({ text: "late write" });
  let received = 0;
  const answer = new Promise<{ status: number; text: string }>((resolve) => {
    const req = request(new URL(`/test/workspace/${s.workspaceId}/gated`, s.url), {
      method: "POST",
      agent: false,
      headers: { authorization: `Bearer ${s.clientToken}`, "content-type": "application/json", "content-length": String(body.length) },
    }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", (err) => resolve({ status: -1, text: String(err) }));
    // Headers and half of the body now; the rest once shutdown has begun.
    req.write(body.slice(0, 5), () => (received = 1));
    void waitFor(() => received === 1 && s.context.closing, { what: "shutdown to begin" }).then(() => req.end(body.slice(5)));
  });
  try {
    await waitFor(() => received === 1, { what: "first body bytes" });
    const closing = s.server.close();
    const res = await answer;
    await closing;
    assert.equal(res.status, 503, res.text);
    assert.equal(JSON.parse(res.text).code, "service_unavailable");
    assert.equal(existsSync(join(s.workspace, GATED_FILE)), false, "nothing may be written once shutdown began");
    assert.equal(s.logs.filter((l) => l.level === "error").length, 0, JSON.stringify(s.logs.filter((l) => l.level === "error")));
  } finally {
    await s.close();
  }
});

test("revoking a token denies the writes it has waiting for approval (a revoked token's write never lands)", async () => {
  const s = await startServer({ approval: "manual", extraRoutes: [gatedRoute] });
  try {
    const token = await s.mintToken("collaborator", { label: "phone" });
    const id = (await s.request("GET", "/tokens", { token: null, host: true })).json.items[0].id as string;
    const held = s.request("POST", `/test/workspace/${s.workspaceId}/gated`, { token, json: { text: "from a revoked token" } });
    const pendingIds = async () => (await pendingApprovals(s)).map((i) => i.id);
    const [approvalId] = await waitFor(async () => ((await pendingIds()).length === 1 ? pendingIds() : undefined), { what: "pending approval" });
    assert.equal((await s.request("DELETE", `/tokens/${id}`, { token: null, host: true })).status, 200);
    // The host may still be looking at the request; allowing it must not apply a revoked token's write.
    await s.request("POST", `/approvals/${approvalId}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await held;
    assert.equal(res.status, 403, res.text);
    assert.equal(res.json.code, "write_denied");
    assert.equal(existsSync(join(s.workspace, GATED_FILE)), false);
    assert.deepEqual(await pendingIds(), []);
    assert.deepEqual((await readAuditLog(s)).map((e) => e.action), ["approval.denied"]);
  } finally {
    await s.close();
  }
});

test("a token that expires loses its open event streams, as a revoked one does", async () => {
  const s = await startServer();
  try {
    const token = await s.mintToken("collaborator", { ttlSeconds: 1.5 });
    const feed = await openSseClient(`${s.url}/workspace/${s.workspaceId}/events`, { authorization: `Bearer ${token}`, accept: "text/event-stream" });
    assert.equal(feed.status, 200);
    assert.equal(feed.closed, false);
    await waitFor(() => feed.closed, { timeoutMs: 10_000, what: "the expired token's stream to close" });
    // And the token itself is refused from now on.
    assert.equal((await s.request("GET", "/whoami", { token })).status, 401);
    feed.close();
  } finally {
    await s.close();
  }
});
