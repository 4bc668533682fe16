/**
 * The UI's browser helpers (ui/lib.js) that need no DOM, run in Node: the SSE-over-fetch reader
 * (chunk boundaries, CRLF, comments, multi-line data, reconnect with Last-Event-ID, no retry on
 * 401) and the text helpers that keep names honest in the approval prompt.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { waitFor } from "./helpers/wait.ts";

// The page keeps its token in sessionStorage; give Node a minimal one before loading lib.js.
const store = new Map<string, string>();
(globalThis as Record<string, unknown>).sessionStorage = {
  getItem: (k: string) => store.get(k) ?? null,
  setItem: (k: string, v: string) => void store.set(k, v),
  removeItem: (k: string) => void store.delete(k),
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const lib: any = await import(pathToFileURL(join(process.cwd(), "ui", "lib.js")).href);

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let base = "";
let handler: Handler = () => {};

before(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Writes `text` one byte at a time (worst case for a line-based parser), then optionally ends. */
async function dribble(res: ServerResponse, text: string): Promise<void> {
  for (const byte of Buffer.from(text)) {
    res.write(Buffer.from([byte]));
    await new Promise((r) => setImmediate(r));
  }
}

test("subscribe() parses events split at every byte, with CRLF, comments and multi-line data", async () => {
  lib.auth.set("tok-1", "host-1");
  const seenHeaders: Array<Record<string, unknown>> = [];
  handler = (req, res) => {
    seenHeaders.push({ ...req.headers });
    res.writeHead(200, { "content-type": "text/event-stream" });
    void dribble(res, ': heartbeat\r\nid: 7\r\nevent: approval.requested\r\ndata: {"id":"a",\r\ndata: "summary":"Upload é.txt"}\r\n\r\nevent: approval.resolved\ndata: {"id":"a","result":"allowed"}\n\ndata: plain text\n\n');
  };
  const events: Array<{ event: string; data: unknown; id?: string }> = [];
  const states: string[] = [];
  const stop = lib.subscribe(`${base}/approvals/events`, { host: true, onEvent: (e: { event: string; data: unknown; id?: string }) => events.push(e), onState: (s: string) => states.push(s) });
  try {
    await waitFor(() => events.length === 3, { what: "three events" });
    assert.deepEqual(events[0], { event: "approval.requested", data: { id: "a", summary: "Upload é.txt" }, id: "7" });
    assert.deepEqual(events[1], { event: "approval.resolved", data: { id: "a", result: "allowed" }, id: undefined });
    assert.deepEqual(events[2], { event: "message", data: "plain text", id: undefined });
    assert.equal(states[0], "open");
    assert.equal(seenHeaders[0]!.authorization, "Bearer tok-1");
    assert.equal(seenHeaders[0]!["x-openwork-host-token"], "host-1", "host token sent on host routes");
    assert.equal(seenHeaders[0]!.accept, "text/event-stream");
  } finally {
    stop();
  }
});

test("subscribe() reconnects after the stream ends and resumes with Last-Event-ID", async () => {
  let calls = 0;
  const lastIds: Array<string | undefined> = [];
  handler = (req, res) => {
    calls++;
    lastIds.push(req.headers["last-event-id"] as string | undefined);
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(`id: ${calls * 10}\ndata: {"n":${calls}}\n\n`);
  };
  const events: unknown[] = [];
  const stop = lib.subscribe(`${base}/x`, { onEvent: (e: { data: unknown }) => events.push(e.data) });
  try {
    await waitFor(() => events.length >= 2, { what: "an event after reconnecting", timeoutMs: 10_000 });
    assert.deepEqual(events.slice(0, 2), [{ n: 1 }, { n: 2 }]);
    assert.equal(lastIds[0], undefined);
    assert.equal(lastIds[1], "10");
  } finally {
    stop();
  }
});

test("subscribe() reports a 401 with the server's code and does not hammer the server", async () => {
  let calls = 0;
  handler = (_req, res) => {
    calls++;
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ code: "unauthorized", message: "Invalid host token" }));
  };
  const errors: Array<{ code: string; message: string; status: number }> = [];
  const stop = lib.subscribe(`${base}/approvals/events`, { host: true, onState: (s: string, err: { code: string; message: string; status: number }) => s === "error" && errors.push(err) });
  try {
    await waitFor(() => errors.length === 1, { what: "error state" });
    assert.equal(errors[0]!.code, "unauthorized");
    assert.equal(errors[0]!.message, "Invalid host token");
    assert.equal(errors[0]!.status, 401);
    // Give a retry loop every chance to show itself: the server must see exactly one request.
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(calls, 1);
  } finally {
    stop();
  }
});

test("api() turns error answers into ApiError with code and message; non-JSON errors get http_<status>", async () => {
  handler = (req, res) => {
    if (req.url === "/json") {
      res.writeHead(403, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "write_denied", message: "Write request denied", details: { reason: "timeout" } }));
    } else {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end("bad gateway");
    }
  };
  await assert.rejects(lib.api("POST", `${base}/json`, { json: {} }), (err: { code: string; status: number; details: { reason: string } }) => {
    assert.equal(err.code, "write_denied");
    assert.equal(err.status, 403);
    assert.equal(err.details.reason, "timeout");
    return true;
  });
  await assert.rejects(lib.api("GET", `${base}/text`), (err: { code: string; message: string }) => {
    assert.equal(err.code, "http_502");
    assert.equal(err.message, "bad gateway");
    return true;
  });
});

test("revealText shows bidi, zero-width and control characters escaped, keeps newlines and tabs", () => {
  assert.equal(lib.revealText("invoice\u202Etxt.exe"), "invoice\\u{202E}txt.exe");
  assert.equal(lib.revealText("a\u200Bb\u0000c\u001Bd"), "a\\u{200B}b\\u{0}c\\u{1B}d");
  assert.equal(lib.revealText("line 1\n\tline 2"), "line 1\n\tline 2");
  assert.equal(lib.revealText("café.txt"), "café.txt");
});

test("formatting helpers", () => {
  assert.equal(lib.formatBytes(0), "0 B");
  assert.equal(lib.formatBytes(1023), "1023 B");
  assert.equal(lib.formatBytes(3 * 1024 * 1024), "3.0 MB");
  assert.equal(lib.formatBytes(50_000_000), "48 MB");
  assert.equal(lib.formatBytes(undefined), "—");
  assert.equal(lib.formatCountdown(27_400), "0:28");
  assert.equal(lib.formatCountdown(120_000), "2:00");
  assert.equal(lib.formatCountdown(-5), "0:00");
  assert.equal(lib.formatDuration(3_725_000), "1h 2m");
  assert.equal(lib.shortHash("abcdef0123456789", 6), "abcdef");
});
