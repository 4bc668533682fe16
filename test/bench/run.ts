/**
 * `npm run bench [filter]`: runs every test/bench/*.bench.ts (default export `run()`) in turn,
 * or only those whose file name contains `filter`.
 */
import { readdir } from "node:fs/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filter = process.argv[2];
const files = (await readdir(dir)).filter((f) => f.endsWith(".bench.ts") && (!filter || f.includes(filter))).sort();
if (files.length === 0) {
  console.error(`No benchmark matches ${JSON.stringify(filter)}`);
  process.exit(1);
}
console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
let failed = 0;
for (const file of files) {
  console.log(`\n## ${file.replace(/\.bench\.ts$/, "")}`);
  const started = performance.now();
  try {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: () => Promise<void> };
    if (typeof mod.default !== "function") throw new Error("no default export run()");
    await mod.default();
    console.log(`(${((performance.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed += 1;
    console.error(`${file} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}
process.exit(failed > 0 ? 1 : 0);
