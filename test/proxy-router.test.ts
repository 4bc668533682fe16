// OpenCode Router proxy: the auth table (one test per row), mounted form, unconfigured and
// unreachable answers, forwarding rules.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";
import { rawExchange } from "./helpers/http-call.ts";
import { freePort } from "./helpers/ports.ts";

let up: TestUpstream;
let s: TestServer;
let viewer: string;
let collaborator: string;
let owner: string;

before(async () => {
  up = await startUpstream();
  s = await startServer({ env: { OPENCODE_ROUTER_HEALTH_PORT: String(up.port) } });
  viewer = await s.mintToken("viewer");
  collaborator = await s.mintToken("collaborator");
  owner = await s.mintToken("owner");
});

after(async () => {
  await s.close();
  await up.close();
});

function lastPath(): string {
  return up.requests[up.requests.length - 1]!.url;
}

test("row 1: GET /opencode-router/health → any client scope", async () => {
  for (const token of [viewer, collaborator, owner, s.clientToken]) {
    const res = await s.request("GET", "/opencode-router/health", { token });
    assert.equal(res.status, 200);
    assert.equal(lastPath(), "/health");
  }
  assert.equal((await s.request("HEAD", "/opencode-router/health", { token: viewer })).status, 200);
  assert.equal((await s.request("GET", "/opencode-router/health", { token: null })).status, 401);
  assert.equal((await s.request("GET", "/opencode-router/health", { token: "nope" })).status, 401);
});

test("row 2: GET /opencode-router (root) → any client scope", async () => {
  const res = await s.request("GET", "/opencode-router", { token: viewer });
  assert.equal(res.status, 200);
  assert.equal(lastPath(), "/");
  assert.equal((await s.request("GET", "/opencode-router", { token: null })).status, 401);
});

test("row 3: GET /opencode-router/bindings → collaborator", async () => {
  const denied = await s.request("GET", "/opencode-router/bindings", { token: viewer });
  assert.equal(denied.status, 403);
  assert.equal(denied.json.code, "forbidden");
  assert.deepEqual(denied.json.details, { required: "collaborator", scope: "viewer" });
  assert.equal((await s.request("GET", "/opencode-router/bindings?chat=1", { token: collaborator })).status, 200);
  assert.equal(lastPath(), "/bindings?chat=1");
  assert.equal((await s.request("GET", "/opencode-router/bindings", { token: owner })).status, 200);
});

test("row 4: GET /opencode-router/identities/* → collaborator", async () => {
  const count0 = up.requests.length;
  assert.equal((await s.request("GET", "/opencode-router/identities/telegram", { token: viewer })).status, 403);
  assert.equal(up.requests.length, count0, "refused before upstream");
  assert.equal((await s.request("GET", "/opencode-router/identities/telegram", { token: collaborator })).status, 200);
  assert.equal(lastPath(), "/identities/telegram");
  assert.equal((await s.request("GET", "/opencode-router/identities/slack/abc", { token: s.clientToken })).status, 200);
  assert.equal(lastPath(), "/identities/slack/abc");
});

test("row 5: everything else → host (host token or owner bearer)", async () => {
  const cases: Array<[string, string]> = [
    ["POST", "/opencode-router/bindings"],
    ["POST", "/opencode-router/identities/telegram"],
    ["DELETE", "/opencode-router/bindings/b1"],
    ["GET", "/opencode-router/config"],
    ["POST", "/opencode-router/health"],
    ["PUT", "/opencode-router"],
  ];
  for (const [method, path] of cases) {
    const count0 = up.requests.length;
    for (const token of [viewer, collaborator, s.clientToken]) {
      const res = await s.request(method, path, { token, json: method === "GET" ? undefined : {} });
      assert.equal(res.status, 401, `${method} ${path} with a non-owner bearer`);
      assert.equal(res.json.code, "unauthorized");
    }
    assert.equal(up.requests.length, count0, "never forwarded without host rights");
    assert.equal((await s.request(method, path, { token: null, host: true, json: method === "GET" ? undefined : {} })).status, 200, `${method} ${path} host`);
    assert.equal((await s.request(method, path, { token: owner, json: method === "GET" ? undefined : {} })).status, 200, `${method} ${path} owner`);
    assert.equal(up.requests[up.requests.length - 1]!.method, method);
  }
});

test("forwarding: no auth or directory header added, our credentials stripped, body passed", async () => {
  const res = await s.request("POST", "/opencode-router/bindings", { token: null, host: true, json: { chat: "c1" }, headers: { "x-opencode-directory": "/etc" } });
  assert.equal(res.status, 200);
  const r = up.requests[up.requests.length - 1]!;
  assert.equal(r.headers.authorization, undefined);
  assert.equal(r.headers["x-openwork-host-token"], undefined);
  assert.equal(r.headers["x-opencode-directory"], "/etc", "the router proxy adds no directory (passes the client's)");
  assert.equal(r.url, "/bindings");
  assert.deepEqual(JSON.parse(r.body.toString()), { chat: "c1" });
  assert.equal(r.headers["x-forwarded-for"], "127.0.0.1");
});

