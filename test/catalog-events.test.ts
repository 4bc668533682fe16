/** Catalog events: every change on disk shows up, server writes exactly once, long-poll, reset semantics. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile, appendFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { startCli } from "./helpers/cli.ts";
import { workspaceId as workspaceIdOf } from "../src/workspaces.ts";
import { waitFor } from "./helpers/wait.ts";
import { converge, EventFollower, openSession, sameModel, snapshotModel, walkModel, type CatalogEventJson } from "./helpers/catalog.ts";

const DEADLINE = 15_000;

/** Polls until `pred` holds for the collected events. */
async function until(f: EventFollower, pred: (evs: CatalogEventJson[]) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE;
  while (!pred(f.events)) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; got ${JSON.stringify(f.events.map((e) => [e.type, e.path, e.toPath]))}`);
    await f.poll(2);
  }
}

/** Waits until snapshot+events reproduce the disk exactly. */
async function converges(s: TestServer, f: EventFollower, model: Map<string, string>, what: string): Promise<void> {
  await converge(s, f, model, { what, timeoutMs: 20_000 });
}

test("files created, modified, renamed and deleted by plain fs calls appear as events", async () => {
  const s = await startServer({ files: { "keep.txt": "k" } });
  try {
    const sid = await openSession(s);
    const { model, cursor } = await snapshotModel(s, sid);
    const f = new EventFollower(s, sid, cursor);
    const p = (r: string) => path.join(s.workspace, r);

    await writeFile(p("notes.md"), "hello");
    await until(f, (e) => e.some((x) => x.type === "write" && x.path === "notes.md"), "create");
    const w = f.events.find((x) => x.path === "notes.md")!;
    assert.match(w.id, /^[0-9a-f-]{36}$/);
    assert.equal(w.workspaceId, s.workspaceId);
    assert.equal(typeof w.revision, "string");
    assert.ok(Math.abs(w.timestamp - Date.now()) < 60_000);
    assert.equal(w.seq, cursor + 1);

    await appendFile(p("notes.md"), " world");
    await until(f, (e) => e.filter((x) => x.type === "write" && x.path === "notes.md").length >= 2, "modify");
    await mkdir(p("docs/new"), { recursive: true });
    await until(f, (e) => e.some((x) => x.type === "mkdir" && x.path === "docs/new"), "mkdir");
    await rename(p("notes.md"), p("docs/notes.md"));
    await until(f, (e) => e.some((x) => x.type === "rename" && x.path === "notes.md" && x.toPath === "docs/notes.md"), "rename");
    await rm(p("keep.txt"));
    await until(f, (e) => e.some((x) => x.type === "delete" && x.path === "keep.txt"), "delete");
    await rm(p("docs"), { recursive: true });
    await until(f, (e) => e.some((x) => x.type === "delete" && x.path === "docs"), "rm -r");
    await converges(s, f, model, "replayed events match the disk");
  } finally {
    await s.close();
  }
});

test("git checkout in a repository inside the workspace is reported, .git is not", async () => {
  const s = await startServer();
  const git = (...args: string[]) => execFileSync("git", args, { cwd: s.workspace, env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t", HOME: s.home }, stdio: "pipe" });
  try {
    git("init", "-q", "-b", "main");
    await mkdir(path.join(s.workspace, "src"));
    for (let i = 0; i < 20; i++) await writeFile(path.join(s.workspace, "src", `m${i}.ts`), `main ${i}`);
    await writeFile(path.join(s.workspace, "README.md"), "main");
    git("add", "-A");
    git("commit", "-q", "-m", "main");
    git("checkout", "-q", "-b", "feature");
    await rm(path.join(s.workspace, "src", "m0.ts"));
    for (let i = 1; i < 10; i++) await writeFile(path.join(s.workspace, "src", `m${i}.ts`), `feature ${i}`);
    await mkdir(path.join(s.workspace, "lib"));
    await writeFile(path.join(s.workspace, "lib", "f.ts"), "feature");
    git("add", "-A");
    git("commit", "-q", "-m", "feature");

    const sid = await openSession(s);
    const { model, cursor } = await snapshotModel(s, sid);
    assert.ok(!model.has(".git") && ![...model.keys()].some((k) => k.startsWith(".git/")));
    const f = new EventFollower(s, sid, cursor);
    git("checkout", "-q", "main");
    await until(f, (e) => e.some((x) => x.path === "src/m0.ts") && e.some((x) => x.path === "lib" || x.path === "lib/f.ts"), "checkout main");
    await converges(s, f, model, "after checkout main");
    assert.ok(!f.events.some((e) => e.path.startsWith(".git") || e.toPath?.startsWith(".git")));
    git("checkout", "-q", "feature");
    await converges(s, f, model, "after checkout feature");
    assert.equal(model.get("src/m0.ts"), undefined);
    assert.equal(model.get("lib/f.ts") !== undefined, true);
  } finally {
    await s.close();
  }
});

test("writes through the server are reported exactly once", async () => {
  const s = await startServer({ files: { "a.txt": "a" } });
  try {
    const sid = await openSession(s);
    const { model, cursor } = await snapshotModel(s, sid);
    const f = new EventFollower(s, sid, cursor);
    const wb = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: [{ path: "a.txt", contentBase64: Buffer.from("A").toString("base64") }, { path: "new/dir/b.txt", contentBase64: "" }] },
    });
    assert.equal(wb.status, 200, wb.text);
    assert.deepEqual(wb.json.items.map((i: { ok: boolean }) => i.ok), [true, true], wb.text);
    // The events exist before the response: its cursor already covers them.
    const now = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}`);
    assert.equal(now.json.cursor, wb.json.cursor);
    const types = now.json.items.map((e: CatalogEventJson) => `${e.type} ${e.path}`);
    assert.deepEqual(types.sort(), ["mkdir new", "mkdir new/dir", "write a.txt", "write new/dir/b.txt"].sort());
    const wA = now.json.items.find((e: CatalogEventJson) => e.path === "a.txt");
    assert.equal(wA.revision, wb.json.items[0].revision, "the event carries the revision the write returned");

    const ops = await s.request("POST", `/files/sessions/${sid}/ops`, {
      json: { operations: [{ type: "rename", from: "a.txt", to: "moved/a.txt" }, { type: "mkdir", path: "empty" }, { type: "delete", path: "new", recursive: true }] },
    });
    assert.equal(ops.status, 200, ops.text);
    assert.deepEqual(ops.json.items.map((i: { ok: boolean }) => i.ok), [true, true, true], ops.text);
    const afterOps = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${wb.json.cursor}`);
    assert.equal(afterOps.json.cursor, ops.json.cursor);
    assert.deepEqual(
      afterOps.json.items.map((e: CatalogEventJson) => `${e.type} ${e.path}${e.toPath ? " " + e.toPath : ""}`),
      ["mkdir moved", "rename a.txt moved/a.txt", "mkdir empty", "delete new"],
    );

    // Let the watcher see its echo of all that: a later plain change proves it ran past it.
    await writeFile(path.join(s.workspace, "sentinel.txt"), "s");
    await until(f, (e) => e.some((x) => x.path === "sentinel.txt"), "sentinel");
    const counts = new Map<string, number>();
    for (const e of f.events) counts.set(`${e.type} ${e.path}`, (counts.get(`${e.type} ${e.path}`) ?? 0) + 1);
    for (const [k, n] of counts) assert.equal(n, 1, `${k} reported ${n} times`);
    await converges(s, f, model, "server writes replayed");
  } finally {
    await s.close();
  }
});

test("a symlink to an outside directory gives no events for outside content (S09)", async () => {
  const s = await startServer({ files: { "a.txt": "a" } });
  const outside = await mkdtemp(path.join(tmpdir(), "ow-cat-out-"));
  try {
    await symlink(outside, path.join(s.workspace, "link"));
    const sid = await openSession(s);
    const { cursor } = await snapshotModel(s, sid);
    const f = new EventFollower(s, sid, cursor);
    await writeFile(path.join(outside, "secret.txt"), "s");
    await mkdir(path.join(outside, "sub"));
    await writeFile(path.join(outside, "sub", "x"), "x");
    await writeFile(path.join(s.workspace, "sentinel.txt"), "s");
    await until(f, (e) => e.some((x) => x.path === "sentinel.txt"), "sentinel");
    assert.deepEqual(f.events.map((e) => e.path), ["sentinel.txt"]);
  } finally {
    await s.close();
    await rm(outside, { recursive: true, force: true });
  }
});

test("long-poll: wait returns on the first change, or empty at the deadline", async () => {
  const s = await startServer();
  try {
    const sid = await openSession(s);
    const { cursor } = await snapshotModel(s, sid);
    const t0 = Date.now();
    const empty = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}&wait=0.5`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.json.items, []);
    assert.equal(empty.json.cursor, cursor);
    assert.ok(Date.now() - t0 >= 450, "waited");
    const pending = s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}&wait=25`);
    const t1 = Date.now();
    await writeFile(path.join(s.workspace, "x.txt"), "x");
    const got = await pending;
    assert.equal(got.status, 200);
    assert.equal(got.json.items[0].path, "x.txt");
    assert.ok(Date.now() - t1 < 20_000, "returned on the change, not at the deadline");
    for (const bad of ["since=-1", "since=abc", "wait=abc", "wait=-2"]) {
      const r = await s.request("GET", `/files/sessions/${sid}/catalog/events?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.code, "invalid_payload", bad);
    }
  } finally {
    await s.close();
  }
});

