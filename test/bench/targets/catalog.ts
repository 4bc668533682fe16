/**
 * Child process for catalog.bench.ts: generates a tree of BENCH_CATALOG_FILES files (default
 * 100 000) under os.tmpdir, starts our server on it, opens a file session, builds the catalog
 * index (timed) and measures the heap it takes (with a forced GC before and after). Prints one
 * JSON line (including `root`, which the parent deletes), serves until SIGTERM.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { benchRoot, reportAndServe, startBenchServer } from "../target.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const total = Number(process.env.BENCH_CATALOG_FILES ?? 100_000);
const { root, workspace } = await benchRoot("ow-bench-catalog-");
// 100 top folders × 10 sub-folders × N files: a source-tree-like shape.
const perDir = Math.max(1, Math.ceil(total / 1000));
let made = 0;
const genStart = performance.now();
for (let a = 0; a < 100 && made < total; a++) {
  for (let b = 0; b < 10 && made < total; b++) {
    const dir = join(workspace, `pkg-${a}`, `mod-${b}`);
    await mkdir(dir, { recursive: true });
    const n = Math.min(perDir, total - made);
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(join(dir, `file-${i}.ts`), "")));
    made += n;
  }
}
await mkdir(join(workspace, "latency"));
const genMs = performance.now() - genStart;

const { server, url, token } = await startBenchServer(root, workspace, ["--approval", "auto", "--log-format", "json"]);
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const workspaceId = server.context.workspaces.list()[0]!.id;
const session = (await (await fetch(`${url}/workspace/${workspaceId}/files/sessions`, { method: "POST", headers: auth, body: JSON.stringify({ ttlSeconds: 3600 }) })).json()) as { session: { id: string } };
const sid = session.session.id;

gc();
gc();
const heapBefore = process.memoryUsage().heapUsed;
const rssBefore = process.memoryUsage().rss;
const buildStart = performance.now();
const first = (await (await fetch(`${url}/files/sessions/${sid}/catalog/snapshot?limit=1`, { headers: auth })).json()) as { total: number };
const buildMs = performance.now() - buildStart;
gc();
gc();
const heapAfter = process.memoryUsage().heapUsed;
const rssAfter = process.memoryUsage().rss;

// No `root` to delete on stop: the parent deletes the tree (removing 100 000 files can outlast its
// stop() grace period).
reportAndServe(
  { url, token, sid, root, workspace, files: made, entries: first.total, genMs, buildMs, indexHeapBytes: heapAfter - heapBefore, indexRssBytes: rssAfter - rssBefore },
  { server },
);
