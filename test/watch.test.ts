/** fs/watch.ts: the live tree mirror behind the catalog (coalescing, lstat confirmation, traps of fs.watch on Linux). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { renameSync, watch, type FSWatcher } from "node:fs";
import { appendFile, lstat, mkdir, mkdtemp, readdir, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { TreeMirror, type TreeChange } from "../src/fs/watch.ts";
import { revisionOf } from "../src/fs/revision.ts";
import { waitFor } from "./helpers/wait.ts";

type Model = Map<string, { kind: string; revision?: string }>;

/** What a client that replays the changes believes the tree is. */
function apply(model: Model, changes: TreeChange[]): void {
  const dropUnder = (rel: string) => {
    for (const k of [...model.keys()]) if (k === rel || k.startsWith(rel + "/")) model.delete(k);
  };
  for (const c of changes) {
    if (c.type === "remove") dropUnder(c.rel);
    else if (c.type === "move") {
      const moved = [...model].filter(([k]) => k === c.from || k.startsWith(c.from + "/"));
      dropUnder(c.from);
      dropUnder(c.to);
      for (const [k, v] of moved) model.set(c.to + k.slice(c.from.length), v);
    } else model.set(c.rel, c.entry.kind === "file" ? { kind: "file", revision: c.entry.revision } : { kind: "dir" });
  }
}

/** A fresh walk of the disk (files with revisions, directories), skipping .git and symlinks. */
async function walk(root: string, rel = "", out: Model = new Map()): Promise<Model> {
  for (const name of await readdir(path.join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (name === ".git") continue;
    const st = await lstat(path.join(root, r), { bigint: true }).catch(() => undefined);
    if (!st) continue;
    if (st.isFile()) out.set(r, { kind: "file", revision: revisionOf(st) });
    else if (st.isDirectory()) {
      out.set(r, { kind: "dir" });
      await walk(root, r, out);
    }
  }
  return out;
}

function same(a: Model, b: Model): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.kind !== v.kind || w.revision !== v.revision) return false;
  }
  return true;
}

async function setup(opts: { watchFn?: typeof watch; pollMs?: number } = {}) {
  const parent = await realpath(await mkdtemp(path.join(tmpdir(), "ow-watch-")));
  const root = path.join(parent, "root");
  await mkdir(root);
  const changes: TreeChange[] = [];
  const model: Model = new Map();
  const make = () =>
    new TreeMirror({
      root,
      exclude: (rel) => rel.split("/").includes(".git"),
      revision: revisionOf,
      onChanges: (c) => {
        changes.push(...c);
        apply(model, c);
      },
      ...(opts.watchFn ? { watchFn: opts.watchFn } : {}),
      ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    });
  return {
    parent,
    root,
    changes,
    model,
    make,
    p: (rel: string) => path.join(root, rel),
    async converge(mirror: TreeMirror, what: string) {
      let disk: Model = new Map();
      const mirrored = (): Model => new Map([...mirror.entries].map(([k, e]) => [k, e.kind === "file" ? { kind: "file", revision: e.revision } : { kind: "dir" }]));
      await waitFor(
        async () => {
          disk = await walk(root);
          return same(model, disk) && same(mirrored(), disk);
        },
        { timeoutMs: 15_000, what },
      ).catch((err) => {
        // Show the difference of whichever side lags; a timeout fails even if both match by now.
        assert.deepEqual([...model].sort(), [...disk].sort(), String(err));
        assert.deepEqual([...mirrored()].sort(), [...disk].sort(), `mirror entries: ${String(err)}`);
        throw err;
      });
    },
    cleanup: () => rm(parent, { recursive: true, force: true }),
  };
}

async function seed(t: Awaited<ReturnType<typeof setup>>, mirror: TreeMirror): Promise<void> {
  await mirror.start();
  for (const [k, e] of mirror.entries) t.model.set(k, e.kind === "file" ? { kind: "file", revision: e.revision } : { kind: "dir" });
}

