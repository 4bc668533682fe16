/** Catalog snapshot: code-unit order, consistent paging, filters, exclusions, parameters. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { workspaceId } from "../src/workspaces.ts";

async function openSession(s: TestServer, token?: string): Promise<string> {
  const r = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {}, ...(token ? { token } : {}) });
  assert.equal(r.status, 200, r.text);
  return r.json.session.id as string;
}

/** Every page with `limit`, following nextAfter. */
async function pageAll(s: TestServer, sid: string, query: string, limit: number): Promise<{ paths: string[]; totals: number[]; pages: number }> {
  const paths: string[] = [];
  const totals: number[] = [];
  let after: string | undefined;
  let pages = 0;
  for (;;) {
    const q = `${query}&limit=${limit}${after !== undefined ? `&after=${encodeURIComponent(after)}` : ""}`;
    const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?${q}`);
    assert.equal(r.status, 200, r.text);
    pages++;
    totals.push(r.json.total);
    paths.push(...r.json.items.map((i: { path: string }) => i.path));
    if (!r.json.truncated) {
      assert.equal(r.json.nextAfter, undefined);
      break;
    }
    assert.equal(r.json.nextAfter, r.json.items.at(-1).path);
    after = r.json.nextAfter;
    assert.ok(pages < 1000, "paging terminates");
  }
  return { paths, totals, pages };
}

const TRICKY = ["B.txt", "a.txt", "_x", "-y", "Zeta", "zeta", "é.md", "e\u0301-nfd.md", "日本.txt", "😀.txt", "ä/inner.txt", "a-b/c.txt", "a/b.txt", "a.b/c.txt", "a0", "A", "~tilde", ".hidden"];

test("paging with limit 1 over names that sort differently under locale and code-unit order: every entry exactly once", async () => {
  const files: Record<string, string> = {};
  for (const f of TRICKY) files[f] = f;
  const s = await startServer({ files });
  try {
    const sid = await openSession(s);
    const full = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?limit=10000`);
    assert.equal(full.status, 200);
    const all: string[] = full.json.items.map((i: { path: string }) => i.path);
    // plain code-unit order, which is what `<` does on JS strings (not localeCompare)
    const expected = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(all, expected);
    assert.notDeepEqual(all, [...all].sort((a, b) => a.localeCompare(b)), "the fixture must actually distinguish the orders");
    for (const f of TRICKY) assert.ok(all.includes(f), `${f} listed`);
    for (const d of ["ä", "a-b", "a", "a.b"]) assert.ok(all.includes(d), `dir ${d} listed`);
    assert.equal(full.json.total, all.length);
    assert.equal(full.json.truncated, false);
    assert.equal(typeof full.json.cursor, "number");
    assert.equal(full.json.sessionId, sid);
    assert.equal(full.json.workspaceId, s.workspaceId);

    const paged = await pageAll(s, sid, "", 1);
    assert.deepEqual(paged.paths, all, "limit=1 paging: same entries, same order, none twice");
    assert.equal(new Set(paged.paths).size, paged.paths.length);
    assert.ok(paged.totals.every((t) => t === all.length));
    const paged3 = await pageAll(s, sid, "includeDirs=false", 3);
    assert.deepEqual(paged3.paths, all.filter((p) => full.json.items.find((i: { path: string }) => i.path === p).kind === "file"));
  } finally {
    await s.close();
  }
});

