// OpenCode proxy over HTTP against a recording test upstream: header rules, directory, base path,
// auth rules, read-only mode, failure mapping and the hostile inputs of section G.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import type { AddressInfo } from "node:net";
import { startServer, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";
import { call, rawExchange } from "./helpers/http-call.ts";
import { waitFor } from "./helpers/wait.ts";
import { freePort } from "./helpers/ports.ts";

let up: TestUpstream;
let s: TestServer;
let viewer: string;
let owner: string;
const basic = "Basic " + Buffer.from("oc-user:oc-pass").toString("base64");

before(async () => {
  up = await startUpstream();
  s = await startServer({
    env: { OPENWORK_OPENCODE_BASE_URL: `${up.url}/base/`, OPENWORK_OPENCODE_USERNAME: "oc-user", OPENWORK_OPENCODE_PASSWORD: "oc-pass" },
  });
  viewer = await s.mintToken("viewer");
  owner = await s.mintToken("owner");
});

after(async () => {
  await s.close();
  await up.close();
});

function last() {
  const r = up.requests[up.requests.length - 1];
  assert.ok(r, "upstream received a request");
  return r;
}

test("forwards with a fresh header set: ours added, hop-by-hop, credentials and client forwarding headers stripped", async () => {
  up.requests.length = 0;
  const res = await s.request("GET", "/opencode/session?limit=5&directory=/etc", {
    headers: {
      "x-opencode-directory": "/etc",
      connection: "x-foo",
      "x-foo": "secret",
      "x-keep": "yes",
      "keep-alive": "timeout=5",
      "proxy-authorization": "Basic eHg6eXk=",
      "proxy-connection": "keep-alive",
      cookie: "sid=1",
      origin: "http://evil.example",
      "x-openwork-client-id": "phone",
      "x-openwork-host-token": s.hostToken,
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-host": "evil.example",
      "x-forwarded-proto": "https",
      accept: "application/json",
    },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers["access-control-allow-origin"], "*", "proxied responses carry our CORS headers");
  const r = last();
  const url = new URL(r.url, "http://x");
  assert.equal(url.pathname, "/base/session", "base path kept");
  assert.equal(url.searchParams.get("limit"), "5");
  assert.deepEqual(url.searchParams.getAll("directory"), [s.workspace], "directory query replaced, not appended");
  const h = r.headers;
  assert.equal(h["x-opencode-directory"], s.workspace, "directory header is always ours");
  assert.equal(h.authorization, basic, "upstream credentials, never the client's bearer");
  assert.equal(h["x-keep"], "yes");
  assert.equal(h.accept, "application/json");
  for (const name of ["x-foo", "keep-alive", "proxy-authorization", "proxy-connection", "cookie", "origin", "x-openwork-client-id", "x-openwork-host-token", "te", "trailer", "upgrade"]) {
    assert.equal(h[name], undefined, `${name} must not be forwarded`);
  }
  assert.equal(h["x-forwarded-for"], "127.0.0.1");
  assert.equal(h["x-forwarded-proto"], "http");
  assert.equal(h["x-forwarded-host"], new URL(s.url).host);
  assert.ok(!JSON.stringify(r.rawHeaders).includes(s.clientToken), "client token never reaches upstream");
  assert.ok(!JSON.stringify(r.rawHeaders).includes(s.hostToken), "host token never reaches upstream");
});

test("/opencode and /w/:id/opencode reach the same upstream base; POST bodies pass through", async () => {
  up.requests.length = 0;
  assert.equal((await s.request("GET", "/opencode")).status, 200);
  assert.equal(new URL(last().url, "http://x").pathname, "/base/");
  const res = await s.request("POST", `/w/${s.workspaceId}/opencode/session`, { json: { title: "hello" } });
  assert.equal(res.status, 200);
  assert.equal(last().method, "POST");
  assert.equal(new URL(last().url, "http://x").pathname, "/base/session");
  assert.deepEqual(JSON.parse(last().body.toString()), { title: "hello" });
  assert.equal(last().headers["content-type"], "application/json");
  assert.equal((await s.request("GET", "/w/ws_000000000000/opencode/config")).json.code, "workspace_not_found");
  assert.equal((await s.request("GET", "/opencodex")).status, 404);
});

test("upstream status, headers and compressed bytes pass unchanged; cookies dropped; Location rewritten", async () => {
  const payload = Buffer.from(JSON.stringify({ big: "x".repeat(50_000) }));
  const gz = gzipSync(payload);
  up.handle((_req, res) => {
    res.writeHead(201, {
      "content-type": "application/json",
      "content-encoding": "gzip",
      "content-length": gz.length,
      "x-upstream": "1",
      "set-cookie": "upstream=1; Path=/",
      location: `${up.url}/base/session/abc?x=1`,
      connection: "x-private",
      "x-private": "hidden",
      "access-control-allow-origin": "http://evil.example",
    });
    res.end(gz);
  });
  try {
    const res = await call(`${s.url}/w/${s.workspaceId}/opencode/session`, { token: s.clientToken, headers: { "accept-encoding": "gzip" } });
    assert.equal(res.status, 201);
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.equal(res.headers["content-length"], String(gz.length));
    assert.ok(res.body.equals(gz), "compressed body is byte-identical");
    assert.equal(res.headers["x-upstream"], "1");
    assert.equal(res.headers["set-cookie"], undefined);
    assert.equal(res.headers["x-private"], undefined, "headers named in upstream Connection are dropped");
    assert.equal(res.headers["access-control-allow-origin"], "*", "our CORS policy wins");
    assert.equal(res.headers.location, `/w/${s.workspaceId}/opencode/session/abc?x=1`, "internal address not leaked");
  } finally {
    up.handle((req, res) => {
      const body = JSON.stringify({ ok: true, method: req.method, url: req.url });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
    });
  }
});

test("scopes: viewers read only; permission replies need owner (both path shapes); owner is forwarded", async () => {
  up.requests.length = 0;
  assert.equal((await s.request("GET", "/opencode/session", { token: viewer })).status, 200);
  assert.equal((await s.request("HEAD", "/opencode/session", { token: viewer })).status, 200);
  const denied = await s.request("POST", "/opencode/session", { token: viewer, json: {} });
  assert.equal(denied.status, 403);
  assert.equal(denied.json.code, "forbidden");
  assert.equal(denied.json.message, "Viewer tokens are read-only");
  assert.equal((await s.request("DELETE", "/opencode/session/s1", { token: viewer })).status, 403);
  assert.equal(up.requests.length, 2, "refused requests never reach upstream");

  const paths = [
    "/opencode/permission/per_1/reply",
    "/opencode/session/ses_1/permissions/per_1",
    `/w/${s.workspaceId}/opencode/session/ses_1/permissions/per_1/`,
    // Percent-encoded letters decode to the same engine route: still owner-only.
    "/opencode/%70ermission/per_1/repl%79",
    "/opencode/session/ses_1/permission%73/per_1",
  ];
  for (const path of paths) {
    const count0: number = up.requests.length;
    const collab = await s.request("POST", path, { json: { reply: "always" } });
    assert.equal(collab.status, 403, path);
    assert.equal(collab.json.code, "forbidden");
    assert.equal(up.requests.length, count0);
    const byOwner = await s.request("POST", path, { token: owner, json: { reply: "always" } });
    assert.equal(byOwner.status, 200, path);
    assert.equal(up.requests.length, count0 + 1);
    assert.equal(last().method, "POST");
  }
  // Reading a permission path is fine for collaborators.
  assert.equal((await s.request("GET", "/opencode/session/ses_1/permissions/per_1")).status, 200);
  // The host token alone does not open client routes.
  assert.equal((await s.request("GET", "/opencode/config", { token: null, host: true })).status, 401);
  assert.equal((await s.request("GET", "/opencode/config", { token: null })).status, 401);
});

test("read-only mode: non-GET/HEAD proxy requests and session deletion answer 403 read_only", async () => {
  const ro = await startServer({ readOnly: true, env: { OPENWORK_OPENCODE_BASE_URL: up.url } });
  try {
    up.requests.length = 0;
    const res = await ro.request("POST", "/opencode/session", { json: {} });
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "read_only");
    assert.equal((await ro.request("DELETE", `/workspace/${ro.workspaceId}/sessions/ses_1`)).json.code, "read_only");
    assert.equal(up.requests.length, 0);
    assert.equal((await ro.request("GET", "/opencode/config")).status, 200);
  } finally {
    await ro.close();
  }
});

test("a token in the query string is never forwarded upstream; other parameters are", async () => {
  up.requests.length = 0;
  assert.equal((await s.request("GET", `/opencode/session?limit=5&token=${s.clientToken}`)).status, 200);
  const url = new URL(last().url, "http://x");
  assert.equal(url.searchParams.get("token"), null);
  assert.equal(url.searchParams.get("limit"), "5");
  assert.ok(!last().url.includes(s.clientToken));
});

test("no base URL → 400 opencode_unconfigured", async () => {
  const bare = await startServer();
  try {
    const res = await bare.request("GET", "/opencode/config");
    assert.equal(res.status, 400);
    assert.equal(res.json.code, "opencode_unconfigured");
  } finally {
    await bare.close();
  }
});

test("non-ASCII directory is percent-encoded in the header and exact in the query", async () => {
  const dir = "/tmp/répertoire ü";
  const other = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: up.url, OPENWORK_OPENCODE_DIRECTORY: dir } });
  try {
    up.requests.length = 0;
    assert.equal((await other.request("GET", "/opencode/config")).status, 200);
    assert.equal(last().headers["x-opencode-directory"], encodeURIComponent(dir));
    assert.equal(new URL(last().url, "http://x").searchParams.get("directory"), dir);
    assert.equal(last().headers.authorization, undefined, "no credentials configured → none sent");
  } finally {
    await other.close();
  }
});