test("plain fs changes are mirrored: create, modify, rename (file and dir), delete, mkdir -p", async () => {
  const t = await setup();
  await mkdir(t.p("src/lib"), { recursive: true });
  await writeFile(t.p("src/lib/a.ts"), "a");
  const m = t.make();
  try {
    await seed(t, m);
    assert.deepEqual([...m.entries.keys()].sort(), ["src", "src/lib", "src/lib/a.ts"]);
    await writeFile(t.p("new.txt"), "1");
    await t.converge(m, "create");
    await writeFile(t.p("new.txt"), "22");
    await t.converge(m, "modify");
    await rename(t.p("new.txt"), t.p("renamed.txt"));
    await t.converge(m, "file rename");
    assert.ok(t.changes.some((c) => c.type === "move" && c.from === "new.txt" && c.to === "renamed.txt"), "a file rename is one move");
    await rename(t.p("src"), t.p("moved"));
    await t.converge(m, "dir rename");
    assert.ok(t.changes.some((c) => c.type === "move" && c.from === "src" && c.to === "moved"));
    // Node's recursive watcher goes blind under a renamed directory; ours must not.
    await writeFile(t.p("moved/lib/b.ts"), "b");
    await t.converge(m, "write under a renamed dir");
    await mkdir(t.p("x/y/z"), { recursive: true });
    await writeFile(t.p("x/y/z/deep.txt"), "d");
    await t.converge(m, "mkdir -p");
    await rm(t.p("x"), { recursive: true });
    await unlinkAndConverge(t, m);
  } finally {
    m.close();
    await t.cleanup();
  }
});

async function unlinkAndConverge(t: Awaited<ReturnType<typeof setup>>, m: TreeMirror) {
  await rm(t.p("renamed.txt"));
  await t.converge(m, "delete");
  assert.ok(!t.model.has("x/y/z/deep.txt"));
}