test("prefix, includeDirs, excludeHeavyDirectories, item shape", async () => {
  const s = await startServer({
    files: {
      "src/a.ts": "a",
      "src/z/deep.ts": "deep",
      "src-other/x.ts": "x",
      "src.txt": "s",
      "node_modules/pkg/index.js": "m",
      "lib/node_modules/p/i.js": "m",
      "empty.txt": "",
    },
  });
  try {
    const sid = await openSession(s);
    const get = async (q: string) => {
      const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?${q}`);
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    const p = await get("prefix=src");
    assert.deepEqual(p.items.map((i: { path: string }) => i.path), ["src", "src/a.ts", "src/z", "src/z/deep.ts"]);
    assert.equal(p.total, 4);
    assert.deepEqual((await get("prefix=src/")).items.map((i: { path: string }) => i.path), ["src", "src/a.ts", "src/z", "src/z/deep.ts"]);
    assert.deepEqual((await get("prefix=src/a.ts")).items.map((i: { path: string }) => i.path), ["src/a.ts"]);
    assert.deepEqual((await get("prefix=nothing")).items, []);
    const files = await get("prefix=src&includeDirs=false");
    assert.deepEqual(files.items.map((i: { path: string }) => i.path), ["src/a.ts", "src/z/deep.ts"]);
    assert.equal(files.total, 2);
    const light = await get("excludeHeavyDirectories=true");
    assert.ok(!light.items.some((i: { path: string }) => i.path.split("/").includes("node_modules")));
    const heavy = await get("");
    assert.ok(heavy.items.some((i: { path: string }) => i.path === "node_modules/pkg/index.js"));
    assert.equal(heavy.total - light.total, 6); // node_modules, pkg, index.js, lib/node_modules, p, i.js
    const a = heavy.items.find((i: { path: string }) => i.path === "src/a.ts");
    assert.equal(a.kind, "file");
    assert.equal(a.size, 1);
    assert.equal(typeof a.mtimeMs, "number");
    assert.equal(typeof a.revision, "string");
    assert.equal(heavy.items.find((i: { path: string }) => i.path === "empty.txt").size, 0);
    const dir = heavy.items.find((i: { path: string }) => i.path === "src");
    assert.equal(dir.kind, "dir");
    assert.equal(dir.size, 0);
    assert.equal(typeof dir.revision, "string");
    // paging + prefix: total counts all pages
    const p1 = await get("prefix=src&limit=1");
    assert.equal(p1.total, 4);
    assert.equal(p1.truncated, true);
    assert.equal(p1.nextAfter, "src");
    const p2 = await get(`prefix=src&limit=2&after=${encodeURIComponent("src/a.ts")}`);
    assert.deepEqual(p2.items.map((i: { path: string }) => i.path), ["src/z", "src/z/deep.ts"]);
    assert.equal(p2.truncated, false);
  } finally {
    await s.close();
  }
});

test(".git, protected paths, symlinks and special files are never listed", async () => {
  const s = await startServer({ files: { "a.txt": "a", ".git/config": "[core]", "sub/.git/HEAD": "x", "sub/b.txt": "b" } });
  const outside = await mkdtemp(path.join(tmpdir(), "ow-cat-out-"));
  try {
    await writeFile(path.join(outside, "secret.txt"), "s");
    await symlink(outside, path.join(s.workspace, "dirlink"));
    await symlink(path.join(outside, "secret.txt"), path.join(s.workspace, "filelink"));
    await symlink(path.join(s.workspace, "a.txt"), path.join(s.workspace, "inside-link"));
    await symlink(path.join(s.workspace, "missing"), path.join(s.workspace, "dangling"));
    execFileSync("mkfifo", [path.join(s.workspace, "fifo")]);
    const sid = await openSession(s);
    const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.items.map((i: { path: string }) => i.path), ["a.txt", "sub", "sub/b.txt"]);
  } finally {
    await s.close();
    await rm(outside, { recursive: true, force: true });
  }
});

test("the server's data dir and token store inside the workspace are hidden from the catalog", async () => {
  // The helper's cwd is the workspace's parent folder, so these land inside the workspace.
  const s = await startServer({
    files: { "a.txt": "a", "owdata/pre-existing.txt": "x" },
    env: { OPENWORK_DATA_DIR: "workspace/owdata", OPENWORK_TOKEN_STORE: "workspace/tokens.json" },
  });
  try {
    await s.mintToken("viewer"); // makes sure the token store file exists
    await writeFile(path.join(s.workspace, "tokens.json.bak"), "not protected");
    const sid = await openSession(s);
    const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`);
    assert.equal(r.status, 200);
    const paths = r.json.items.map((i: { path: string }) => i.path);
    assert.ok(!paths.some((p: string) => p === "owdata" || p.startsWith("owdata/") || p === "tokens.json"), paths.join(","));
    assert.ok(paths.includes("a.txt") && paths.includes("tokens.json.bak"));
    await mkdir(path.join(s.workspace, "owdata", "later"), { recursive: true });
    await writeFile(path.join(s.workspace, "owdata", "later", "x"), "x");
    await writeFile(path.join(s.workspace, "visible.txt"), "v");
    let after: { path: string }[] = [];
    for (let i = 0; i < 300 && !after.some((e) => e.path === "visible.txt"); i++) {
      const ev = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${r.json.cursor}&wait=5`);
      after = ev.json.items;
    }
    assert.ok(after.some((e) => e.path === "visible.txt"));
    assert.ok(!after.some((e) => e.path.startsWith("owdata")), "no events for the protected data dir");
  } finally {
    await s.close();
  }
});

test("bad parameters and foreign sessions", async () => {
  const s = await startServer({ files: { "a.txt": "a" } });
  try {
    const sid = await openSession(s);
    const bad: Array<[string, number, string]> = [
      ["limit=abc", 400, "invalid_payload"],
      ["limit=-1", 400, "invalid_payload"],
      ["limit=0", 400, "invalid_payload"],
      ["includeDirs=maybe", 400, "invalid_payload"],
      ["excludeHeavyDirectories=2", 400, "invalid_payload"],
      ["prefix=..%2Fetc", 400, "invalid_path"],
      ["prefix=a%00b", 400, "invalid_path"],
    ];
    for (const [q, status, code] of bad) {
      const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?${q}`);
      assert.equal(r.status, status, q);
      assert.equal(r.json.code, code, q);
    }
    const big = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?limit=999999`);
    assert.equal(big.status, 200, "limit above the max is clamped");
    const slash = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?prefix=%2F`);
    assert.deepEqual(slash.json.items.map((i: { path: string }) => i.path), ["a.txt"]);
    const unknown = await s.request("GET", `/files/sessions/00000000-0000-4000-8000-000000000000/catalog/snapshot`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, "file_session_not_found");
    const viewer = await s.mintToken("viewer");
    const foreign = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`, { token: viewer });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.json.code, "forbidden");
    const foreignEvents = await s.request("GET", `/files/sessions/${sid}/catalog/events`, { token: viewer });
    assert.equal(foreignEvents.status, 403);
    const none = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`, { token: null });
    assert.equal(none.status, 401);
    // a viewer reads the catalog of its own session (any scope)
    const vsid = await openSession(s, viewer);
    const own = await s.request("GET", `/files/sessions/${vsid}/catalog/snapshot`, { token: viewer });
    assert.equal(own.status, 200);
    assert.deepEqual(own.json.items.map((i: { path: string }) => i.path), ["a.txt"]);
  } finally {
    await s.close();
  }
});