test("reset: since from the future, since older than the ring buffer, and after the index was dropped", async () => {
  const s = await startServer({ files: { "a.txt": "a" } });
  const staging = await mkdtemp(path.join(tmpdir(), "ow-cat-big-"));
  try {
    const sid = await openSession(s);
    const { cursor } = await snapshotModel(s, sid);
    const future = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor + 1000}`);
    assert.equal(future.json.reset, true);
    assert.deepEqual(future.json.items, []);
    assert.equal(future.json.cursor, cursor);
    const zero = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=0`);
    assert.equal(zero.json.reset, undefined, "nothing was evicted yet: since=0 is still answerable");

    // 10 050 files moved in at once: more events than the ring holds (10 000).
    await mkdir(path.join(staging, "big"));
    for (let i = 0; i < 10_050; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, 10_050 - i) }, (_, j) => writeFile(path.join(staging, "big", `f${i + j}`), "")));
    }
    await rename(path.join(staging, "big"), path.join(s.workspace, "big"));
    await waitFor(async () => s.context.catalogs.cursor(s.workspaceId) >= cursor + 10_051, { timeoutMs: 30_000, what: "10 051 events" });
    const old = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}`);
    assert.equal(old.json.reset, true, "since older than the buffer");
    const end = s.context.catalogs.cursor(s.workspaceId);
    const recent = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${end - 10}`);
    assert.equal(recent.json.reset, undefined);
    assert.equal(recent.json.items.length, 10);

    // The last session ends → the index is dropped; a new session's old cursor resets.
    assert.equal((await s.request("DELETE", `/files/sessions/${sid}`)).status, 200);
    await waitFor(() => !s.context.catalogs.hasIndex(s.workspaceId), { what: "index dropped" });
    const sid2 = await openSession(s);
    const again = await s.request("GET", `/files/sessions/${sid2}/catalog/events?since=${end}`);
    assert.equal(again.json.reset, true, "changes while no index existed are unknown");
    const snap2 = await s.request("GET", `/files/sessions/${sid2}/catalog/snapshot?limit=1`);
    assert.ok(snap2.json.cursor > end, "seq never repeats");
    assert.equal(snap2.json.total, 10_052);
    assert.equal(snap2.json.truncated, true);
  } finally {
    await s.close();
    await rm(staging, { recursive: true, force: true });
  }
});