test("the host's writes through the router proxy are audited (method and path, never the body); reads are not", async () => {
  const secret = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr";
  const before = (await readAuditLog(s, s.workspaceId, true)).length;
  const res = await s.request("POST", "/opencode-router/identities/telegram?token=query-secret", { token: null, host: true, json: { token: secret } });
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(up.requests[up.requests.length - 1]!.body.toString()).token, secret, "the body still reaches the router");
  const entries = (await readAuditLog(s, s.workspaceId, true)).slice(before);
  const intent = entries.find((e) => e.action === "opencodeRouter.request" && e.phase === "intent");
  assert.ok(intent, JSON.stringify(entries));
  assert.deepEqual(intent.change, { method: "POST", path: "/identities/telegram" });
  assert.ok(entries.some((e) => e.action === "opencodeRouter.request" && e.phase === "outcome" && /router answered 200/.test(e.summary)), JSON.stringify(entries));
  assert.ok(!JSON.stringify(entries).includes(secret) && !JSON.stringify(entries).includes("query-secret"), "no token in the audit log");
  // A read of the same class leaves no audit line.
  const count = (await readAuditLog(s, s.workspaceId, true)).length;
  assert.equal((await s.request("GET", "/opencode-router/config", { token: null, host: true })).status, 200);
  assert.equal((await readAuditLog(s, s.workspaceId, true)).length, count);
});

test("mounted form /w/:id/opencode-router resolves and authorizes the workspace", async () => {
  assert.equal((await s.request("GET", `/w/${s.workspaceId}/opencode-router/health`, { token: viewer })).status, 200);
  assert.equal(lastPath(), "/health");
  assert.equal((await s.request("GET", `/w/${s.workspaceId}/opencode-router/identities/telegram`, { token: collaborator })).status, 200);
  assert.equal(lastPath(), "/identities/telegram");
  assert.equal((await s.request("GET", `/w/${s.workspaceId}/opencode-router/bindings`, { token: viewer })).status, 403);
  assert.equal((await s.request("POST", `/w/${s.workspaceId}/opencode-router/bindings`, { token: collaborator, json: {} })).status, 401);
  const unknown = await s.request("GET", "/w/ws_000000000000/opencode-router/health", { token: viewer });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.code, "workspace_not_found");
});

test("hostile paths → 400 invalid_path, no upstream request", async () => {
  const count0 = up.requests.length;
  for (const path of ["/opencode-router/%2e%2e/admin", "/opencode-router//evil.example/x", "/opencode-router/identities/%2e%2e"]) {
    // Raw bytes: a URL library would normalise the dot segments away before sending.
    const res = await rawExchange(s.url, `GET ${path} HTTP/1.1\r\nHost: ${new URL(s.url).host}\r\nAuthorization: Bearer ${owner}\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, path);
    assert.match(res.body, /"code":"invalid_path"/);
  }
  assert.equal(up.requests.length, count0);
});

test("unset port → 404 opencode_router_unconfigured, after auth", async () => {
  const bare = await startServer();
  try {
    assert.equal((await bare.request("GET", "/opencode-router/health", { token: null })).status, 401, "auth first");
    const res = await bare.request("GET", "/opencode-router/health");
    assert.equal(res.status, 404);
    assert.equal(res.json.code, "opencode_router_unconfigured");
    assert.equal((await bare.request("POST", "/opencode-router/bindings", { json: {} })).status, 401, "host rows still need the host");
  } finally {
    await bare.close();
  }
});

test("unreachable router → 503 opencode_router_unreachable", async () => {
  const port = await freePort();
  const down = await startServer({ env: { OPENCODE_ROUTER_HEALTH_PORT: String(port) } });
  try {
    const res = await down.request("GET", "/opencode-router/health");
    assert.equal(res.status, 503);
    assert.equal(res.json.code, "opencode_router_unreachable");
    assert.equal(res.json.details.cause, "ECONNREFUSED");
  } finally {
    await down.close();
  }
});

test("read-only mode: non-GET router requests → 403 read_only", async () => {
  const ro = await startServer({ readOnly: true, env: { OPENCODE_ROUTER_HEALTH_PORT: String(up.port) } });
  try {
    const count0 = up.requests.length;
    const res = await ro.request("POST", "/opencode-router/bindings", { token: null, host: true, json: {} });
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "read_only");
    assert.equal(up.requests.length, count0);
    assert.equal((await ro.request("GET", "/opencode-router/health")).status, 200);
  } finally {
    await ro.close();
  }
});