test("a workspace with more entries than the catalog's cap: 507 catalog_too_large (never an index that fills the heap); one that grows past it while indexed resets its followers; the server stays up", async () => {
  const s = await startServer({ catalogMaxEntries: 50 });
  try {
    await mkdir(path.join(s.workspace, "src"));
    for (let i = 0; i < 40; i++) await writeFile(path.join(s.workspace, "src", `f${i}.txt`), "x");
    const sid = await openSession(s);
    const snap = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?limit=100`);
    assert.equal(snap.status, 200, snap.text);
    assert.equal(snap.json.total, 41);
    // Grows past the cap while indexed: the index is dropped, a follower's next poll is a reset.
    for (let i = 40; i < 60; i++) await writeFile(path.join(s.workspace, "src", `f${i}.txt`), "x");
    let reset = false;
    for (let cursor = snap.json.cursor, deadline = Date.now() + 15_000; !reset && Date.now() < deadline; ) {
      const ev = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}&wait=1`);
      assert.equal(ev.status, 200, ev.text);
      reset = ev.json.reset === true;
      if (!reset && ev.json.items.length > 0) cursor = ev.json.items[ev.json.items.length - 1].seq;
    }
    assert.ok(reset, "the follower was told to start over");
    const again = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`);
    assert.equal(again.status, 507, again.text);
    assert.equal(again.json.code, "catalog_too_large");
    assert.equal(again.json.details.maxEntries, 50);
    assert.equal(again.headers["retry-after"], "60");
    assert.equal(s.context.catalogs.hasIndex(s.workspaceId), false, "no index is kept");
    assert.equal((await s.request("GET", "/health")).status, 200);
    assert.ok(s.logs.some((l) => l.msg === "file catalog: workspace too large to index"), "the host is told");
  } finally {
    await s.close();
  }
});

test("a workspace already past the catalog's cap: the first snapshot is 507 catalog_too_large, files routes still work", async () => {
  const s = await startServer({ catalogMaxEntries: 20 });
  try {
    for (let i = 0; i < 30; i++) await writeFile(path.join(s.workspace, `f${i}.txt`), "x");
    const sid = await openSession(s);
    const snap = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`);
    assert.equal(snap.status, 507, snap.text);
    assert.equal(snap.json.code, "catalog_too_large");
    const events = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=0`);
    assert.equal(events.status, 507, events.text);
    const read = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["f1.txt"] } });
    assert.equal(read.status, 200, read.text);
    assert.equal(read.json.items[0].ok, true);
  } finally {
    await s.close();
  }
});

/** Follows a session's events from `cursor` until a write of `rel` arrives (true) or 20 s pass (false). */
async function writeReported(s: TestServer, sid: string, cursor: number, rel: string): Promise<boolean> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
    const ev = await s.request("GET", `/files/sessions/${sid}/catalog/events?since=${cursor}&wait=2`);
    assert.equal(ev.status, 200, ev.text);
    if (ev.json.items.some((e: { type: string; path: string }) => e.type === "write" && e.path === rel)) return true;
    if (ev.json.items.length > 0) cursor = ev.json.items[ev.json.items.length - 1].seq;
  }
  return false;
}

test("past the catalog's inotify cap the other folders are polled: a change there is still reported, the host is told once", async () => {
  const s = await startServer({ catalogMaxWatchers: 3 });
  try {
    for (let i = 0; i < 8; i++) await mkdir(path.join(s.workspace, `d${i}`));
    const sid = await openSession(s);
    const snap = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot`);
    assert.equal(snap.status, 200, snap.text);
    assert.equal(snap.json.total, 8);
    // The root and d0, d1 are watched (walk order); d7 is polled.
    await writeFile(path.join(s.workspace, "d7", "late.txt"), "x");
    assert.ok(await writeReported(s, sid, snap.json.cursor, "d7/late.txt"), "the write in a polled folder is reported");
    assert.equal(s.logs.filter((l) => /more than 3 folders to watch, polling the rest/.test(l.msg)).length, 1);
  } finally {
    await s.close();
  }
});