test("1000 appends to one file are coalesced; an editor's atomic replace is a modify", async () => {
  const t = await setup();
  await writeFile(t.p("log.txt"), "");
  await writeFile(t.p("doc.md"), "v1");
  const m = t.make();
  try {
    await seed(t, m);
    for (let i = 0; i < 1000; i++) await appendFile(t.p("log.txt"), "x");
    await t.converge(m, "appends");
    const n = t.changes.filter((c) => c.type === "modify" && c.rel === "log.txt").length;
    assert.ok(n >= 1 && n <= 200, `1000 appends gave ${n} changes`);
    t.changes.length = 0;
    // vim/VS Code style: write a temp file, rename it over the target.
    await writeFile(t.p(".doc.md.swp"), "v2");
    await rename(t.p(".doc.md.swp"), t.p("doc.md"));
    await t.converge(m, "atomic replace");
    const forDoc = t.changes.filter((c) => ("rel" in c && c.rel === "doc.md") || (c.type === "move" && (c.to === "doc.md" || c.from === "doc.md")));
    assert.ok(forDoc.length >= 1);
    assert.ok(!t.changes.some((c) => c.type === "remove" && c.rel === "doc.md"), "the target never disappears");
    assert.equal(t.model.get("doc.md")?.revision, revisionOf(await lstat(t.p("doc.md"), { bigint: true })));
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("a directory deleted and re-created under the same name is watched again", async () => {
  const t = await setup();
  await mkdir(t.p("d"));
  await writeFile(t.p("d/old.txt"), "o");
  const m = t.make();
  try {
    await seed(t, m);
    for (let round = 0; round < 3; round++) {
      await rm(t.p("d"), { recursive: true });
      await mkdir(t.p("d"));
      await writeFile(t.p(`d/new${round}.txt`), "n");
      await t.converge(m, `re-created d (round ${round})`);
      // and the new directory is live, not a dead watch on the old inode
      await writeFile(t.p(`d/later${round}.txt`), "l");
      await t.converge(m, `write into re-created d (round ${round})`);
    }
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("rm -r of a tree with 2000 files leaves no phantom entries", async () => {
  const t = await setup();
  const m = t.make();
  try {
    await seed(t, m);
    for (let d = 0; d < 20; d++) {
      await mkdir(t.p(`big/d${d}`), { recursive: true });
      await Promise.all(Array.from({ length: 100 }, (_, i) => writeFile(t.p(`big/d${d}/f${i}.txt`), "x")));
    }
    await t.converge(m, "2000 files created");
    assert.equal([...m.entries.keys()].filter((k) => k.startsWith("big/")).length, 2020);
    await rm(t.p("big"), { recursive: true });
    await t.converge(m, "tree removed");
    assert.equal(m.entries.size, 0);
    assert.equal(m.watcherCount, 1, "only the root is still watched");
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("a symlinked directory pointing outside is not followed (S09/W10)", async () => {
  const t = await setup();
  const outside = path.join(t.parent, "outside");
  await mkdir(outside);
  await writeFile(path.join(outside, "secret.txt"), "s");
  await symlink(outside, t.p("link"));
  await symlink(path.join(outside, "secret.txt"), t.p("filelink"));
  const m = t.make();
  try {
    await seed(t, m);
    assert.deepEqual([...m.entries.keys()], [], "symlinks are not mirrored");
    await writeFile(path.join(outside, "secret.txt"), "changed");
    await writeFile(path.join(outside, "new-outside.txt"), "n");
    await mkdir(path.join(outside, "sub"));
    await writeFile(t.p("sentinel.txt"), "s"); // a later inside change proves the watcher ran past the outside ones
    await waitFor(() => t.model.has("sentinel.txt"), { timeoutMs: 15_000, what: "sentinel" });
    const leaked = t.changes.filter((c) => JSON.stringify(c).includes("link") || JSON.stringify(c).includes("outside") || JSON.stringify(c).includes("secret"));
    assert.deepEqual(leaked, []);
    // A real directory replaced by a symlink to outside: its old entries go, nothing outside comes in.
    await mkdir(t.p("real"));
    await writeFile(t.p("real/a.txt"), "a");
    await t.converge(m, "real dir");
    await rm(t.p("real"), { recursive: true });
    await symlink(outside, t.p("real"));
    await writeFile(path.join(outside, "after-swap.txt"), "x");
    await writeFile(t.p("sentinel2.txt"), "s");
    await t.converge(m, "after swap");
    assert.ok(![...m.entries.keys()].some((k) => k.startsWith("real")));
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("watcher failure (ENOSPC, error event) falls back to polling that subtree (W09)", async () => {
  const made: FSWatcher[] = [];
  const failing = ((p: string, ...rest: unknown[]) => {
    if (p.endsWith(`${path.sep}nowatch`)) throw Object.assign(new Error("no space"), { code: "ENOSPC" });
    const w = (watch as (...a: unknown[]) => FSWatcher)(p, ...rest);
    made.push(w);
    return w;
  }) as unknown as typeof watch;
  const t = await setup({ watchFn: failing, pollMs: 100 });
  await mkdir(t.p("nowatch"));
  await mkdir(t.p("flaky"));
  const m = t.make();
  try {
    await seed(t, m);
    assert.equal(m.degradedCount, 1);
    await writeFile(t.p("nowatch/a.txt"), "a");
    await t.converge(m, "change in an unwatchable dir found by polling");
    // A watcher that reports an error is replaced by polling too.
    assert.ok(made.length >= 2, "root and flaky are watched");
    // every watcher but the root's reports an error (e.g. EIO): "flaky" must fall back to polling
    for (const w of made.slice(1)) w.emit("error", Object.assign(new Error("boom"), { code: "EIO" }));
    assert.ok(m.degradedCount >= 2);
    await writeFile(t.p("flaky/b.txt"), "b");
    await t.converge(m, "change after a watcher error");
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("the workspace folder itself deleted and re-created (F07)", async () => {
  const t = await setup({ pollMs: 100 });
  await writeFile(t.p("a.txt"), "a");
  const m = t.make();
  try {
    await seed(t, m);
    await rm(t.root, { recursive: true });
    await waitFor(() => m.entries.size === 0 && t.model.size === 0, { timeoutMs: 15_000, what: "root removal" });
    await mkdir(t.root);
    await writeFile(t.p("b.txt"), "b");
    await t.converge(m, "root re-created");
    await writeFile(t.p("c.txt"), "c");
    await t.converge(m, "live again");
  } finally {
    m.close();
    await t.cleanup();
  }
});

test("sync() reports a change before it resolves; the watcher echo adds nothing; close() releases every watcher", async () => {
  const made: FSWatcher[] = [];
  let closed = 0;
  const counting = ((...args: unknown[]) => {
    const w = (watch as (...a: unknown[]) => FSWatcher)(...args);
    made.push(w);
    w.on("close", () => closed++);
    return w;
  }) as unknown as typeof watch;
  const t = await setup({ watchFn: counting });
  await mkdir(t.p("d/e"), { recursive: true });
  const m = t.make();
  try {
    await seed(t, m);
    await writeFile(t.p("d/e/f.txt"), "1");
    await m.sync(["d/e/f.txt"]);
    assert.equal(t.changes.length, 1);
    assert.equal(t.changes[0]!.type, "add");
    await mkdir(t.p("p/q"), { recursive: true });
    await writeFile(t.p("p/q/r.txt"), "r");
    await m.sync(["p/q/r.txt"]); // unknown parents: the highest new ancestor is walked
    assert.deepEqual(t.changes.slice(1).map((c) => ("rel" in c ? c.rel : "")), ["p", "p/q", "p/q/r.txt"]);
    await rename(t.p("p"), t.p("p2"));
    await m.sync(["p", "p2"]);
    assert.deepEqual(t.changes.slice(4).map((c) => c.type), ["move"]);
    // the watcher's echo of the same changes finds the mirror current
    await writeFile(t.p("sentinel"), "s");
    await waitFor(() => t.model.has("sentinel"), { what: "sentinel" });
    assert.equal(t.changes.length, 6);
    await t.converge(m, "final");
  } finally {
    m.close();
    try {
      await waitFor(() => closed === made.length, { what: "every watcher closed" });
    } finally {
      await t.cleanup();
    }
  }
});

test("onDirty is synchronous, settled covers the coalescing window, links are leaves, maxWatchers polls the rest", async () => {
  const parent = await realpath(await mkdtemp(path.join(tmpdir(), "ow-watch-opts-")));
  const root = path.join(parent, "root");
  await mkdir(path.join(root, "a/b"), { recursive: true });
  await mkdir(path.join(parent, "outside"));
  const dirty: string[] = [];
  const changes: TreeChange[] = [];
  const m = new TreeMirror({
    root,
    exclude: () => false,
    revision: revisionOf,
    links: true,
    maxWatchers: 2,
    pollMs: 100,
    onDirty: (rel) => dirty.push(rel),
    onChanges: (c) => changes.push(...c),
  });
  try {
    await m.start();
    // Root and "a" are watched; "a/b" is past the cap: polled, so the mirror is never settled.
    assert.equal(m.watcherCount, 2);
    assert.equal(m.degradedCount, 1);
    assert.equal(m.settled, false);
    await writeFile(path.join(root, "a/b/polled.txt"), "x");
    await waitFor(() => changes.some((c) => c.type === "add" && c.rel === "a/b/polled.txt"), { what: "change found by polling" });
    await rm(path.join(root, "a/b"), { recursive: true });
    await waitFor(() => m.degradedCount === 0 && m.settled, { what: "settled once every folder is watched" });

    // A raw event marks the path dirty at once; settled stays false until it was confirmed.
    await writeFile(path.join(root, "f.txt"), "1");
    await waitFor(() => dirty.includes("f.txt"), { what: "onDirty" });
    if (!changes.some((c) => c.type === "add" && c.rel === "f.txt")) assert.equal(m.settled, false);
    await waitFor(() => changes.some((c) => c.type === "add" && c.rel === "f.txt") && m.settled, { what: "f.txt confirmed" });

    // A symlink to a folder outside is a leaf entry: reported, never walked nor watched.
    await symlink(path.join(parent, "outside"), path.join(root, "link"));
    await waitFor(() => changes.some((c) => c.type === "add" && c.rel === "link"), { what: "link added" });
    assert.equal(m.entries.get("link")?.kind, "file");
    await writeFile(path.join(parent, "outside/secret.txt"), "s");
    await writeFile(path.join(root, "barrier.txt"), "b");
    await waitFor(() => changes.some((c) => c.type === "add" && c.rel === "barrier.txt"), { what: "barrier" });
    assert.ok(![...m.entries.keys()].some((k) => k.startsWith("link/")), "nothing behind the link is mirrored");
    assert.equal(m.watcherCount, 2);
  } finally {
    m.close();
    await rm(parent, { recursive: true, force: true });
  }
});

test("a folder swapped away and back while its watch is set up is still listed (its parent polled, no raw event to repair it)", async () => {
  // The root cannot be watched (polled instead), so only the mirror's own re-check can find box/a.txt.
  // Watching `box` moves it away, so the check after the watch fails; the path is moved back the
  // moment the mirror queues its re-check (onDirty runs synchronously), before that check runs.
  const parent = await realpath(await mkdtemp(path.join(tmpdir(), "ow-watch-")));
  const root = path.join(parent, "root");
  await mkdir(path.join(root, "box"), { recursive: true });
  await writeFile(path.join(root, "box/a.txt"), "a");
  const box = path.join(root, "box");
  let swapped = false;
  let awaitingReturn = false;
  const swapping = ((p: string, ...rest: unknown[]) => {
    if (p === root) throw Object.assign(new Error("no space"), { code: "ENOSPC" });
    const w = (watch as (...a: unknown[]) => FSWatcher)(p, ...rest);
    if (p === box && !swapped) {
      swapped = awaitingReturn = true;
      renameSync(box, box + ".away");
    }
    return w;
  }) as unknown as typeof watch;
  const m = new TreeMirror({
    root,
    exclude: () => false,
    revision: revisionOf,
    onChanges: () => {},
    onDirty: (rel) => {
      if (rel === "box" && awaitingReturn) {
        awaitingReturn = false;
        renameSync(box + ".away", box);
      }
    },
    watchFn: swapping,
    pollMs: 100,
  });
  try {
    await m.start();
    assert.ok(swapped && !awaitingReturn, "the swap and its undo happened");
    await waitFor(() => m.entries.has("box/a.txt") || undefined, { timeoutMs: 10_000, what: "box/a.txt listed after the swap" });
    assert.equal(m.entries.get("box")?.kind, "dir");
  } finally {
    m.close();
    await rm(parent, { recursive: true, force: true });
  }
});