test("X11: upstream refusing connections → 502 opencode_unreachable quickly, no stack", async () => {
  const port = await freePort();
  const down = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${port}` } });
  try {
    const t0 = Date.now();
    const res = await down.request("POST", "/opencode/session", { json: { a: 1 } });
    assert.ok(Date.now() - t0 < 3_000, "answered promptly");
    assert.equal(res.status, 502);
    assert.equal(res.json.code, "opencode_unreachable");
    assert.equal(res.json.message, "OpenCode engine is unavailable");
    assert.equal(res.json.details.cause, "ECONNREFUSED");
    assert.doesNotMatch(res.text, /\n\s+at /);
    assert.equal(res.headers["access-control-allow-origin"], "*");
    assert.equal((await down.request("GET", "/health", { token: null })).status, 200);
  } finally {
    await down.close();
  }
});

test("X12: upstream accepting but silent → 504 opencode_timeout (shortened), upstream socket destroyed", async () => {
  const silent = await startUpstream({ readBody: false });
  silent.handle(() => {
    /* never answers */
  });
  const srv = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: silent.url } });
  srv.context.proxy.headersTimeoutMs = 300;
  try {
    const res = await srv.request("GET", "/opencode/config");
    assert.equal(res.status, 504);
    assert.equal(res.json.code, "opencode_timeout");
    await waitFor(() => silent.sockets.size === 0, { what: "upstream socket closed" });
  } finally {
    await srv.close();
    await silent.close();
  }
});

test("X17: upstream sending Transfer-Encoding plus Content-Length → 502; server stays up", async () => {
  const bad = await rawUpstream("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  const srv = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${(bad.address() as AddressInfo).port}` } });
  try {
    const res = await srv.request("GET", "/opencode/config");
    assert.equal(res.status, 502);
    assert.equal(res.json.code, "opencode_unreachable");
    assert.equal((await srv.request("GET", "/health", { token: null })).status, 200);
  } finally {
    await srv.close();
    await new Promise<void>((r) => bad.close(() => r()));
  }
});

