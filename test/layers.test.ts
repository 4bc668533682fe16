// The import rules of src/ hold, and the checker catches each kind of violation (so it can fail).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkLayers } from "./helpers/layers.ts";

test("src/ keeps the layering rules", async () => {
  assert.deepEqual(await checkLayers(fileURLToPath(new URL("../src/", import.meta.url))), []);
});

test("the checker reports a domain→http import, http→domain, route→route, a stray containment check and a stray limit", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "ow-layers-"));
  try {
    const files: Record<string, string> = {
      "workspace/a.ts": 'import { x } from "../http/reply.ts";\n',
      "http/b.ts": 'import { y } from "../files/batch.ts";\n',
      "routes/c.ts": 'import { routes } from "./d.ts";\nimport { READ } from "./shared.ts";\n',
      "fs/e.ts": 'import { z } from "../workspace/skills.ts";\n',
      "files/f.ts": 'const ok = rel.startsWith("..");\n',
      "files/g.ts": "const MAX_THINGS = 5;\n",
    };
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), text);
    }
    const problems = await checkLayers(dir);
    const prefixes = problems.map((p) => p.split(":")[0]).sort();
    assert.deepEqual(prefixes, ["files/f.ts", "files/g.ts", "fs/e.ts", "http/b.ts", "routes/c.ts", "workspace/a.ts"]);
    assert.ok(!problems.some((p) => p.includes("shared.ts")), "routes/shared.ts is allowed");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
