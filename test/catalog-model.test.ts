/** Model check: a snapshot's cursor followed by the events reproduces the tree after 500 random fs operations. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { startServer } from "./helpers/server.ts";
import { prng } from "./helpers/prng.ts";
import { converge, EventFollower, openSession, sameModel, snapshotModel, walkModel } from "./helpers/catalog.ts";

const DIRS = ["", "a", "b", "a/c", "b/d", "a/c/e", "é"];
const NAMES = ["x.txt", "y.md", "z", "Z", "_u", "-v", "ü.txt"];

test("snapshot + replayed events == fresh walk after 500 seeded random operations", async () => {
  const seed = Number(process.env.CATALOG_MODEL_SEED ?? 20261121);
  const rnd = prng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const s = await startServer({ files: { "a/x.txt": "start", "b/y.md": "start" } });
  try {
    const sid = await openSession(s);
    const { model, cursor } = await snapshotModel(s, sid);
    const f = new EventFollower(s, sid, cursor);
    const abs = (rel: string) => path.join(s.workspace, rel);
    const log: string[] = [];
    for (let i = 0; i < 500; i++) {
      const disk = await walkModel(s.workspace);
      const files = [...disk].filter(([, v]) => v !== "dir").map(([k]) => k);
      const dirs = [...disk].filter(([, v]) => v === "dir").map(([k]) => k);
      const target = path.posix.join(pick(DIRS), pick(NAMES));
      const op = rnd();
      try {
        if (op < 0.3) {
          await mkdir(path.dirname(abs(target)), { recursive: true });
          await writeFile(abs(target), `v${i}`);
          log.push(`write ${target}`);
        } else if (op < 0.4 && files.length) {
          const t = pick(files);
          await appendFile(abs(t), `+${i}`);
          log.push(`append ${t}`);
        } else if (op < 0.5 && files.length) {
          const t = pick(files);
          await rm(abs(t));
          log.push(`rm ${t}`);
        } else if (op < 0.6) {
          const d = path.posix.join(pick(DIRS), pick(["n1", "n2"]));
          await mkdir(abs(d), { recursive: true });
          log.push(`mkdir ${d}`);
        } else if (op < 0.67 && dirs.length) {
          const d = pick(dirs);
          await rm(abs(d), { recursive: true });
          log.push(`rm -r ${d}`);
        } else if (op < 0.8 && (files.length || dirs.length)) {
          const from = pick(rnd() < 0.7 || !dirs.length ? files.length ? files : dirs : dirs);
          const to = path.posix.join(pick(DIRS), pick(NAMES) + (rnd() < 0.5 ? "-r" : ""));
          if (to === from || to.startsWith(from + "/")) continue;
          await mkdir(path.dirname(abs(to)), { recursive: true });
          await rm(abs(to), { recursive: true, force: true });
          await rename(abs(from), abs(to));
          log.push(`mv ${from} ${to}`);
        } else if (files.length) {
          // an editor's save: temp file + rename over the target
          const t = pick(files);
          await writeFile(abs(t) + ".tmp~", `saved ${i}`);
          await rename(abs(t) + ".tmp~", abs(t));
          log.push(`save ${t}`);
        }
      } catch (err) {
        // a random op may race with the tree shape (e.g. a parent that is a file): skip it
        log.push(`skipped (${(err as NodeJS.ErrnoException).code})`);
      }
      // Interleave reads with the writes, as a live client would.
      if (i % 25 === 0) await f.poll(0);
    }
    const disk = await converge(s, f, model, {
      what: "replay == walk",
      timeoutMs: 30_000,
      message: (err) => `seed ${seed}: ${String(err)}\nlast ops: ${log.slice(-20).join("; ")}`,
    });
    assert.ok(f.events.length > 100, `a real workload (${f.events.length} events)`);
    // and a fresh snapshot agrees too
    const fresh = await snapshotModel(s, sid);
    assert.ok(sameModel(fresh.model, disk));
  } finally {
    await s.close();
  }
});