test("the inotify cap is one budget for all workspaces: a second workspace's index polls what the first left no room for, and dropped indexes give their watches back", async () => {
  const other = await realpath(await mkdtemp(path.join(tmpdir(), "ow-other-")));
  for (let i = 0; i < 4; i++) await mkdir(path.join(other, `e${i}`));
  const s = await startServer({ catalogMaxWatchers: 6, argv: ["--workspace", other] });
  try {
    for (let i = 0; i < 4; i++) await mkdir(path.join(s.workspace, `d${i}`));
    const otherId = workspaceId(other);
    const budget = s.context.catalogs.watchBudget;
    const sid1 = await openSession(s);
    assert.equal((await s.request("GET", `/files/sessions/${sid1}/catalog/snapshot`)).status, 200);
    assert.equal(budget.used, 5, "the first workspace: its root and four folders");
    const r2 = await s.request("POST", `/workspace/${otherId}/files/sessions`, { json: {} });
    assert.equal(r2.status, 200, r2.text);
    const sid2 = r2.json.session.id as string;
    const snap2 = await s.request("GET", `/files/sessions/${sid2}/catalog/snapshot`);
    assert.equal(snap2.status, 200, snap2.text);
    assert.equal(snap2.json.total, 4, "the second workspace is indexed whole");
    assert.equal(budget.used, 6, "never more than the budget");
    // A folder of the second workspace that got no watch is polled: its change is still reported.
    await writeFile(path.join(other, "e3", "late.txt"), "x");
    assert.ok(await writeReported(s, sid2, snap2.json.cursor, "e3/late.txt"), "the write in a polled folder is reported");
    for (const sid of [sid1, sid2]) assert.equal((await s.request("DELETE", `/files/sessions/${sid}`)).status, 200);
    await waitFor(() => budget.used === 0 || undefined, { what: "every watch given back" });
  } finally {
    await s.close();
    await rm(other, { recursive: true, force: true });
  }
});
