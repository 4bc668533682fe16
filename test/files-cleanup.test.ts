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

test("workspace folder deleted while running (F07): cleanup never throws, file routes answer 404", async () => {
  const s = await startServer();
  try {
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const { rm } = await import("node:fs/promises");
    await rm(s.workspace, { recursive: true, force: true });
    await cleanupStaleTempFiles(s.context);
    const r = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["a"] } });
    assert.equal(r.status, 404);
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "a", contentBase64: "" }] } });
    assert.equal(w.status, 404);
    const a = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`);
    assert.ok([200, 404].includes(a.status), a.text);
    assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
  } finally {
    await s.close();
  }
});
