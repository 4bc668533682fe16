/** read-batch, write-batch and files/content: preconditions, atomic batches, approvals, audit, concurrency. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile, readdir, mkdir, utimes } from "node:fs/promises";
import path from "node:path";
import { firstApproval, pendingApprovals, readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

async function session(s: TestServer, token?: string): Promise<string> {
  const r = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, token ? { token, json: {} } : { json: {} });
  assert.equal(r.status, 200, r.text);
  return r.json.session.id;
}

test("read-batch: request order, kinds of failure, limits", async () => {
  const big = Buffer.alloc(5_000_001, 1);
  const s = await startServer({ files: { "a.md": "alpha", "dir/b.txt": "beta", "empty.txt": "" } });
  try {
    await writeFile(path.join(s.workspace, "big.bin"), big);
    const sid = await session(s);
    const r = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["dir/b.txt", "missing", "dir", "big.bin", "a.md", "empty.txt"] } });
    assert.equal(r.status, 200);
    const items = r.json.items;
    assert.deepEqual(items.map((i: { path: string }) => i.path), ["dir/b.txt", "missing", "dir", "big.bin", "a.md", "empty.txt"]);
    assert.equal(Buffer.from(items[0].contentBase64, "base64").toString(), "beta");
    assert.equal(items[0].kind, "file");
    assert.equal(items[0].bytes, 4);
    assert.equal(typeof items[0].revision, "string");
    assert.equal(typeof items[0].updatedAt, "number");
    assert.equal(items[1].code, "file_not_found");
    assert.equal(items[2].code, "file_not_found");
    assert.equal(items[3].code, "file_too_large");
    assert.equal(items[3].maxBytes, 5_000_000);
    assert.equal(items[3].size, 5_000_001);
    assert.equal(items[5].ok, true);
    assert.equal(items[5].contentBase64, "");
    // limits and shapes
    const tooMany = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: Array.from({ length: 65 }, (_, i) => `f${i}`) } });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.json.code, "invalid_payload");
    assert.equal((await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: [] } })).json.code, "invalid_payload");
    assert.equal((await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: "a.md" } })).json.code, "invalid_payload");
    assert.equal((await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["a.md", 7] } })).json.code, "invalid_path");
    assert.equal((await s.request("POST", `/files/sessions/${sid}/read-batch`, { body: "[1]", headers: { "content-type": "application/json" } })).json.code, "invalid_json");
  } finally {
    await s.close();
  }
});

test("write-batch: create, overwrite, revisions, preconditions, strict base64, empty files, order", async () => {
  const s = await startServer({ files: { "a.md": "alpha", "d/x.txt": "x" } });
  try {
    const sid = await session(s);
    const read = async (p: string) => (await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: [p] } })).json.items[0];
    const revA = (await read("a.md")).revision;
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: {
        writes: [
          { path: "new/deep/n.txt", contentBase64: b64("new"), ifNoneMatch: "*" },
          { path: "a.md", contentBase64: b64("alpha2"), ifMatchRevision: revA },
          { path: "empty.txt", contentBase64: "" },
          { path: "bad.txt", contentBase64: "SGVsbG8" }, // missing padding
          { path: "bad2.txt", contentBase64: "SGVs bG8=" }, // whitespace
          { path: "d/x.txt", contentBase64: b64("y"), ifNoneMatch: "*" },
          { path: "d/x.txt2", contentBase64: b64("y"), ifMatchRevision: "stale" },
          { path: "d", contentBase64: b64("y") },
          { path: "a.md/child.txt", contentBase64: b64("y") },
        ],
      },
    });
    assert.equal(w.status, 200, w.text);
    const it = w.json.items;
    assert.equal(typeof w.json.cursor, "number");
    assert.deepEqual(it.map((i: { ok: boolean }) => i.ok), [true, true, true, false, false, false, false, false, false]);
    assert.equal(it[0].previousRevision, null);
    assert.equal(it[1].previousRevision, revA);
    assert.notEqual(it[1].revision, revA);
    assert.equal(it[2].bytes, 0);
    assert.equal(it[3].code, "invalid_payload");
    assert.equal(it[4].code, "invalid_payload");
    assert.equal(it[5].code, "conflict");
    assert.equal(it[6].code, "conflict");
    assert.equal(it[6].expectedRevision, "stale");
    assert.equal(it[6].currentRevision, null);
    assert.equal(it[7].code, "not_a_file");
    assert.equal(it[8].code, "conflict");
    assert.match(it[8].message, /parent/);
    assert.equal(await readFile(path.join(s.workspace, "new/deep/n.txt"), "utf8"), "new");
    assert.equal(await readFile(path.join(s.workspace, "a.md"), "utf8"), "alpha2");
    assert.equal(await readFile(path.join(s.workspace, "empty.txt"), "utf8"), "");
    assert.equal(await readFile(path.join(s.workspace, "d/x.txt"), "utf8"), "x");
    assert.equal((await read("a.md")).revision, it[1].revision);

    // same size, same content, immediately again: still a new revision (new inode)
    const again = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "a.md", contentBase64: b64("alpha2") }] } });
    assert.notEqual(again.json.items[0].revision, it[1].revision);
    // stale ifMatchRevision → conflict with both revisions; force overrides
    const stale = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "a.md", contentBase64: b64("z"), ifMatchRevision: it[1].revision }] } });
    assert.equal(stale.json.items[0].code, "conflict");
    assert.equal(stale.json.items[0].expectedRevision, it[1].revision);
    assert.equal(stale.json.items[0].currentRevision, again.json.items[0].revision);
    const forced = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "a.md", contentBase64: b64("z"), ifMatchRevision: "whatever", force: true }] } });
    assert.equal(forced.json.items[0].ok, true);
    assert.equal(await readFile(path.join(s.workspace, "a.md"), "utf8"), "z");

    // whole-request failures
    const dup = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "q", contentBase64: "" }, { path: "./q", contentBase64: "" }] } });
    assert.equal(dup.status, 400);
    assert.equal(dup.json.code, "invalid_payload");
    const many = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: Array.from({ length: 65 }, (_, i) => ({ path: `m${i}`, contentBase64: "" })) } });
    assert.equal(many.status, 400);
    const trav = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "ok.txt", contentBase64: "" }, { path: "../evil", contentBase64: "" }] } });
    assert.equal(trav.status, 400);
    assert.equal(trav.json.code, "invalid_path");
    await assert.rejects(readFile(path.join(s.workspace, "ok.txt")));
    // too large item
    const huge = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "huge.bin", contentBase64: Buffer.alloc(5_000_001).toString("base64") }] } });
    assert.equal(huge.json.items[0].code, "file_too_large");
    await assert.rejects(readFile(path.join(s.workspace, "huge.bin")));
    // no temp files anywhere
    const names = await readdir(s.workspace, { recursive: true });
    assert.deepEqual(names.filter((n) => String(n).includes(".tmp")), []);
  } finally {
    await s.close();
  }
});

test("write-batch atomic: any failing item → 409 conflict and nothing written", async () => {
  const s = await startServer({ files: { "keep.txt": "keep" } });
  try {
    const sid = await session(s);
    const before = await snapshotTree(s.parent);
    const r = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { atomic: true, writes: [{ path: "one.txt", contentBase64: b64("1") }, { path: "keep.txt", contentBase64: b64("2"), ifNoneMatch: "*" }] },
    });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "conflict");
    assert.equal(r.json.details.items.length, 1);
    assert.equal(r.json.details.items[0].index, 1);
    assert.equal(r.json.details.items[0].path, "keep.txt");
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
    const ok = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { atomic: true, writes: [{ path: "one.txt", contentBase64: b64("1") }, { path: "two.txt", contentBase64: b64("2") }] },
    });
    assert.equal(ok.status, 200);
    assert.equal(await readFile(path.join(s.workspace, "two.txt"), "utf8"), "2");
  } finally {
    await s.close();
  }
});

test("one approval per batch with each path, bytes, sha256 and op; denied → nothing written; audit per item", async () => {
  const s = await startServer({ approval: "manual", files: { "old.txt": "old" } });
  try {
    const sid = await session(s);
    const before = await snapshotTree(s.parent);
    const pending = s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: [{ path: "old.txt", contentBase64: b64("new") }, { path: ".opencode/plugins/p.js", contentBase64: b64("x") }] },
    });
    const list = await waitFor(async () => {
      const l = await pendingApprovals(s);
      return l.length > 0 ? l : undefined;
    }, { what: "approval" });
    assert.equal(list.length, 1);
    const a = list[0];
    assert.equal(a.action, "workspace.files.session.write");
    assert.deepEqual(a.risk, ["executes-code"]);
    assert.deepEqual(a.change.writes, [
      { path: "old.txt", bytes: 3, sha256: "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437", op: "overwrite" },
      { path: ".opencode/plugins/p.js", bytes: 1, sha256: "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", op: "create" },
    ]);
    const deny = await s.request("POST", `/approvals/${a.id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal(deny.status, 200);
    const res = await pending;
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "write_denied");
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });

    // allowed → each item audited
    const p2 = s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "a.txt", contentBase64: b64("a") }, { path: "b.txt", contentBase64: b64("b") }] } });
    const id2 = (await firstApproval(s)).id;
    await s.request("POST", `/approvals/${id2}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal((await p2).status, 200);
    const audit = await readAuditLog(s);
    const writes = audit.filter((e) => e.action === "workspace.files.session.write");
    assert.deepEqual(writes.map((e) => e.target), ["a.txt", "b.txt"]);
    assert.ok(audit.some((e) => e.action === "approval.denied"));

    // validation failure never creates an approval
    const bad = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "../x", contentBase64: "" }] } });
    assert.equal(bad.status, 400);
    const allFail = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "x", contentBase64: "!!" }] } });
    assert.equal(allFail.status, 200);
    assert.equal(allFail.json.items[0].code, "invalid_payload");
    assert.equal((await pendingApprovals(s)).length, 0);
  } finally {
    await s.close();
  }
});

test("read-only server refuses write-batch, ops, inbox and content writes", async () => {
  const s = await startServer({ readOnly: true, files: { "a.txt": "a" } });
  try {
    const sid = await session(s);
    for (const [p, json] of [
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: "a.txt", contentBase64: "" }] }],
      [`/files/sessions/${sid}/ops`, { operations: [{ type: "mkdir", path: "d" }] }],
      [`/workspace/${s.workspaceId}/files/content`, { path: "a.txt", content: "" }],
      [`/workspace/${s.workspaceId}/inbox`, {}],
    ] as const) {
      const r = await s.request("POST", p, { json });
      assert.equal(r.status, 403, p);
      assert.equal(r.json.code, "read_only");
    }
    assert.equal((await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["a.txt"] } })).status, 200);
  } finally {
    await s.close();
  }
});

test("concurrency: two writers with the same ifMatchRevision → exactly one wins", async () => {
  const s = await startServer({ files: { "race.txt": "base" } });
  try {
    const sid = await session(s);
    for (let round = 0; round < 5; round++) {
      const rev = (await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["race.txt"] } })).json.items[0].revision;
      const payloads = ["A".repeat(1000 + round), "B".repeat(2000 + round)];
      const results = await Promise.all(
        payloads.map((p) => s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "race.txt", contentBase64: b64(p), ifMatchRevision: rev }] } })),
      );
      const oks = results.filter((r) => r.json.items[0].ok);
      const conflicts = results.filter((r) => r.json.items[0].code === "conflict");
      assert.equal(oks.length, 1, `round ${round}`);
      assert.equal(conflicts.length, 1);
      const winner = payloads[results.indexOf(oks[0]!)]!;
      assert.equal(await readFile(path.join(s.workspace, "race.txt"), "utf8"), winner);
    }
  } finally {
    await s.close();
  }
});

test("concurrency: 50 writers with the same revision → exactly one wins, the file is one complete payload (J19)", async () => {
  const s = await startServer({ files: { "hot.txt": "base" } });
  try {
    const sid = await session(s);
    const rev = (await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["hot.txt"] } })).json.items[0].revision;
    const payloads = Array.from({ length: 50 }, (_, i) => String.fromCharCode(65 + (i % 26)).repeat(10_000 + i));
    const results = await Promise.all(
      payloads.map((p) => s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "hot.txt", contentBase64: b64(p), ifMatchRevision: rev }] } })),
    );
    const winners = results.map((r, i) => (r.json.items[0].ok ? i : -1)).filter((i) => i >= 0);
    assert.equal(winners.length, 1);
    assert.ok(results.every((r) => r.json.items[0].ok || r.json.items[0].code === "conflict"));
    assert.equal(await readFile(path.join(s.workspace, "hot.txt"), "utf8"), payloads[winners[0]!]);
  } finally {
    await s.close();
  }
});

test("concurrency: 20 parallel batches on different files all land", async () => {
  const s = await startServer();
  try {
    const sid = await session(s);
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.request("POST", `/files/sessions/${sid}/write-batch`, {
          json: { writes: Array.from({ length: 5 }, (_, j) => ({ path: `p${i}/f${j}.txt`, contentBase64: b64(`${i}-${j}`) })) },
        }),
      ),
    );
    for (const r of res) {
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.items.map((x: { ok: boolean }) => x.ok), [true, true, true, true, true]);
    }
    for (let i = 0; i < 20; i++) for (let j = 0; j < 5; j++) assert.equal(await readFile(path.join(s.workspace, `p${i}/f${j}.txt`), "utf8"), `${i}-${j}`);
    const audit = await readAuditLog(s);
    assert.equal(audit.filter((e) => e.action === "workspace.files.session.write").length, 100);
  } finally {
    await s.close();
  }
});

test("files/content: read text, refuse binary, write with baseRevision", async () => {
  const s = await startServer({ files: { "notes.md": "# hi\n", "img.bin": "\u0000\u0001" } });
  try {
    await mkdir(path.join(s.workspace, "folder"));
    const base = `/workspace/${s.workspaceId}/files/content`;
    const g = await s.request("GET", `${base}?path=notes.md`);
    assert.equal(g.status, 200);
    assert.equal(g.json.content, "# hi\n");
    assert.equal(g.json.path, "notes.md");
    assert.equal((await s.request("GET", `${base}?path=img.bin`)).json.code, "unsupported_media");
    assert.equal((await s.request("GET", `${base}?path=img.bin`)).status, 415);
    assert.equal((await s.request("GET", `${base}?path=missing`)).status, 404);
    assert.equal((await s.request("GET", `${base}?path=folder`)).status, 404);
    assert.equal((await s.request("GET", `${base}?path=../x`)).status, 400);
    assert.equal((await s.request("GET", `${base}`)).status, 400);
    const w = await s.request("POST", base, { json: { path: "notes.md", content: "# changed\n", baseRevision: g.json.revision } });
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.previousRevision, g.json.revision);
    const stale = await s.request("POST", base, { json: { path: "notes.md", content: "x", baseRevision: g.json.revision } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.code, "conflict");
    assert.equal(await readFile(path.join(s.workspace, "notes.md"), "utf8"), "# changed\n");
    assert.equal((await s.request("POST", base, { json: { path: "notes.md", content: 5 } })).status, 400);
    const viewer = await s.mintToken("viewer");
    assert.equal((await s.request("POST", base, { token: viewer, json: { path: "notes.md", content: "v" } })).status, 403);
  } finally {
    await s.close();
  }
});

test("files/content: baseUpdatedAt (what the app sends) → 409 'File changed since it was loaded' when stale; sub-ms digits ignored; force skips", async () => {
  const s = await startServer({ files: { "agent.md": "v1\n" }, approval: "manual" });
  try {
    const base = `/workspace/${s.workspaceId}/files/content`;
    const loaded = (await s.request("GET", `${base}?path=agent.md`)).json;
    // Someone else saves in between (a later mtime).
    // Whole seconds: utimes takes float seconds, and a fractional millisecond could round either way.
    const later = new Date(Math.floor(loaded.updatedAt / 1000) * 1000 + 5_000);
    await writeFile(path.join(s.workspace, "agent.md"), "theirs\n");
    await utimes(path.join(s.workspace, "agent.md"), later, later);
    const stale = await s.request("POST", base, { json: { path: "agent.md", content: "mine\n", baseUpdatedAt: loaded.updatedAt + 0.123 } });
    assert.equal(stale.status, 409);
    assert.equal(stale.json.code, "conflict");
    assert.equal(stale.json.message, "File changed since it was loaded");
    assert.equal(stale.json.details.currentUpdatedAt, later.getTime());
    assert.equal(typeof stale.json.details.currentRevision, "string");
    assert.equal((await pendingApprovals(s)).length, 0, "checked before the approval");
    assert.equal(await readFile(path.join(s.workspace, "agent.md"), "utf8"), "theirs\n");
    for (const bad of ["123", true, {}]) {
      assert.equal((await s.request("POST", base, { json: { path: "agent.md", content: "x", baseUpdatedAt: bad } })).json.code, "invalid_payload");
    }
    // Fresh (a reference-style float with sub-ms digits), null, a missing file, or force: no conflict.
    for (const body of [
      { path: "agent.md", content: "mine\n", baseUpdatedAt: later.getTime() + 0.789 },
      { path: "agent.md", content: "again\n", baseUpdatedAt: null },
      { path: "new.md", content: "n\n", baseUpdatedAt: 1 },
      { path: "agent.md", content: "forced\n", baseUpdatedAt: 1, force: true },
    ]) {
      const p = s.request("POST", base, { json: body });
      await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "allow" } });
      assert.equal((await p).status, 200, JSON.stringify(body));
    }
    assert.equal(await readFile(path.join(s.workspace, "agent.md"), "utf8"), "forced\n");
    // Changed while the host was deciding: re-checked under the lock, nothing lands.
    const cur = (await s.request("GET", `${base}?path=agent.md`)).json;
    const p = s.request("POST", base, { json: { path: "agent.md", content: "late\n", baseUpdatedAt: cur.updatedAt } });
    const approval = await firstApproval(s);
    const after = new Date(Math.floor(cur.updatedAt / 1000) * 1000 + 9_000);
    await writeFile(path.join(s.workspace, "agent.md"), "meanwhile\n");
    await utimes(path.join(s.workspace, "agent.md"), after, after);
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal((await p).status, 409);
    assert.equal(await readFile(path.join(s.workspace, "agent.md"), "utf8"), "meanwhile\n");
  } finally {
    await s.close();
  }
});
