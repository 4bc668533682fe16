// OpenCode proxy streaming: uploads and downloads with backpressure (flat memory), SSE event by
// event, idle streams past shortened timeouts, upstream death, client disconnect, revocation, shutdown.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { startServer, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";
import type { ProxyPool } from "../src/http/proxy.ts";
import type { RouteDef } from "../src/http/route.ts";
import { json } from "../src/http/route.ts";

const MB = 1024 * 1024;
let up: TestUpstream;
let s: TestServer;
let proxy: ProxyPool;

/** Test-only route: shortens the HTTP server's own timeouts so "idle" can be tested in a second. */
const shortenTimeouts: RouteDef = {
  method: "POST",
  path: "/test/shorten-timeouts",
  auth: "none",
  handler: async (rc) => {
    const server = (rc.req.socket as unknown as { server: { keepAliveTimeout: number; timeout: number } }).server;
    server.keepAliveTimeout = 200;
    server.timeout = 300; // an idle-socket timeout the proxy must switch off for its streams
    return json({ ok: true });
  },
};

before(async () => {
  up = await startUpstream();
  s = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: up.url }, extraRoutes: [shortenTimeouts], headersTimeoutMs: 300 });
  proxy = s.context.proxy;
  proxy.headersTimeoutMs = 300;
  assert.equal((await s.request("POST", "/test/shorten-timeouts", { token: null })).status, 200);
});

after(async () => {
  await s.close();
  await up.close();
});

const auth = () => ({ authorization: `Bearer ${s.clientToken}` });

/** Samples RSS while `work` runs; returns the peak growth over the baseline in MiB. */
async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return (Math.max(peak, process.memoryUsage().rss) - base) / MB;
}

function sseHandler(onOpen: (req: IncomingMessage, res: ServerResponse) => void) {
  return (req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    onOpen(req, res);
  };
}

test("a 100 MB upload streams through with flat memory", async () => {
  up.requests.length = 0;
  const total = 100 * MB;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const growth = await peakRssGrowth(async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${s.url}/opencode/session/s1/message`, { method: "POST", headers: { ...auth(), "content-length": String(total), "content-type": "application/octet-stream" }, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      const source = Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
        })(),
      );
      pipeline(source, req).catch(reject);
    });
    assert.equal(status, 200);
  });
  const rec = up.requests[up.requests.length - 1]!;
  assert.equal(rec.method, "POST");
  assert.equal(rec.bodyBytes, total, "every byte arrived");
  assert.ok(growth < 60, `RSS grew by ${growth.toFixed(1)} MiB for a 100 MiB upload`);
});

test("a slow upload is not cut by the (shortened) upstream headers timeout while it progresses", async () => {
  up.requests.length = 0;
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${s.url}/opencode/session/s1/prompt_async`, { method: "POST", headers: { ...auth(), "content-type": "application/octet-stream" }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    void (async () => {
      // Pacing a slow client: 6 chunks 150 ms apart, 900 ms in all (3× the 300 ms timeout).
      for (let i = 0; i < 6; i++) {
        req.write(Buffer.alloc(1024, i));
        await new Promise((r) => setTimeout(r, 150));
      }
      req.end();
    })();
  });
  assert.equal(status, 200);
  assert.equal(up.requests[0]!.bodyBytes, 6 * 1024);
});

test("X13: a large response read slowly keeps memory bounded (backpressure to the upstream)", async () => {
  const total = 96 * MB;
  const chunk = Buffer.alloc(64 * 1024, 1);
  up.handle(async (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(total) });
    await pipeline(
      Readable.from(
        (function* () {
          for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
        })(),
      ),
      res,
    );
  });
  let received = 0;
  const growth = await peakRssGrowth(async () => {
    await new Promise<void>((resolve, reject) => {
      const req = request(`${s.url}/opencode/big`, { headers: auth(), agent: false }, (res) => {
        // A slow reader: 2 ms per chunk.
        const slow = new Writable({
          highWaterMark: 64 * 1024,
          write(c: Buffer, _enc, cb) {
            received += c.length;
            setTimeout(cb, received < 8 * MB ? 2 : 0);
          },
        });
        pipeline(res, slow).then(resolve, reject);
      });
      req.on("error", reject);
      req.end();
    });
  });
  up.handle((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, url: req.url }));
  });
  assert.equal(received, total);
  assert.ok(growth < 60, `RSS grew by ${growth.toFixed(1)} MiB for a 96 MiB download`);
});

test("SSE: each event reaches the client before the upstream sends the next one", async () => {
  let client: Awaited<ReturnType<typeof openSseClient>> | undefined;
  const sentAt: number[] = [];
  up.handle(
    sseHandler((_req, res) => {
      void (async () => {
        await waitFor(() => client, { what: "client connected" });
        for (let i = 1; i <= 5; i++) {
          sentAt.push(Date.now());
          res.write(`id: ${i}\ndata: {"n":${i}}\n\n`);
          // The next event is sent only once this one has arrived through the proxy.
          await waitFor(() => client!.events.length >= i, { timeoutMs: 5_000, what: `event ${i} through the proxy` });
        }
        res.end();
      })().catch(() => res.destroy());
    }),
  );
  client = await openSseClient(`${s.url}/opencode/event`, auth());
  assert.equal(client.status, 200);
  assert.equal(client.headers["content-type"], "text/event-stream");
  await waitFor(() => client!.closed, { what: "stream end" });
  assert.deepEqual(client.events.map((e) => e.data), [1, 2, 3, 4, 5].map((n) => `{"n":${n}}`));
  assert.deepEqual(client.events.map((e) => e.id), ["1", "2", "3", "4", "5"]);
});

