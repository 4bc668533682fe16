/** Startup cleanup of temp files: only our exact temp names, bounded walk, never throws. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readdir, writeFile, symlink } from "node:fs/promises";
import path from "node:path";
import { startServer } from "./helpers/server.ts";
import { cleanupStaleTempFiles } from "../src/files/cleanup.ts";

const U = "0123abcd-0000-4000-8000-00000000beef";

test("cleanupStaleTempFiles removes our temp files only", async () => {
  const s = await startServer();
  try {
    const ws = s.workspace;
    const outside = path.join(s.parent, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, `.openwork-${U}.tmp`), "not ours to touch (behind a symlink)");
    await symlink(outside, path.join(ws, "link"));
    const ours = [`.openwork-${U}.tmp`, `a/b/c/.upload-${U}.tmp`, `.opencode/openwork/inbox/.upload-${U}.tmp`];
    const keep = ["notes.tmp", ".upload-x.tmp", `a/.openwork-${U}.tmp.bak`, `node_modules/.openwork-${U}.tmp`, `.git/.openwork-${U}.tmp`];
    for (const rel of [...ours, ...keep]) {
      await mkdir(path.dirname(path.join(ws, rel)), { recursive: true });
      await writeFile(path.join(ws, rel), "x");
    }
    await mkdir(s.dataDir, { recursive: true });
    await writeFile(path.join(s.dataDir, `.openwork-${U}.tmp`), "x");
    await cleanupStaleTempFiles(s.context);
    const left = (await readdir(ws, { recursive: true })).map(String);
    for (const rel of ours) assert.ok(!left.includes(rel), `${rel} removed`);
    for (const rel of keep) assert.ok(left.includes(rel), `${rel} kept`);
    assert.ok(!(await readdir(s.dataDir)).includes(`.openwork-${U}.tmp`));
    assert.deepEqual(await readdir(outside), [`.openwork-${U}.tmp`]);
  } finally {
    await s.close();
  }
});

test("cleanupStaleTempFiles never throws (missing workspace folder)", async () => {
  const s = await startServer();
  try {
    const { rm } = await import("node:fs/promises");
    await rm(s.workspace, { recursive: true, force: true });
    await cleanupStaleTempFiles(s.context);
  } finally {
    await s.close();
  }
});
