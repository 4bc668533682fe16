// Bounded waits and memory: trickling bodies are cut with 408, long-polls hold stream places with a
// reserve for the host and owners, large pending write bodies have a budget, and a loopback server
// answers the host names it is told to (reverse proxies).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { request as httpRequest, type ClientRequest } from "node:http";
import { readFile, readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { loadConfig } from "../src/config.ts";
import { firstApproval, pendingApprovals, startServer, type TestServer } from "./helpers/server.ts";
import { openSession } from "./helpers/catalog.ts";
import { waitFor } from "./helpers/wait.ts";

/** Sends headers and then one body byte every `everyMs`; resolves with everything the server answered once it closes. */
function trickle(s: TestServer, path: string, everyMs: number): Promise<string> {
  const { hostname, port } = new URL(s.url);
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(Number(port), hostname);
    let answer = "";
    let timer: NodeJS.Timeout | undefined;
    sock.on("connect", () => {
      sock.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${s.clientToken}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
      timer = setInterval(() => sock.write(" "), everyMs);
    });
    sock.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    sock.on("error", () => {});
    sock.on("close", () => {
      clearInterval(timer);
      resolve(answer);
    });
    setTimeout(() => reject(new Error("the trickling socket was never closed")), 20_000).unref();
  });
}

test("trickling request bodies are answered 408 request_timeout and closed; the host is served meanwhile; nothing is written", async () => {
  const s = await startServer({ bodyIdleMs: 300 });
  try {
    const before = await readdir(s.workspace);
    const trickles = Array.from({ length: 40 }, (_, i) => trickle(s, i % 2 ? `/workspace/${s.workspaceId}/plugins` : `/workspace/${s.workspaceId}/files/content`, 100));
    // While they trickle, the host and the client are served.
    assert.equal((await s.request("GET", "/approvals", { token: null, host: true })).status, 200);
    assert.equal((await s.request("GET", "/status")).status, 200);
    for (const answer of await Promise.all(trickles)) {
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"code":"request_timeout"/);
      assert.match(answer, /Connection: close/i);
    }
    assert.deepEqual(await readdir(s.workspace), before);
    assert.equal(s.logs.filter((l) => l.level === "error").length, 0, JSON.stringify(s.logs.filter((l) => l.level === "error")));
  } finally {
    await s.close();
  }
});

