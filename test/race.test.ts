// Containment against a racing local process: a child process swaps a workspace folder and a
// symlink to an outside folder in a tight loop (rename, rename, rename, rename — the folder is
// real, missing or the link at any instant) while the server reads, writes, deletes, renames and
// watches through it. Nothing outside may be read, written, created, deleted, renamed in or
// reported. Trial counts come from RACE_TRIALS (default 150; `npm run soak` runs more).
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startServer, readAuditLog, type TestServer } from "./helpers/server.ts";
import { startSwapper } from "./helpers/swapper.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";

const TRIALS = Number(process.env.RACE_TRIALS ?? 150);
const b64 = (s: string) => Buffer.from(s).toString("base64");

interface Arena {
  s: TestServer;
  sid: string;
  outside: string;
  swapper: ChildProcess;
  /** A descriptor of the real inside folder, held by the test. */
  insideFd: number;
  stop(): Promise<void>;
}

/** A workspace whose `dir` races with a link to `outside`; both hold files of the same names. */
async function arena(): Promise<Arena> {
  const s = await startServer({ approval: "auto" });
  const outside = path.join(s.parent, "outside");
  const dir = path.join(s.workspace, "dir");
  for (const base of [dir, outside]) {
    const who = base === dir ? "INSIDE" : "OUTSIDE";
    await mkdir(path.join(base, "tree", "deep"), { recursive: true });
    await writeFile(path.join(base, "f.txt"), who);
    for (let i = 0; i < TRIALS; i++) await writeFile(path.join(base, `v${i}`), who);
    await writeFile(path.join(base, "tree", "deep", "t.txt"), who);
  }
  await writeFile(path.join(outside, "only-outside.txt"), "OUTSIDE");
  await (await import("node:fs/promises")).symlink(outside, path.join(s.workspace, "lnk"));
  await writeFile(path.join(s.workspace, "plain.txt"), "plain");
  const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
  const insideFd = openSync(dir, "r");
  const swapper = startSwapper(dir, path.join(s.workspace, "lnk"));
  return {
    s,
    sid,
    outside,
    swapper,
    insideFd,
    async stop() {
      swapper.kill("SIGKILL");
      await new Promise((r) => swapper.once("exit", r));
      closeSync(insideFd);
      await s.close();
    },
  };
}

test(`reads: ${TRIALS} read-batches of 64 items and ${TRIALS} files/content through a racing folder return 0 outside bytes`, async () => {
  const a = await arena();
  try {
    let outsideItems = 0;
    let okItems = 0;
    for (let i = 0; i < TRIALS; i++) {
      const r = await a.s.request("POST", `/files/sessions/${a.sid}/read-batch`, { json: { paths: Array.from({ length: 64 }, (_, k) => (k % 2 ? "dir/f.txt" : `dir/v${(i + k) % TRIALS}`)) } });
      assert.equal(r.status, 200);
      for (const item of r.json.items) {
        if (!item.ok) continue;
        okItems++;
        if (Buffer.from(item.contentBase64, "base64").toString() !== "INSIDE") outsideItems++;
      }
      const c = await a.s.request("GET", `/workspace/${a.s.workspaceId}/files/content?path=dir/f.txt`);
      if (c.status === 200 && c.json.content !== "INSIDE") outsideItems++;
    }
    assert.equal(outsideItems, 0, "bytes from outside were read");
    assert.ok(okItems > 0, "the race left some reads to succeed");
  } finally {
    await a.stop();
  }
});

