// Hostile HTTP input (sections D, E, F of hostile-inputs.md): every case gets its specified answer
// and the server keeps serving afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { request } from "node:http";
import { startServer, type TestServer } from "./helpers/server.ts";
import { gatedRoute, GATED_FILE } from "./helpers/gated-route.ts";
import { rawRequest } from "./helpers/raw.ts";

let s: TestServer;
before(async () => {
  s = await startServer({ extraRoutes: [gatedRoute], headersTimeoutMs: 500 });
});
after(() => s.close());

async function assertAlive() {
  const res = await s.request("GET", "/health", { token: null });
  assert.equal(res.status, 200);
}

test("P08: bad percent-encoding in every path position → 400 invalid_path with CORS", async () => {
  const paths = ["/%", "/%zz", "/health%", "/workspace/%zz/config", `/workspace/${s.workspaceId}/skills/%E0%A4%A`, "/w/%C0%AE%C0%AE/status", "/opencode/%", "/ui/assets/%ff%"];
  for (const p of paths) {
    const res = await s.request("GET", p);
    assert.equal(res.status, 400, p);
    assert.equal(res.json.code, "invalid_path", p);
    assert.equal(res.headers["access-control-allow-origin"], "*");
  }
  await assertAlive();
});

test("unknown path → 404 not_found; known path with another method → 405 with Allow", async () => {
  const nf = await s.request("GET", "/no/such/route");
  assert.equal(nf.status, 404);
  assert.equal(nf.json.code, "not_found");
  const m = await s.request("DELETE", "/status");
  assert.equal(m.status, 405);
  assert.equal(m.json.code, "method_not_allowed");
  assert.equal(m.headers.allow, "GET, HEAD, OPTIONS");
  const opt = await s.request("OPTIONS", "/anything/at/all", { token: null });
  assert.equal(opt.status, 204, "any OPTIONS is 204 without auth");
});

const gated = () => `/test/workspace/${s.workspaceId}/gated`;

test("J13/J05/J06–J08/J12: bad JSON bodies → 400 invalid_json, nothing written", async () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
  const deepObj = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);
  const bodies: Array<[string, string | Buffer]> = [
    ["null", "null"],
    ["array", "[]"],
    ["number", "1"],
    ["string", '"x"'],
    ["broken", '{"text":'],
    ["depth 65 array", `{"text":"x","d":${deep(64)}}`],
    ["depth 10000", deep(10000)],
    ["depth 65 object", deepObj(65)],
    ["__proto__", '{"text":"x","__proto__":{"isAdmin":true}}'],
    ["nested __proto__", '{"text":"x","a":[{"b":{"__proto__":{"isAdmin":true}}}]}'],
    ["escaped __proto__", '{"text":"x","\\u005f_proto__":{"isAdmin":true}}'],
    ["spaced __proto__", '{"text":"x","__proto__" \n : {"isAdmin":true}}'],
    ["constructor.prototype", '{"text":"x","constructor":{"prototype":{"x":1}}}'],
    ["invalid utf-8", Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ];
  for (const [name, body] of bodies) {
    const res = await s.request("POST", gated(), { body, headers: { "content-type": "application/json" } });
    assert.equal(res.status, 400, name);
    assert.equal(res.json.code, "invalid_json", name);
  }
  assert.equal(({} as Record<string, unknown>).isAdmin, undefined, "no prototype pollution");
  assert.ok(!existsSync(join(s.workspace, GATED_FILE)));
  const ok = await s.request("POST", gated(), { body: '{"text":"ok","d":' + deep(62) + "}", headers: { "content-type": "application/json" } });
  assert.equal(ok.status, 200, "depth 63 is fine");
  await assertAlive();
});

test("J11: a non-JSON Content-Type on a JSON route → 415", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
    const res = await s.request("POST", gated(), { body: '{"text":"x"}', headers: { "content-type": type } });
    assert.equal(res.status, 415, type);
    assert.equal(res.json.code, "unsupported_media");
  }
  const bom = await s.request("POST", gated(), { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"text":"bom"}')]), headers: { "content-type": "application/json" } });
  assert.equal(bom.status, 200, "a leading UTF-8 BOM is stripped");
});

test("J01/J02: bodies over the limit → 413 payload_too_large (declared and streamed)", async () => {
  const declared = await rawRequest(s.url, `POST ${gated()} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.clientToken}\r\nContent-Type: application/json\r\nContent-Length: ${1024 * 1024 + 1}\r\n\r\n{"text":`);
  assert.equal(declared.status, 413);
  assert.match(declared.body, /"code":"payload_too_large"/);
  assert.match(declared.body, /"maxBytes":1048576/);
  const streamed = await new Promise<number | string | undefined>((resolve, reject) => {
    const req = request(`${s.url}${gated()}`, { method: "POST", headers: { authorization: `Bearer ${s.clientToken}`, "content-type": "application/json", "transfer-encoding": "chunked" } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < 3 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  }).catch((err: NodeJS.ErrnoException) => err.code);
  // The server may close while we are still sending, and the reset can overtake its answer;
  // any other outcome must be the 413.
  assert.ok(streamed === 413 || streamed === "ECONNRESET" || streamed === "EPIPE", `streamed upload: ${streamed}`);
  await assertAlive();
});

test("H01–H11: protocol abuse is rejected by the parser, the server keeps serving", async () => {
  const cases = [
    "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabc",
    "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length : 3\r\n\r\n",
    "GET /health HTTP/1.1\r\n\r\n",
    "G@T /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "GET /he\0alth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
  ];
  for (const payload of cases) {
    const res = await rawRequest(s.url, payload);
    assert.equal(res.status, 400, JSON.stringify(payload));
  }
  await assertAlive();
});

test("H12: a header block over 16 KiB → 431", async () => {
  const res = await rawRequest(s.url, `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
  assert.equal(res.status, 431);
  await assertAlive();
});

test("H14: a slow-header client is cut with 408; others are served meanwhile", async () => {
  const slow = rawRequest(s.url, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", { timeoutMs: 15_000 });
  await assertAlive();
  const res = await slow;
  assert.equal(res.status, 408);
});

test("A15/P06: absolute-form targets and protocol-relative paths never choose a host", async () => {
  const abs = await rawRequest(s.url, "GET http://evil.example/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  assert.equal(abs.status, 200, "only the path of an absolute-form target is used");
  const rel = await rawRequest(s.url, "GET //evil.example/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  assert.equal(rel.status, 404);
  assert.doesNotMatch(rel.head, /Location/i);
});

test("H16: a pipelined second request must authenticate on its own", async () => {
  const res = await rawRequest(
    s.url,
    `GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.clientToken}\r\nContent-Length: 0\r\n\r\nGET /tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
  );
  const statuses = [...res.raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 401]);
});

test("H18: Expect: 100-continue with an oversized body is refused before 100 is sent", async () => {
  const res = await rawRequest(s.url, `POST ${gated()} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.clientToken}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 999999999999\r\n\r\n`);
  assert.equal(res.status, 413);
  assert.doesNotMatch(res.raw, /100 Continue/);
  await assertAlive();
});
