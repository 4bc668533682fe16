// Auth matrix: every route class × every kind of credential, plus the hostile auth inputs (section E).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, type TestServer } from "./helpers/server.ts";
import { rawRequest } from "./helpers/raw.ts";
import { waitFor } from "./helpers/wait.ts";
import { json, type RouteDef } from "../src/http/route.ts";

// A collaborator-scoped client route that writes nothing, to test scope checks in isolation.
const scopedRoute: RouteDef = {
  method: "GET",
  path: "/test/collaborator-only",
  auth: "client",
  scope: "collaborator",
  handler: async () => json({ ok: true }),
};

let s: TestServer;
const creds: Record<string, { token?: string | null; host?: boolean; headers?: Record<string, string> }> = {};

before(async () => {
  s = await startServer({ extraRoutes: [scopedRoute] });
  const viewer = await s.mintToken("viewer");
  const collaborator = await s.mintToken("collaborator");
  const owner = await s.mintToken("owner");
  const expiredOwner = await s.mintToken("owner", { ttlSeconds: 0.001 });
  const revokedOwner = await s.mintToken("owner", { label: "to revoke" });
  const list = await s.request("GET", "/tokens", { token: null, host: true });
  const revokeId = list.json.items.find((t: { label?: string }) => t.label === "to revoke").id;
  assert.equal((await s.request("DELETE", `/tokens/${revokeId}`, { token: null, host: true })).status, 200);
  await waitFor(() => Date.now() > list.json.items.find((t: { expiresAt?: number }) => t.expiresAt)!.expiresAt + 5);
  Object.assign(creds, {
    none: { token: null },
    wrong: { token: "not-a-token" },
    client: {},
    viewer: { token: viewer },
    collaborator: { token: collaborator },
    owner: { token: owner },
    host: { token: null, host: true },
    expired: { token: expiredOwner },
    revoked: { token: revokedOwner },
  });
});
after(() => s.close());

// expected status per credential for: none-route, client-route, collaborator-route, host-route
const matrix: Record<string, [number, number, number, number]> = {
  none: [200, 401, 401, 401],
  wrong: [200, 401, 401, 401],
  client: [200, 200, 200, 401],
  viewer: [200, 200, 403, 401],
  collaborator: [200, 200, 200, 401],
  owner: [200, 200, 200, 200],
  host: [200, 401, 401, 200],
  expired: [200, 401, 401, 401],
  revoked: [200, 401, 401, 401],
};
const paths = ["/health", "/status", "/test/collaborator-only", "/approvals"];

for (const [name, expected] of Object.entries(matrix)) {
  test(`auth matrix: ${name}`, async () => {
    for (let i = 0; i < paths.length; i++) {
      const res = await s.request("GET", paths[i]!, creds[name]!);
      assert.equal(res.status, expected[i], `${name} on ${paths[i]}: ${res.text}`);
      if (res.status === 401) {
        assert.equal(res.json.code, "unauthorized");
        assert.equal(res.headers["www-authenticate"], "Bearer");
        assert.equal(res.json.message, i === 3 ? "Invalid host token" : "Invalid bearer token");
      }
      if (res.status === 403) {
        assert.deepEqual(res.json, {
          code: "forbidden",
          message: "Insufficient token scope",
          details: { required: "collaborator", scope: "viewer" },
        });
      }
    }
  });
}

test("whoami reports the actor with the token hash and client id", async () => {
  const res = await s.request("GET", "/whoami", { headers: { "x-openwork-client-id": "phone-1" } });
  assert.equal(res.status, 200);
  assert.equal(res.json.actor.type, "remote");
  assert.equal(res.json.actor.scope, "collaborator");
  assert.match(res.json.actor.tokenHash, /^[0-9a-f]{64}$/);
  assert.equal(res.json.actor.clientId, "phone-1");
  const bad = await s.request("GET", "/whoami", { headers: { "x-openwork-client-id": "x".repeat(129) } });
  assert.equal(bad.json.actor.clientId, undefined, "over-long client ids are ignored");
});

test("A02: malformed Authorization headers are 401; the scheme is case-insensitive", async () => {
  const variants = ["Basic " + Buffer.from("a:b").toString("base64"), "Bearer", "Bearer ", `Bearer  ${s.clientToken}`, `Token ${s.clientToken}`];
  for (const value of variants) {
    const res = await s.request("GET", "/status", { token: null, headers: { authorization: value } });
    assert.equal(res.status, 401, value);
  }
  const lower = await s.request("GET", "/status", { token: null, headers: { authorization: `bearer ${s.clientToken}` } });
  assert.equal(lower.status, 200);
});

test("A03: tokens of odd lengths are 401, never 500", async () => {
  for (const token of ["x", "y".repeat(8192), s.clientToken + "x", s.clientToken.slice(0, -1)]) {
    const res = await s.request("GET", "/status", { token });
    assert.equal(res.status, 401);
  }
});