const host = () => new URL(s.url).host;
const auth = () => `Authorization: Bearer ${s.clientToken}\r\n`;

test("X01/X02: dot segments, encoded slashes and protocol-relative suffixes → 400 invalid_path, no upstream request", async () => {
  up.requests.length = 0;
  const targets = [
    "/opencode/%2e%2e/admin",
    "/opencode/%2E%2E/%2e%2E/admin",
    "/opencode/..%2f..%2fadmin",
    "/opencode/foo/..",
    "/opencode/foo/../../admin",
    "/opencode/./config",
    "/opencode/a%5c..%5cb",
    "/opencode/a%00b",
    "/opencode//169.254.169.254/latest",
    "/opencode//evil.example/x",
    `/w/${s.workspaceId}/opencode/%2e%2e/%2e%2e/x`,
    `/w/${s.workspaceId}/opencode//evil.example`,
  ];
  for (const t of targets) {
    const res = await rawExchange(s.url, `GET ${t} HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Connection: close\r\n\r\n`);
    assert.equal(res.status, 400, t);
    assert.match(res.body, /"code":"invalid_path"/, t);
  }
  assert.equal(up.requests.length, 0, "no upstream request for any of them");
  // Dots inside a name are not traversal (P13).
  assert.equal((await s.request("GET", "/opencode/file/do..ts.txt")).status, 200);
});

test("X03: an absolute-form target never chooses the upstream", async () => {
  up.requests.length = 0;
  const res = await rawExchange(s.url, `GET http://127.0.0.1:22/opencode/config HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Connection: close\r\n\r\n`);
  assert.equal(res.status, 400);
  assert.match(res.body, /"code":"invalid_path"/);
  assert.equal(up.requests.length, 0);
});

