// Runtime versions/upgrade through a local fake of the orchestrator's control endpoint.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, readAuditLog } from "./helpers/server.ts";
import { answerWithoutEnd, startUpstream } from "./helpers/upstream.ts";

const SNAPSHOT = {
  ok: true,
  orchestrator: { version: "0.18.1", startedAt: 1 },
  worker: { workspace: "/host/path", sandboxMode: "none" },
  upgrade: { status: "idle", startedAt: null, finishedAt: null, error: null, operationId: null, services: [] },
  services: [{ name: "openwork-server", enabled: true, running: true, source: "external", path: "/host/bin", actualVersion: "0.1.0", upgradeAvailable: false }],
};

test("versions: the control's snapshot with its bearer token; viewers without host paths; mounted; not configured → 501", async () => {
  const control = await startUpstream();
  control.handle((req, res) => {
    if (req.headers.authorization !== "Bearer control-secret") {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: false, error: "unauthorized" }));
      return;
    }
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(SNAPSHOT));
      return;
    }
    res.writeHead(202, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, started: true, services: ["openwork-server"], upgrade: { status: "running" } }));
  });
  const s = await startServer({ env: { OPENWORK_CONTROL_BASE_URL: `${control.url}/`, OPENWORK_CONTROL_TOKEN: " control-secret " } });
  try {
    const res = await s.request("GET", "/runtime/versions");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, SNAPSHOT);
    assert.equal(control.requests[0]!.url, "/runtime/versions");
    const viewer = await s.mintToken("viewer");
    const v = await s.request("GET", `/w/${s.workspaceId}/runtime/versions`, { token: viewer });
    assert.equal(v.status, 200);
    assert.equal(v.json.worker.workspace, undefined);
    assert.equal(v.json.services[0].path, undefined);
    assert.equal(v.json.services[0].name, "openwork-server");
    assert.ok(!v.text.includes("control-secret"));

    // Upgrade: host only, services validated, 202 with the control's answer, audited.
    assert.equal((await s.request("POST", "/runtime/upgrade", { json: {} })).status, 401);
    const bad = await s.request("POST", "/runtime/upgrade", { token: null, host: true, json: { services: "all" } });
    assert.equal(bad.json.code, "invalid_payload");
    const up = await s.request("POST", `/w/${s.workspaceId}/runtime/upgrade`, { token: null, host: true, json: { services: ["opencode"] } });
    assert.equal(up.status, 202, up.text);
    assert.deepEqual(up.json, { ok: true, started: true, services: ["openwork-server"], upgrade: { status: "running" } });
    assert.deepEqual(JSON.parse(control.requests.at(-1)!.body.toString()), { services: ["opencode"] });
    assert.equal((await readAuditLog(s)).at(-1)!.action, "runtime.upgrade");
  } finally {
    await s.close();
    await control.close();
  }
  const none = await startServer({});
  try {
    const res = await none.request("GET", "/runtime/versions");
    assert.equal(res.status, 501);
    assert.equal(res.json.code, "runtime_upgrade_unavailable");
    assert.equal((await none.request("GET", "/runtime/versions", { token: null })).status, 401, "auth first");
  } finally {
    await none.close();
  }
});

test("control failures: its status passed through with its body; silent or down → 502 runtime_control_unreachable; non-JSON → 502; read-only", async () => {
  const control = await startUpstream();
  control.handle((req, res) => {
    if (req.method === "POST") {
      res.writeHead(409, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: false, error: "upgrade_in_progress" }));
      return;
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>");
  });
  const s = await startServer({ env: { OPENWORK_CONTROL_BASE_URL: control.url, OPENWORK_CONTROL_TOKEN: "t" } });
  try {
    const busy = await s.request("POST", "/runtime/upgrade", { token: null, host: true, json: {} });
    assert.equal(busy.status, 409);
    assert.equal(busy.json.code, "runtime_upgrade_failed");
    assert.deepEqual(busy.json.details, { ok: false, error: "upgrade_in_progress" });
    const html = await s.request("GET", "/runtime/versions");
    assert.equal(html.status, 502);
    assert.equal(html.json.code, "runtime_upgrade_failed");
  } finally {
    await s.close();
    await control.close();
  }
  const down = await startServer({ env: { OPENWORK_CONTROL_BASE_URL: "http://127.0.0.1:9", OPENWORK_CONTROL_TOKEN: "t" } });
  try {
    const res = await down.request("GET", "/runtime/versions");
    assert.equal(res.status, 502);
    assert.equal(res.json.code, "runtime_control_unreachable");
  } finally {
    await down.close();
  }
  const ro = await startServer({ readOnly: true, env: { OPENWORK_CONTROL_BASE_URL: "http://127.0.0.1:9", OPENWORK_CONTROL_TOKEN: "t" } });
  try {
    assert.equal((await ro.request("POST", "/runtime/upgrade", { token: null, host: true, json: {} })).json.code, "read_only");
  } finally {
    await ro.close();
  }
});

test("a control endpoint that answers without end, or 50,000 levels deep: read up to 16 MiB, answered 502 runtime_upgrade_failed — never buffered whole, never a 500", async () => {
  const control = await startUpstream();
  const endless = answerWithoutEnd(control);
  const s = await startServer({ env: { OPENWORK_CONTROL_BASE_URL: `${control.url}/`, OPENWORK_CONTROL_TOKEN: "control-secret" } });
  try {
    const res = await s.request("GET", "/runtime/versions");
    assert.equal(res.status, 502, res.text);
    assert.equal(res.json.code, "runtime_upgrade_failed");
    assert.ok(endless.most() < 100 * 1024 * 1024, `the server stopped reading (${endless.most()} bytes sent)`);
  } finally {
    await s.close();
    await control.close();
  }
  const deep = await startUpstream();
  deep.handle((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"a":'.repeat(50_000) + "1" + "}".repeat(50_000));
  });
  const s2 = await startServer({ env: { OPENWORK_CONTROL_BASE_URL: `${deep.url}/`, OPENWORK_CONTROL_TOKEN: "control-secret" } });
  try {
    const res = await s2.request("GET", "/runtime/versions");
    assert.equal(res.status, 502, res.text);
    assert.equal(res.json.code, "runtime_upgrade_failed");
  } finally {
    await s2.close();
    await deep.close();
  }
});