test("A07: a token in the query string is not accepted", async () => {
  for (const q of ["token", "access_token"]) {
    const res = await s.request("GET", `/status?${q}=${s.clientToken}`, { token: null });
    assert.equal(res.status, 401);
  }
});

test("A08: duplicate Authorization headers — Node keeps the first, never joins", async () => {
  const goodFirst = await rawRequest(s.url, `GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.clientToken}\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n`);
  assert.equal(goodFirst.status, 200);
  const badFirst = await rawRequest(s.url, `GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\nAuthorization: Bearer ${s.clientToken}\r\nConnection: close\r\n\r\n`);
  assert.equal(badFirst.status, 401);
});

test("A06: the host token is not a client token, and a client token is not a host token", async () => {
  assert.equal((await s.request("GET", "/status", { token: s.hostToken })).status, 401);
  const res = await s.request("GET", "/approvals", { token: null, headers: { "x-openwork-host-token": s.clientToken } });
  assert.equal(res.status, 401);
});

test("A10–A13: CORS with an allow-list echoes exact origins only; CORS is not authentication", async () => {
  const c = await startServer({ argv: ["--cors", "http://localhost:5173"] });
  try {
    const ok = await c.request("OPTIONS", "/status", { token: null, headers: { origin: "http://localhost:5173" } });
    assert.equal(ok.status, 204);
    assert.equal(ok.headers["access-control-allow-origin"], "http://localhost:5173");
    assert.equal(ok.headers["access-control-max-age"], "600");
    assert.equal(ok.headers["vary"], "Origin");
    assert.equal(ok.headers["access-control-allow-credentials"], undefined);
    for (const origin of ["https://evil.example", "null", "http://localhost:5173.evil.example", "http://evil-localhost:5173"]) {
      const res = await c.request("OPTIONS", "/status", { token: null, headers: { origin } });
      assert.equal(res.headers["access-control-allow-origin"], undefined, origin);
    }
    const noAuth = await c.request("GET", "/status", { token: null, headers: { origin: "http://localhost:5173" } });
    assert.equal(noAuth.status, 401);
    assert.equal(noAuth.headers["access-control-allow-origin"], "http://localhost:5173", "errors carry CORS headers too");
  } finally {
    await c.close();
  }
});

test("default CORS is * with the documented headers on every response", async () => {
  const res = await s.request("GET", "/nope");
  assert.equal(res.status, 404);
  assert.equal(res.headers["access-control-allow-origin"], "*");
  assert.equal(res.headers["access-control-allow-methods"], "GET,POST,PUT,PATCH,DELETE,OPTIONS");
  assert.equal(
    res.headers["access-control-allow-headers"],
    "Authorization, Content-Type, X-OpenWork-Host-Token, X-OpenWork-Client-Id, X-OpenCode-Directory",
  );
});

test("A17: no token or host token appears in any log line", async () => {
  await s.request("GET", `/status?token=${s.clientToken}`);
  await s.request("GET", "/approvals", { token: null, host: true });
  const text = JSON.stringify(s.logs);
  assert.ok(s.logs.length > 0);
  assert.ok(!text.includes(s.clientToken), "client token leaked into logs");
  assert.ok(!text.includes(s.hostToken), "host token leaked into logs");
  assert.ok(!text.includes("?token="), "query strings are stripped from logged paths");
});

test("A14: a loopback server refuses foreign Host names (DNS rebinding) with 421", async () => {
  for (const host of ["evil.example", "evil.example:8787", "127.0.0.1.evil.example"]) {
    const res = await rawRequest(s.url, `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 421, host);
    assert.match(res.body, /"code":"misdirected_request"/);
  }
  for (const host of ["localhost:1234", "127.0.0.1", "[::1]:80"]) {
    const res = await rawRequest(s.url, `GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 200, host);
  }
});

test("A09: brute force — past the per-minute limit failures get 429, while valid client and host tokens are always served", async () => {
  const b = await startServer();
  try {
    let last = 0;
    for (let i = 0; i < 125; i++) last = (await b.request("GET", "/status", { token: `guess-${i}` })).status;
    assert.equal(last, 429);
    const res = await b.request("GET", "/status", { token: "guess-again" });
    assert.equal(res.status, 429);
    assert.equal(res.json.code, "rate_limited");
    assert.ok(Number(res.headers["retry-after"]) > 0);
    // Anyone on the same address (any local process, a web page) cannot lock the host out.
    assert.equal((await b.request("GET", "/status")).status, 200, "the client token is served");
    assert.equal((await b.request("GET", "/approvals", { token: null, host: true })).status, 200, "the host token is served");
    assert.equal((await b.request("GET", "/health", { token: null })).status, 200, "unauthenticated routes keep working");
    assert.equal(b.logs.filter((l) => l.level === "warn").length, 1, "one warning, not one per attempt");
  } finally {
    await b.close();
  }
});