test("X06/X08: Trailer, TE, Keep-Alive, Proxy-* stripped without a throw; Connection cannot strip our headers", async () => {
  up.requests.length = 0;
  const res = await rawExchange(
    s.url,
    `GET /opencode/config HTTP/1.1\r\nHost: ${host()}\r\n${auth()}` +
      "Trailer: x-checksum\r\nTE: gzip\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n" +
      "Connection: close, authorization, x-forwarded-for, x-opencode-directory, x-forwarded-host\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
  );
  assert.equal(res.status, 200);
  const h = last().headers;
  for (const name of ["trailer", "te", "keep-alive", "proxy-authorization", "proxy-connection"]) assert.equal(h[name], undefined, name);
  assert.equal(h["x-forwarded-for"], "127.0.0.1", "added after the strip step");
  assert.equal(h["x-forwarded-host"], host());
  assert.equal(h["x-opencode-directory"], s.workspace);
  assert.equal(h.authorization, basic);

  // A POST with a body and Trailer/TE as well: still no crash.
  const post = await rawExchange(
    s.url,
    `POST /opencode/session HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Trailer: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\nx: 1\r\n\r\n`,
  );
  assert.equal(post.status, 200);
  assert.equal(last().body.toString(), "{}");
  assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
});

test("X10: Expect: 100-continue with a 10 KB body is forwarded, no crash", async () => {
  up.requests.length = 0;
  const body = "a".repeat(10_000);
  const res = await rawExchange(
    s.url,
    `POST /opencode/session HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Expect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
  assert.equal(res.status, 200);
  assert.equal(last().bodyBytes, 10_000);
  assert.equal(last().headers.expect, undefined, "the expectation was ours to answer");
});

test("X05: an Upgrade request to a plain HTTP upstream is not upgraded", async () => {
  const res = await rawExchange(
    s.url,
    `GET /opencode/config?token=${s.clientToken} HTTP/1.1\r\nHost: ${host()}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
  );
  assert.ok(!res.statuses.includes(101), "not switched");
  assert.equal(res.status, 200);
  assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
});

test("DELETE /workspace/:id/sessions/:sessionId → upstream DELETE /session/:id; failure → 502 opencode_request_failed", async () => {
  up.requests.length = 0;
  up.handle((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("true");
  });
  try {
    const ok = await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/ses_abc123`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { ok: true });
    const r = last();
    assert.equal(r.method, "DELETE");
    const url = new URL(r.url, "http://x");
    assert.equal(url.pathname, "/base/session/ses_abc123");
    assert.equal(url.searchParams.get("directory"), s.workspace);
    assert.equal(r.headers["x-opencode-directory"], s.workspace);
    assert.equal(r.headers.authorization, basic);

    up.handle((_req, res) => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ name: "NotFoundError", data: { message: "Session not found" } }));
    });
    const failed = await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/ses_missing`);
    assert.equal(failed.status, 502);
    assert.equal(failed.json.code, "opencode_request_failed");
    assert.equal(failed.json.details.status, 404);
    // The successful delete is audited; the failed one is not (nothing happened).
    const audit = (await s.request("GET", `/workspace/${s.workspaceId}/audit`)).json.items as Array<{ action: string; target: string }>;
    assert.deepEqual(audit.filter((e) => e.action === "engine.session.delete").map((e) => e.target), ["ses_abc123"]);
    assert.equal(failed.json.details.body.name, "NotFoundError");

    const count = up.requests.length;
    assert.equal((await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/ses_1`, { token: viewer })).json.code, "forbidden");
    const dots = await rawExchange(s.url, `DELETE /workspace/${s.workspaceId}/sessions/%2e%2e HTTP/1.1\r\nHost: ${host()}\r\n${auth()}Connection: close\r\n\r\n`);
    assert.equal(dots.status, 400);
    assert.match(dots.body, /"code":"invalid_path"/);
    assert.equal((await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/a%2Fb`)).json.code, "invalid_path");
    assert.equal((await s.request("DELETE", `/workspace/ws_000000000000/sessions/ses_1`)).json.code, "workspace_not_found");
    assert.equal(up.requests.length, count);
  } finally {
    up.handle((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
    });
  }
});

test("DELETE session with the engine down → 502 opencode_unreachable", async () => {
  const port = await freePort();
  const down = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${port}` } });
  try {
    const res = await down.request("DELETE", `/workspace/${down.workspaceId}/sessions/ses_1`);
    assert.equal(res.status, 502);
    assert.equal(res.json.code, "opencode_unreachable");
  } finally {
    await down.close();
  }
});

/** An upstream that answers every connection with fixed bytes (for malformed responses). */
async function rawUpstream(answer: string): Promise<NetServer> {
  const srv = createNetServer((socket) => {
    socket.once("data", () => socket.end(answer));
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return srv;
}
