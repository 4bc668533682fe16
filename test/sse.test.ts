// SSE mechanics: heartbeats, the global stream cap, and release of streams on close.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./helpers/server.ts";
import { openSseClient, type SseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";

test("idle streams get heartbeat comments and are not cut by server timeouts", async () => {
  const s = await startServer({ sseHeartbeatMs: 100 });
  try {
    const feed = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    assert.equal(feed.headers["cache-control"], "no-cache, no-transform");
    assert.equal(feed.headers["x-accel-buffering"], "no");
    await waitFor(() => feed.comments >= 4, { what: "heartbeats" });
    assert.equal(feed.closed, false);
    feed.close();
  } finally {
    await s.close();
  }
});

test("the 257th stream → 429 too_many_streams; closing streams frees their places", async () => {
  const s = await startServer();
  const feeds: SseClient[] = [];
  try {
    for (let i = 0; i < 256; i++) feeds.push(await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken }));
    assert.ok(feeds.every((f) => f.status === 200));
    const extra = await s.request("GET", "/approvals/events", { token: null, host: true, headers: { accept: "text/event-stream" } });
    assert.equal(extra.status, 429);
    assert.equal(extra.json.code, "too_many_streams");
    for (const f of feeds.splice(0, 10)) f.close();
    await waitFor(() => s.context.streams.size <= 246, { what: "streams released" });
    const again = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    assert.equal(again.status, 200);
    feeds.push(again);
  } finally {
    for (const f of feeds) f.close();
    await s.close();
  }
  assert.equal(s.context.streams.size, 0, "shutdown closes every stream");
});

test("a client token gets at most 64 streams, so it cannot lock the host out of the approvals feed", async () => {
  const s = await startServer();
  const feeds: SseClient[] = [];
  try {
    const owner = await s.mintToken("owner");
    for (let i = 0; i < 64; i++) feeds.push(await openSseClient(`${s.url}/approvals/events`, { authorization: `Bearer ${owner}` }));
    assert.ok(feeds.every((f) => f.status === 200));
    const extra = await s.request("GET", "/approvals/events", { token: owner, headers: { accept: "text/event-stream" } });
    assert.equal(extra.status, 429);
    assert.equal(extra.json.code, "too_many_streams");
    assert.equal(extra.json.details.maxPerToken, 64);
    const host = await openSseClient(`${s.url}/approvals/events`, { "x-openwork-host-token": s.hostToken });
    assert.equal(host.status, 200, "the host still gets its feed");
    feeds.push(host);
  } finally {
    for (const f of feeds) f.close();
    await s.close();
  }
});