/**
 * Runs the server as its own process (a frozen event loop in this one could not even time out),
 * opens a file session, starts `swapperSource` (a Node script renaming in a tight loop until killed,
 * printing "swapping" once it runs) and asserts /health answers within 5 s throughout, the log
 * names the storm, and the index converges once the swapper is gone.
 */
async function assertSurvivesStorm(t: { after(fn: () => unknown): void }, prepare: (ws: string) => Promise<string[]>, swapperSource: string, logLine: RegExp): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), "ow-storm-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  const ws = path.join(root, "ws");
  await mkdir(ws);
  const swapperArgs = await prepare(ws);
  await mkdir(path.join(root, "home"));
  const token = "storm-client-token-0123456789";
  const cli = startCli(["--workspace", ws, "--port", "0", "--token", token, "--host-token", "storm-host-token-0123456789"], { env: { HOME: path.join(root, "home") } });
  const swapper = spawn(process.execPath, ["-e", swapperSource, ...swapperArgs], { stdio: ["ignore", "pipe", "ignore"] });
  const swapperGone = new Promise((r) => swapper.once("exit", r));
  let swapped = false;
  swapper.stdout!.once("data", () => (swapped = true));
  try {
    const url = (await cli.waitForStdout(/listening on (http:\/\/[^\s]+)/, 30_000))[1]!;
    const get = async (p: string, ms: number): Promise<{ status: number; json: any } | string> => {
      try {
        const res = await fetch(`${url}${p}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(ms) });
        return { status: res.status, json: await res.json() };
      } catch (err) {
        return `no answer within ${ms} ms (${(err as Error).name})`;
      }
    };
    const session = await fetch(`${url}/workspace/${workspaceIdOf(ws)}/files/sessions`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
    const sid = ((await session.json()) as { session: { id: string } }).session.id;
    const first = await get(`/files/sessions/${sid}/catalog/snapshot?limit=1`, 10_000);
    assert.equal(typeof first === "string" ? first : first.status, 200, "the first snapshot");
    await waitFor(() => swapped || swapper.exitCode !== null || undefined, { timeoutMs: 20_000, what: "the swapper running" });
    assert.equal(swapper.exitCode, null, "the swapper is running");
    // While the flood lasts, the server keeps answering (before: libuv's inotify loop never
    // yielded and every request hung).
    const until = Date.now() + 3_000;
    for (let i = 0; Date.now() < until; i++) {
      const answer = await get("/health", 5_000);
      assert.equal(typeof answer === "string" ? answer : answer.status, 200, `request ${i} during the rename storm`);
    }
    assert.match(cli.stdout() + cli.stderr(), logLine);
    swapper.kill("SIGKILL");
    await swapperGone;
    // Once it stops, polling brings the index back to what is on disk.
    const model = async () => {
      const answer = await get(`/files/sessions/${sid}/catalog/snapshot?limit=10000`, 10_000);
      return typeof answer === "string" ? new Map<string, string>() : new Map<string, string>(answer.json.items.map((i: { path: string; kind: string; revision?: string }) => [i.path, i.kind === "dir" ? "dir" : i.revision!]));
    };
    let index = new Map<string, string>();
    let disk = new Map<string, string>();
    await waitFor(async () => sameModel((index = await model()), (disk = await walkModel(ws))) || undefined, { timeoutMs: 30_000, what: "the index converging after the storm" }).catch((err) => {
      assert.deepEqual([...index].sort(), [...disk].sort(), String(err));
      throw err;
    });
  } finally {
    swapper.kill("SIGKILL");
    await swapperGone;
    cli.kill("SIGKILL");
    await cli.exited;
  }
}

test("a local process renaming in a tight loop cannot freeze the server: the flooded folder is polled, /health answers, the index converges", { timeout: 120_000 }, async (t) => {
  // A folder and a link trade places as fast as the kernel allows, until killed: each round moves a
  // watched folder, so events arrive faster than a reader handles them.
  const prepare = async (ws: string) => {
    await mkdir(path.join(ws, "storm/dir"), { recursive: true });
    await mkdir(path.join(ws, "elsewhere"));
    await writeFile(path.join(ws, "storm/dir/a.txt"), "x");
    await symlink("../elsewhere", path.join(ws, "storm/lnk"));
    return [path.join(ws, "storm/dir"), path.join(ws, "storm/lnk")];
  };
  await assertSurvivesStorm(t, prepare, `
    const fs = require("node:fs"); const [dir, lnk] = process.argv.slice(1);
    for (let i = 0; ; i++) {
      try { fs.renameSync(dir, dir + ".real"); fs.renameSync(lnk, dir); fs.renameSync(dir, lnk); fs.renameSync(dir + ".real", dir); }
      catch { try { if (!fs.existsSync(dir)) fs.renameSync(dir + ".real", dir); } catch {} }
      if (i === 1000) process.stdout.write("swapping\\n");
    }
  `, /a folder changes too fast to watch/);
});

test("a rename flood spread over 400 folders, none of them above the per-folder limit, cannot freeze the server either", { timeout: 120_000 }, async (t) => {
  // Each folder sees a few events per flush; together they outrun the reader (before the total
  // limit: no answer to /health within 5 s).
  const prepare = async (ws: string) => {
    for (let i = 0; i < 400; i++) {
      await mkdir(path.join(ws, `s${i}/d`), { recursive: true });
      await writeFile(path.join(ws, `s${i}/d/a.txt`), "x");
    }
    return [ws, "400"];
  };
  await assertSurvivesStorm(t, prepare, `
    const fs = require("node:fs"); const root = process.argv[1]; const n = Number(process.argv[2]);
    for (let i = 0; ; i++) {
      const d = root + "/s" + (i % n) + "/d";
      try { fs.renameSync(d, d + ".x"); fs.renameSync(d + ".x", d); } catch { try { if (!fs.existsSync(d)) fs.renameSync(d + ".x", d); } catch {} }
      if (i === 5000) process.stdout.write("swapping\\n");
    }
  `, /many folders change too fast to watch/);
});