test(`writes, mkdir, deletes, renames: ${TRIALS} tries each through a racing folder change nothing outside; every change is audited`, async () => {
  const a = await arena();
  try {
    const before = await snapshotTree(a.outside);
    const ops = (operations: unknown[]) => a.s.request("POST", `/files/sessions/${a.sid}/ops`, { json: { operations } });
    let changes = 0;
    for (let i = 0; i < TRIALS; i++) {
      const w = await a.s.request("POST", `/files/sessions/${a.sid}/write-batch`, { json: { writes: [{ path: `dir/new${i}.txt`, contentBase64: b64("pwned") }] } });
      assert.equal(w.status, 200, w.text);
      const o = await ops([
        { type: "mkdir", path: `dir/made${i}` },
        { type: "delete", path: `dir/v${i}` },
        { type: "rename", from: `dir/v${(i + 1) % TRIALS}`, to: `pulled/v${i}` },
        { type: "rename", from: "plain.txt", to: `dir/planted${i}` },
        { type: "rename", from: `dir/planted${i}`, to: "plain.txt" },
      ]);
      assert.equal(o.status, 200, o.text);
      changes += [w.json.items[0], ...o.json.items].filter((x: { ok: boolean }) => x.ok).length;
    }
    assert.deepEqual(diffSnapshots(before, await snapshotTree(a.outside)), { added: [], removed: [], changed: [] }, "the outside folder changed");
    assert.ok(changes > 0, "the race left some changes to succeed");
    const audited = (await readAuditLog(a.s)).filter((e) => e.action.startsWith("workspace.files.session")).length;
    assert.ok(audited >= changes, `every applied change is audited (${audited} entries for ${changes} changes)`);
  } finally {
    await a.stop();
  }
});

test(`recursive deletes: ${Math.ceil(TRIALS / 1.5)} deletes of a racing folder's tree never touch the outside tree`, async () => {
  const a = await arena();
  try {
    const before = await snapshotTree(a.outside);
    for (let i = 0; i < Math.ceil(TRIALS / 1.5); i++) {
      const r = await a.s.request("POST", `/files/sessions/${a.sid}/ops`, { json: { operations: [{ type: "delete", path: "dir/tree", recursive: true }] } });
      assert.equal(r.status, 200, r.text);
      // Put the inside tree back through a descriptor of the real folder (whatever its name is at
      // the moment), so the test's own restore can never write outside.
      await mkdir(`/proc/self/fd/${a.insideFd}/tree/deep`, { recursive: true }).catch(() => {});
      await writeFile(`/proc/self/fd/${a.insideFd}/tree/deep/t.txt`, "INSIDE").catch(() => {});
    }
    assert.deepEqual(diffSnapshots(before, await snapshotTree(a.outside)), { added: [], removed: [], changed: [] });
  } finally {
    await a.stop();
  }
});

test("catalog: while a folder races with a link to the outside, no event names an outside-only file", async () => {
  const a = await arena();
  try {
    const since = (await a.s.request("GET", `/files/sessions/${a.sid}/catalog/snapshot?limit=1`)).json.cursor;
    // Give the watcher time to see many swaps (bounded by events, not a fixed sleep). Measured on
    // the code before the anchored walk: outside-only names leaked within a few seconds.
    const deadline = Date.now() + Math.max(3_000, TRIALS * 40);
    let seen = 0;
    while (Date.now() < deadline && seen < TRIALS * 20) {
      const page = await a.s.request("GET", `/files/sessions/${a.sid}/catalog/events?since=${since}&wait=1`);
      seen = page.json.items?.length ?? seen;
    }
    const events = (await a.s.request("GET", `/files/sessions/${a.sid}/catalog/events?since=${since}`)).json.items ?? [];
    const leaked = events.filter((e: { path: string; toPath?: string }) => [e.path, e.toPath].some((p) => p?.includes("only-outside")));
    assert.deepEqual(leaked, []);
    const snap = await a.s.request("GET", `/files/sessions/${a.sid}/catalog/snapshot?limit=10000`);
    assert.ok(!snap.json.items.some((i: { path: string }) => i.path.includes("only-outside")), "the index never mirrors outside files");
    assert.deepEqual(await readdir(a.outside).then((n) => n.includes("only-outside.txt")), true);
  } finally {
    await a.stop();
  }
});