test("a body that keeps arriving steadily is not cut, and aborted bodies log no errors", async () => {
  const s = await startServer({ bodyIdleMs: 300 });
  try {
    const body = JSON.stringify({ spec: "ok-plugin" });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${s.url}/workspace/${s.workspaceId}/plugins`, { method: "POST", agent: false, headers: { authorization: `Bearer ${s.clientToken}`, "content-type": "application/json", "content-length": String(body.length + 4000) } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      void (async () => {
        // 4 KiB in 2 KiB steps every 200 ms: slower than one window, above the minimum rate.
        for (let i = 0; i < 2; i++) {
          req.write(" ".repeat(2000));
          await new Promise((r) => setTimeout(r, 200));
        }
        req.end(body);
      })();
    });
    assert.equal(status, 200);
    // 50 bodies started (flushed to the socket) and then abandoned.
    const aborted = await Promise.all(Array.from({ length: 50 }, () => new Promise<ClientRequest>((resolve) => {
      const req = httpRequest(`${s.url}/workspace/${s.workspaceId}/plugins`, { method: "POST", agent: false, headers: { authorization: `Bearer ${s.clientToken}`, "content-type": "application/json", "content-length": "5000" } });
      req.on("error", () => {});
      req.write("{", () => resolve(req));
    })));
    for (const req of aborted) req.destroy();
    assert.equal((await s.request("GET", "/status")).status, 200);
    assert.equal(s.logs.filter((l) => l.level === "error").length, 0, JSON.stringify(s.logs.filter((l) => l.level === "error")));
  } finally {
    await s.close();
  }
});

/** Starts a long-poll of the reload events from `since`; `done` resolves with its status once answered. */
function longPoll(s: TestServer, token: string, since: number): { done: Promise<number>; req: ClientRequest } {
  let req!: ClientRequest;
  const done = new Promise<number>((resolve) => {
    req = httpRequest(`${s.url}/workspace/${s.workspaceId}/events?since=${since}&wait=30`, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(-1));
    req.end();
  });
  return { done, req };
}

test("long-polls count as streams: a token's 65th gets 429, viewers filling every place leave the host and owners theirs", async () => {
  const s = await startServer();
  const open: ClientRequest[] = [];
  try {
    const since = (await s.request("GET", `/workspace/${s.workspaceId}/events`)).json.cursor as number;
    const viewers = await Promise.all([0, 1, 2, 3].map(() => s.mintToken("viewer")));
    // One token: 64 places, the 65th is refused at once.
    for (let i = 0; i < 64; i++) open.push(longPoll(s, viewers[0]!, since).req);
    await waitFor(() => s.context.streams.size === 64, { what: "64 long-polls held", timeoutMs: 20_000 });
    assert.equal(await longPoll(s, viewers[0]!, since).done, 429);
    for (const r of open.splice(0, 8)) r.destroy();
    await waitFor(() => s.context.streams.size === 56, { what: "places released when clients leave" });
    // Four viewers holding 56 each fill every place but the reserve (256 − 32).
    for (const v of viewers.slice(1)) for (let i = 0; i < 56; i++) open.push(longPoll(s, v, since).req);
    await waitFor(() => s.context.streams.size === 224, { what: "224 long-polls held", timeoutMs: 20_000 });
    assert.equal(await longPoll(s, await s.mintToken("viewer"), since).done, 429, "no place left for non-owners");
    assert.equal(await longPoll(s, await s.mintToken("collaborator"), since).done, 429);
    // The host's approvals feed and an owner's long-poll use the reserve.
    open.push(longPoll(s, await s.mintToken("owner"), since).req);
    await waitFor(() => s.context.streams.size === 225, { what: "the owner's long-poll held" });
    const feed = await new Promise<number>((resolve) => {
      const req = httpRequest(`${s.url}/approvals/events`, { agent: false, headers: { "x-openwork-host-token": s.hostToken, accept: "text/event-stream" } }, (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      });
      req.end();
    });
    assert.equal(feed, 200);
  } finally {
    for (const r of open) r.destroy();
    await s.close();
  }
});

test("pending write bodies have a RAM budget: past it 429 too_many_pending_bytes, nothing queued; decided writes give it back", async () => {
  const s = await startServer({ approval: "manual", pendingBodyBytes: 2_500_000 });
  try {
    const content = "x".repeat(1_400_000);
    const first = s.request("POST", `/workspace/${s.workspaceId}/files/content`, { json: { path: "a.txt", content } });
    const approval = await firstApproval(s);
    const second = await s.request("POST", `/workspace/${s.workspaceId}/files/content`, { json: { path: "b.txt", content } });
    assert.equal(second.status, 429);
    assert.equal(second.json.code, "too_many_pending_bytes");
    assert.equal((await pendingApprovals(s)).length, 1, "the refused write was never queued");
    assert.equal((await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } })).status, 200);
    assert.equal((await first).status, 403);
    await waitFor(() => s.context.pendingBytes.inUse === 0, { what: "budget returned" });
    const third = s.request("POST", `/workspace/${s.workspaceId}/files/content`, { json: { path: "c.txt", content } });
    const next = await firstApproval(s);
    assert.equal((await s.request("POST", `/approvals/${next.id}`, { token: null, host: true, json: { reply: "allow" } })).status, 200);
    assert.equal((await third).status, 200);
    assert.deepEqual(await readdir(s.workspace), ["c.txt"]);
  } finally {
    await s.close();
  }
});

test("large write-batch content waits for approval staged on disk (0600), not in RAM, and is removed once decided", async () => {
  const s = await startServer({ approval: "manual", pendingBodyBytes: 2_500_000 });
  try {
    const sid = await openSession(s);
    const data = Buffer.alloc(1_100_000, 7);
    // Three 1.5 MB bodies, one after the other, against a 2.5 MB RAM budget: all pending, because each left RAM once staged.
    const batches = [];
    for (const i of [0, 1, 2]) {
      batches.push(s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: `f${i}.bin`, contentBase64: data.toString("base64") }] } }));
      await waitFor(async () => (await pendingApprovals(s)).length === i + 1 || undefined, { what: `${i + 1} pending batches` });
    }
    assert.equal(s.context.pendingBytes.inUse, 0);
    const staging = join(s.dataDir, "staging", String(process.pid));
    const staged = await readdir(staging);
    assert.equal(staged.length, 3);
    for (const name of staged) {
      const st = await stat(join(staging, name));
      assert.equal(st.size, data.length);
      assert.equal(st.mode & 0o777, 0o600);
    }
    const items = await pendingApprovals(s);
    for (const [i, a] of items.entries()) await s.request("POST", `/approvals/${a.id}`, { token: null, host: true, json: { reply: i === 0 ? "allow" : "deny" } });
    const statuses = (await Promise.all(batches)).map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 403, 403]);
    assert.deepEqual(await readdir(staging), []);
    const written = (await readdir(s.workspace)).filter((n) => n.endsWith(".bin"));
    assert.equal(written.length, 1);
    assert.ok((await readFile(join(s.workspace, written[0]!))).equals(data));
  } finally {
    await s.close();
  }
});

test("staged write-batch content changed in the data dir while the host decides (rewritten, or swapped for a FIFO): each item a conflict at once, nothing written", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    const sid = await openSession(s);
    const data = Buffer.alloc(300_000, 7); // above the 256 KiB staging threshold
    const staging = join(s.dataDir, "staging", String(process.pid));
    const batches = [];
    for (const i of [0, 1]) {
      batches.push(s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: `g${i}.bin`, contentBase64: data.toString("base64") }] } }));
      await waitFor(async () => (await pendingApprovals(s)).length === i + 1 || undefined, { what: `${i + 1} pending batches` });
    }
    const [first, second] = (await readdir(staging)).sort();
    await writeFile(join(staging, first!), Buffer.alloc(data.length, 8)); // same size, other bytes
    await rm(join(staging, second!));
    execFileSync("mkfifo", [join(staging, second!)]); // reading it would block a thread for good
    for (const a of await pendingApprovals(s)) await s.request("POST", `/approvals/${a.id}`, { token: null, host: true, json: { reply: "allow" } });
    const answers = await Promise.race([Promise.all(batches), new Promise<"stuck">((r) => setTimeout(r, 10_000, "stuck").unref())]);
    assert.notEqual(answers, "stuck", "both writes answered");
    // A write-batch answers per item: each refused as a conflict.
    for (const r of answers as Array<{ status: number; text: string; json: { items: Array<{ ok: boolean; code?: string }> } }>) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.items[0]!.ok, false, r.text);
      assert.equal(r.json.items[0]!.code, "conflict", r.text);
    }
    assert.deepEqual((await readdir(s.workspace)).filter((n) => n.endsWith(".bin")), [], "nothing written");
  } finally {
    await s.close();
  }
});

test("allowed hosts: a loopback server behind a reverse proxy answers its configured name, and 421 for any other", async () => {
  const s = await startServer({ argv: ["--allowed-host", "openwork.example.ts.net", "--allowed-host", "Proxy.Local"] });
  try {
    for (const host of ["openwork.example.ts.net", "openwork.example.ts.net:443", "proxy.local"]) {
      const res = await s.request("GET", "/status", { headers: { host } });
      assert.equal(res.status, 200, host);
    }
    const evil = await s.request("GET", "/status", { headers: { host: "evil.example" } });
    assert.equal(evil.status, 421);
    assert.equal(evil.json.code, "misdirected_request");
  } finally {
    await s.close();
  }
  const fromEnv = await startServer({ env: { OPENWORK_ALLOWED_HOSTS: "a.example, b.example" } });
  try {
    assert.equal((await fromEnv.request("GET", "/status", { headers: { host: "b.example" } })).status, 200);
    assert.equal((await fromEnv.request("GET", "/status", { headers: { host: "c.example" } })).status, 421);
  } finally {
    await fromEnv.close();
  }
  await assert.rejects(loadConfig({ argv: ["--allowed-host", "https://a.example:8443"], env: {}, cwd: tmpdir() }), /expected a host name without scheme or port/);
});

test("a huge OpenCode config (sparse, 600 MiB) is refused by its size: 413 file_too_large, never read into memory, never a 500; PATCH changes nothing", async () => {
  const s = await startServer({ approval: "auto" });
  try {
    const file = join(s.workspace, "opencode.json");
    await writeFile(file, "");
    await truncate(file, 600 * 1024 * 1024);
    for (const route of ["config", "mcp", "plugins"]) {
      const r = await s.request("GET", `/workspace/${s.workspaceId}/${route}`);
      assert.equal(r.status, 413, `${route}: ${r.text}`);
      assert.equal(r.json.code, "file_too_large");
      assert.ok(!r.text.includes(s.workspace), "no host path in the message");
    }
    const patch = await s.request("PATCH", `/workspace/${s.workspaceId}/config`, { json: { opencode: { share: "disabled" } } });
    assert.equal(patch.status, 413, patch.text);
    assert.equal((await stat(file)).size, 600 * 1024 * 1024, "the file is untouched");
    assert.equal((await s.request("GET", "/health")).status, 200);
  } finally {
    await s.close();
  }
});