test("X14: SSE events emitted every 50 ms arrive promptly (latency measured per event)", async (t) => {
  up.handle(
    sseHandler((_req, res) => {
      let n = 0;
      const timer = setInterval(() => {
        res.write(`data: ${Date.now()}\n\n`);
        if (++n === 20) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      res.on("close", () => clearInterval(timer));
    }),
  );
  const latencies: number[] = [];
  const client = await openSseClient(`${s.url}/opencode/event`, auth());
  let seen = 0;
  await waitFor(
    () => {
      while (seen < client.events.length) latencies.push(Date.now() - Number(client.events[seen++]!.data));
      return client.closed;
    },
    { intervalMs: 1, what: "20 events" },
  );
  while (seen < client.events.length) latencies.push(Date.now() - Number(client.events[seen++]!.data));
  assert.equal(latencies.length, 20);
  latencies.sort((a, b) => a - b);
  t.diagnostic(`event latency p50 ${latencies[9]} ms, max ${latencies[19]} ms`);
  // Generous bound for a loaded 2-core machine; buffering would hold events until the end (≈1 s).
  assert.ok(latencies[9]! < 100, `p50 ${latencies[9]} ms`);
  assert.ok(latencies[19]! < 500, `max ${latencies[19]} ms`);
});

test("SSE: an idle stream stays open past shortened keep-alive, socket and proxy timeouts", async () => {
  let upstreamRes: ServerResponse | undefined;
  up.handle(
    sseHandler((_req, res) => {
      upstreamRes = res;
      res.write("data: first\n\n");
    }),
  );
  const client = await openSseClient(`${s.url}/w/${s.workspaceId}/opencode/global/event`, auth());
  await waitFor(() => client.events.length === 1, { what: "first event" });
  // The idle period is the subject of this test: 5× every shortened timeout (200–300 ms).
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal(client.closed, false, "still open after the idle period");
  upstreamRes!.write("data: second\n\n");
  await waitFor(() => client.events.length === 2, { what: "event after idle" });
  assert.equal(client.events[1]!.data, "second");
  client.close();
});

test("upstream killed mid-stream closes the client stream", async () => {
  let upstreamRes: ServerResponse | undefined;
  up.handle(
    sseHandler((_req, res) => {
      upstreamRes = res;
      res.write("data: one\n\n");
    }),
  );
  const client = await openSseClient(`${s.url}/opencode/event`, auth());
  await waitFor(() => client.events.length === 1, { what: "first event" });
  upstreamRes!.socket!.destroy();
  await waitFor(() => client.closed, { what: "client stream closed" });
  await waitFor(() => proxy.size === 0, { what: "exchange released" });
});

test("X15: client disconnect aborts the upstream request; nothing leaks over 50 cycles", async () => {
  let upstreamClosed = 0;
  up.handle(
    sseHandler((req, res) => {
      res.write("data: hi\n\n");
      req.socket.on("close", () => upstreamClosed++);
    }),
  );
  for (let i = 0; i < 50; i++) {
    const client = await openSseClient(`${s.url}/opencode/event`, auth());
    await waitFor(() => client.events.length === 1, { what: "event" });
    client.close();
    await waitFor(() => upstreamClosed === i + 1, { timeoutMs: 5_000, what: `upstream request ${i} destroyed` });
  }
  await waitFor(() => proxy.size === 0, { what: "no open exchanges" });
  await waitFor(() => up.sockets.size === 0, { what: "no upstream sockets" });
});

test("a client disconnecting before upstream headers aborts the upstream request", async () => {
  let closed = false;
  up.handle((req) => {
    req.socket.on("close", () => {
      closed = true;
    });
  });
  const req = request(`${s.url}/opencode/slow`, { headers: auth(), agent: false });
  req.on("error", () => {});
  req.end();
  await waitFor(() => up.requests.some((r) => r.url.startsWith("/slow")), { what: "upstream got the request" });
  req.destroy();
  await waitFor(() => closed, { what: "upstream socket closed" });
  up.handle((r, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, url: r.url }));
  });
});

test("revoking a token closes its proxied event stream at once", async () => {
  up.handle(sseHandler((_req, res) => res.write("data: hi\n\n")));
  const minted = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "viewer" } });
  assert.equal(minted.status, 201);
  const client = await openSseClient(`${s.url}/opencode/event`, { authorization: `Bearer ${minted.json.token}` });
  await waitFor(() => client.events.length === 1, { what: "event" });
  const revoked = await s.request("DELETE", `/tokens/${minted.json.id}`, { token: null, host: true });
  assert.equal(revoked.status, 200);
  await waitFor(() => client.closed, { what: "stream closed on revocation" });
});

test("shutdown closes proxied event streams promptly", async () => {
  const other = await startServer({ env: { OPENWORK_OPENCODE_BASE_URL: up.url } });
  up.handle(sseHandler((_req, res) => res.write("data: hi\n\n")));
  const client = await openSseClient(`${other.url}/opencode/event`, { authorization: `Bearer ${other.clientToken}` });
  await waitFor(() => client.events.length === 1, { what: "event" });
  const t0 = Date.now();
  await other.close();
  assert.ok(Date.now() - t0 < 3_000, `closed in ${Date.now() - t0} ms`);
  await waitFor(() => client.closed, { what: "client closed" });
});
