// Actions the server takes on the workspace's OpenCode engine — MCP logout and Agent Lab
// automations — against a local fake engine (a real HTTP server on listen(0)).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startServer, firstApproval, readAuditLog } from "./helpers/server.ts";
import { startUpstream } from "./helpers/upstream.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

test("MCP logout: disconnect (best effort) then DELETE auth through the engine; 404 there = nothing stored = ok; errors mapped", async () => {
  const engine = await startUpstream();
  let authStatus = 204;
  engine.handle((req, res) => {
    const status = req.url?.startsWith("/mcp/gh/disconnect") ? 500 : req.url?.startsWith("/mcp/gh/auth") ? authStatus : 404;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "x" }));
  });
  const s = await startServer({ approval: "manual", env: { OPENWORK_OPENCODE_BASE_URL: engine.url } });
  try {
    const url = `/workspace/${s.workspaceId}/mcp/gh/auth`;
    const pending = s.request("DELETE", url);
    const approval = await firstApproval(s);
    assert.equal(approval.action, "mcp.auth.remove");
    assert.deepEqual(approval.risk, []);
    assert.ok(approval.paths[0].endsWith("/.config/opencode/mcp-auth.json"));
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.deepEqual((await pending).json, { ok: true });
    const calls = engine.requests.map((r) => `${r.method} ${r.url.split("?")[0]} ${r.headers["x-opencode-directory"]}`);
    assert.deepEqual(calls, [`POST /mcp/gh/disconnect ${s.workspace}`, `DELETE /mcp/gh/auth ${s.workspace}`]);
    assert.equal((await readAuditLog(s)).at(-1)!.action, "mcp.auth.remove");

    authStatus = 404;
    const p2 = s.request("DELETE", url);
    await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal((await p2).status, 200, "404 from the engine = no stored credentials");
    authStatus = 500;
    const p3 = s.request("DELETE", url);
    await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "allow" } });
    const failed = await p3;
    assert.equal(failed.status, 502);
    assert.equal(failed.json.code, "opencode_request_failed");
    assert.equal(failed.json.details.status, 500);
    assert.equal(failed.json.details.path, "/mcp/gh/auth");

    assert.equal((await s.request("DELETE", `/workspace/${s.workspaceId}/mcp/-bad/auth`)).json.code, "invalid_mcp_name");
    assert.equal((await s.request("DELETE", url, { token: await s.mintToken("viewer") })).status, 403);
  } finally {
    await s.close();
    await engine.close();
  }
  const bare = await startServer({ approval: "manual" });
  try {
    const res = await bare.request("DELETE", `/workspace/${bare.workspaceId}/mcp/gh/auth`);
    assert.equal(res.status, 400);
    assert.equal(res.json.code, "opencode_unconfigured", "checked before anybody is asked");
  } finally {
    await bare.close();
  }
});

test("Agent Lab: upsert (201), list, run creates a session with the prompt and records it, logs, delete; bad input changes nothing", async () => {
  const engine = await startUpstream();
  engine.handle((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(req.url?.startsWith("/session?") ? { id: "ses_1" } : true));
  });
  const s = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: engine.url } });
  const P = `/workspace/${s.workspaceId}/agentlab/automations`;
  try {
    assert.deepEqual((await s.request("GET", P)).json.items, []);
    const before = await snapshotTree(s.workspace);
    for (const body of [{ name: "", prompt: "p", schedule: { kind: "daily", hour: 1, minute: 2 } }, { name: "n", prompt: "p", schedule: { kind: "interval", seconds: 5 } }, { id: "bad id!", name: "n", prompt: "p", schedule: { kind: "daily", hour: 1, minute: 1 } }]) {
      const r = await s.request("POST", P, { json: body });
      assert.equal(r.json.code, "invalid_payload", JSON.stringify(body));
    }
    assert.deepEqual(await snapshotTree(s.workspace), before);
    const created = await s.request("POST", P, { json: { name: "Daily digest", prompt: "Summarize", schedule: { kind: "weekly", weekday: 2.7, hour: 9, minute: 30 } } });
    assert.equal(created.status, 201, created.text);
    const a = created.json.items[0];
    assert.match(a.id, /^agentlab_[0-9a-f]{32}$/);
    assert.deepEqual(a.schedule, { kind: "weekly", weekday: 2, hour: 9, minute: 30 });
    const ran = await s.request("POST", `${P}/${a.id}/run`);
    assert.equal(ran.status, 200, ran.text);
    assert.equal(ran.json.sessionId, "ses_1");
    assert.deepEqual(JSON.parse(engine.requests.at(-1)!.body.toString()), { parts: [{ type: "text", text: "Summarize" }] });
    const stored = JSON.parse(await readFile(join(s.workspace, ".opencode/openwork/agentlab/automations.json"), "utf8"));
    assert.equal(stored.items[0].lastRunSessionId, "ses_1");
    assert.equal((await readAuditLog(s)).at(-1)!.action, "agentlab.automations.run");
    await mkdir(join(s.workspace, ".opencode/openwork/agentlab/logs"), { recursive: true });
    await writeFile(join(s.workspace, `.opencode/openwork/agentlab/logs/${a.id}.log`), "ran\n");
    assert.deepEqual((await s.request("GET", `${P}/logs`)).json.items.map((l: any) => l.id), [a.id]);
    assert.deepEqual((await s.request("GET", `${P}/logs/${a.id}`)).json, { id: a.id, content: "ran\n" });
    assert.equal((await s.request("GET", `${P}/logs/nope`)).json.code, "log_not_found");
    assert.equal((await s.request("DELETE", `${P}/nope`)).json.code, "automation_not_found");
    assert.deepEqual((await s.request("DELETE", `${P}/${a.id}`)).json, { ok: true });
    assert.deepEqual((await s.request("GET", P)).json.items, []);
    assert.equal((await s.request("POST", P, { token: await s.mintToken("viewer"), json: {} })).status, 403);
  } finally {
    await s.close();
    await engine.close();
  }
});
