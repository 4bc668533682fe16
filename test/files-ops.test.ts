/** File-session ops: mkdir, delete, rename — results in request order, preconditions, audit. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat, readdir } from "node:fs/promises";
import path from "node:path";
import { pendingApprovals, readAuditLog, startServer } from "./helpers/server.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";

test("ops: mkdir, delete, rename with every documented outcome", async () => {
  const s = await startServer({ files: { "a.txt": "a", "b.txt": "b", "full/x.txt": "x", "full/y/z.txt": "z", "empty/.keep": "" } });
  try {
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const revA = (await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["a.txt"] } })).json.items[0].revision;
    const ops = [
      { type: "mkdir", path: "new/deep" }, // 0 ok created
      { type: "mkdir", path: "new/deep" }, // 1 ok idempotent
      { type: "mkdir", path: "a.txt" }, // 2 file exists
      { type: "rename", from: "b.txt", to: "new/deep/b.txt" }, // 3 depends on 0
      { type: "rename", from: "a.txt", to: "full/x.txt" }, // 4 target exists
      { type: "rename", from: "a.txt", to: "moved/a.txt", ifMatchRevision: "stale" }, // 5 stale
      { type: "rename", from: "a.txt", to: "moved/a.txt", ifMatchRevision: revA }, // 6 ok, parents created
      { type: "rename", from: "full", to: "full/inner" }, // 7 into itself
      { type: "delete", path: "full" }, // 8 non-empty
      { type: "delete", path: "missing.txt" }, // 9
      { type: "delete", path: "full/y", recursive: true }, // 10 ok
      { type: "delete", path: "new/deep/b.txt" }, // 11 ok
      { type: "explode", path: "x" }, // 12 unknown type
      { type: "delete", path: ".git/config" }, // 13 protected
      { type: "rename", from: "full/x.txt", to: "moved/a.txt", overwrite: true }, // 14 overwrite
      { type: "mkdir", path: "CON" }, // 15 not portable
      "not-an-object", // 16
      { type: "delete", path: "empty/.keep" }, // 17 ok
      { type: "delete", path: "empty" }, // 18 ok (now empty)
    ];
    const r = await s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: ops } });
    assert.equal(r.status, 200, r.text);
    const items = r.json.items;
    assert.equal(items.length, ops.length);
    const summary = items.map((i: { ok: boolean; code?: string }) => (i.ok ? "ok" : i.code));
    assert.deepEqual(summary, [
      "ok", "ok", "not_a_directory", "ok", "conflict", "conflict", "ok", "invalid_operation", "directory_not_empty",
      "file_not_found", "ok", "ok", "invalid_operation", "protected_path", "ok", "invalid_path", "invalid_operation", "ok", "ok",
    ]);
    assert.equal(items[0].created, true);
    assert.equal(items[1].created, false);
    assert.equal(items[3].type, "rename");
    assert.equal(items[3].to, "new/deep/b.txt");
    assert.equal(items[12].type, "explode");
    assert.equal(typeof r.json.cursor, "number");
    assert.equal(await readFile(path.join(s.workspace, "moved/a.txt"), "utf8"), "x");
    await assert.rejects(stat(path.join(s.workspace, "a.txt")));
    await assert.rejects(stat(path.join(s.workspace, "full/y")));
    await assert.rejects(stat(path.join(s.workspace, "empty")));
    assert.deepEqual(await readdir(path.join(s.workspace, "new/deep")), []);
    // audit: one entry per applied op that changed something
    const opsAudit = (await readAuditLog(s)).filter((e) => e.action === "workspace.files.session.ops");
    assert.deepEqual(opsAudit.map((e) => e.summary), [
      "Created folder new/deep",
      "Renamed b.txt to new/deep/b.txt",
      "Renamed a.txt to moved/a.txt",
      "Deleted full/y",
      "Deleted new/deep/b.txt",
      "Renamed full/x.txt to moved/a.txt",
      "Deleted empty/.keep",
      "Deleted empty",
    ]);
  } finally {
    await s.close();
  }
});

test("ops: whole-request validation never asks for approval and changes nothing", async () => {
  const s = await startServer({ approval: "manual", files: { "a.txt": "a" } });
  try {
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const before = await snapshotTree(s.parent);
    const bad = [
      { operations: [] },
      { operations: "x" },
      { operations: Array.from({ length: 65 }, () => ({ type: "mkdir", path: "d" })) },
      { operations: [{ type: "delete", path: "../x" }] },
      { operations: [{ type: "delete", path: "" }] },
      { operations: [{ type: "rename", from: "a.txt", to: "/" }] },
    ];
    for (const body of bad) {
      const r = await s.request("POST", `/files/sessions/${sid}/ops`, { json: body });
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.ok(["invalid_payload", "invalid_path"].includes(r.json.code));
    }
    // every op fails its static check → plain answer, no approval
    const r = await s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: [{ type: "nope" }, { type: "delete", path: ".git" }] } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.items.map((i: { code: string }) => i.code), ["invalid_operation", "protected_path"]);
    assert.equal((await pendingApprovals(s)).length, 0);
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
  } finally {
    await s.close();
  }
});
