/** Catalog events over SSE: id/event/data, Last-Event-ID resume, reset, heartbeat, slow clients, session end. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";
import { openSession, snapshotModel } from "./helpers/catalog.ts";

function eventsUrl(s: TestServer, sid: string, query = ""): string {
  return `${s.url}/files/sessions/${sid}/catalog/events${query}`;
}

test("SSE: id = seq, event = type, data = the event; Last-Event-ID resumes; garbage or stale ids reset", async () => {
  const s = await startServer({ sseHeartbeatMs: 200 });
  try {
    const sid = await openSession(s);
    const { cursor } = await snapshotModel(s, sid);
    const auth = { authorization: `Bearer ${s.clientToken}` };
    const c1 = await openSseClient(eventsUrl(s, sid, `?since=${cursor}`), auth);
    assert.equal(c1.status, 200);
    await writeFile(path.join(s.workspace, "one.txt"), "1");
    await waitFor(() => c1.events.length >= 1, { timeoutMs: 15_000, what: "first SSE event" });
    await mkdir(path.join(s.workspace, "dir"));
    await waitFor(() => c1.events.length >= 2, { timeoutMs: 15_000, what: "two SSE events" });
    const [e1, e2] = c1.events;
    assert.equal(e1!.event, "write");
    assert.equal(e1!.id, String(cursor + 1));
    const d1 = JSON.parse(e1!.data);
    assert.equal(d1.seq, cursor + 1);
    assert.equal(d1.path, "one.txt");
    assert.equal(d1.type, "write");
    assert.equal(e2!.event, "mkdir");
    await waitFor(() => c1.comments >= 2, { what: "heartbeat comments" });
    c1.close();

    // Resume after the first event: the second one is replayed, then live ones follow.
    const c2 = await openSseClient(eventsUrl(s, sid), { ...auth, "last-event-id": e1!.id! });
    await waitFor(() => c2.events.length >= 1, { timeoutMs: 15_000, what: "replayed event" });
    assert.equal(c2.events[0]!.id, e2!.id);
    await writeFile(path.join(s.workspace, "two.txt"), "2");
    await waitFor(() => c2.events.some((e) => JSON.parse(e.data).path === "two.txt"), { timeoutMs: 15_000, what: "live event after resume" });
    c2.close();

    // Without since or Last-Event-ID: live only.
    const live = await openSseClient(eventsUrl(s, sid), auth);
    await writeFile(path.join(s.workspace, "three.txt"), "3");
    await waitFor(() => live.events.length >= 1, { timeoutMs: 15_000, what: "live event" });
    assert.equal(JSON.parse(live.events[0]!.data).path, "three.txt");
    live.close();

    for (const bad of ["garbage", "999999999", "-5"]) {
      const c = await openSseClient(eventsUrl(s, sid), { ...auth, "last-event-id": bad });
      await waitFor(() => c.events.length >= 1, { what: `reset for ${bad}` });
      assert.equal(c.events[0]!.event, "reset", bad);
      const data = JSON.parse(c.events[0]!.data);
      assert.equal(data.reset, true);
      assert.equal(data.cursor, s.context.catalogs.cursor(s.workspaceId));
      c.close();
    }
    const health = await s.request("GET", "/health", { token: null });
    assert.equal(health.status, 200);
  } finally {
    await s.close();
  }
});

test("SSE: a client that stops reading does not grow the server's memory; it gets a reset when it resumes (W05)", async () => {
  const s = await startServer();
  const staging = await mkdtemp(path.join(tmpdir(), "ow-cat-slow-"));
  try {
    const sid = await openSession(s);
    const { cursor } = await snapshotModel(s, sid);
    let res: import("node:http").IncomingMessage | undefined;
    const chunks: string[] = [];
    const req = request(eventsUrl(s, sid, `?since=${cursor}`), { headers: { accept: "text/event-stream", authorization: `Bearer ${s.clientToken}` }, agent: false }, (r) => {
      res = r;
      r.pause(); // a client that does not read
    });
    req.end();
    await waitFor(() => res !== undefined, { what: "stream open" });
    const rssBefore = process.memoryUsage().rss;
    // 24 000 events: more than the ring keeps (10 000) and more than the socket buffers take.
    await mkdir(path.join(staging, "big"));
    for (let i = 0; i < 24_000; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => writeFile(path.join(staging, "big", `file-with-a-longish-name-${i + j}.txt`), "")));
    }
    await rename(path.join(staging, "big"), path.join(s.workspace, "big"));
    await waitFor(() => s.context.catalogs.cursor(s.workspaceId) >= cursor + 24_001, { timeoutMs: 40_000, what: "24 001 events" });
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < 200 * 1024 * 1024, `rss grew ${growth} bytes`);
    res!.setEncoding("utf8");
    res!.on("data", (c: string) => chunks.push(c));
    res!.resume();
    const end = s.context.catalogs.cursor(s.workspaceId);
    await waitFor(() => chunks.join("").includes(`id: ${end}\n`), { timeoutMs: 30_000, what: "caught up to the cursor" });
    const text = chunks.join("");
    assert.ok(text.includes("event: reset"), "the slow client was told to re-snapshot");
    req.destroy();
  } finally {
    await s.close();
    await rm(staging, { recursive: true, force: true });
  }
});

test("SSE: the stream ends when its session ends; 500 streams opened and closed leave no watcher behind (W06)", async () => {
  const s = await startServer();
  try {
    const sid = await openSession(s);
    const auth = { authorization: `Bearer ${s.clientToken}` };
    for (let round = 0; round < 5; round++) {
      const clients = await Promise.all(Array.from({ length: 40 }, () => openSseClient(eventsUrl(s, sid), auth)));
      assert.ok(clients.every((c) => c.status === 200));
      for (const c of clients) c.close();
    }
    await waitFor(() => s.context.streams.size === 0, { what: "streams closed" });
    const other = await openSession(s);
    const c = await openSseClient(eventsUrl(s, sid), auth);
    const c2 = await openSseClient(eventsUrl(s, other), auth);
    assert.equal(s.context.catalogs.hasIndex(s.workspaceId), true);
    const t0 = Date.now();
    assert.equal((await s.request("DELETE", `/files/sessions/${sid}`)).status, 200);
    await waitFor(() => c.closed, { timeoutMs: 15_000, what: "stream closed with its session" });
    assert.ok(Date.now() - t0 < 4_000, "closed when the session ended, not at the next periodic check");
    assert.equal(c2.closed, false, "another session's stream stays open");
    assert.equal(s.context.catalogs.hasIndex(s.workspaceId), true, "the other session keeps the index");
    assert.equal((await s.request("DELETE", `/files/sessions/${other}`)).status, 200);
    await waitFor(() => c2.closed, { timeoutMs: 15_000, what: "second stream closed" });
    assert.equal(s.context.catalogs.hasIndex(s.workspaceId), false, "index (and its watchers) dropped");
  } finally {
    await s.close();
  }
});
