/**
 * Symlink matrix: file and directory links pointing outside, a link in a parent folder, dangling
 * links (outside and inside), links inside pointing inside — for read-batch, write-batch, rename
 * (both ends), delete, inbox upload target and artifact download. Outside ones are refused with
 * path_outside_workspace and the outside tree is byte-identical afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, writeFile, lstat, readlink } from "node:fs/promises";
import path from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function setup(): Promise<{ s: TestServer; sid: string; outside: string }> {
  const s = await startServer({ files: { "real.txt": "inside", "realdir/f.txt": "in-dir", "plain.txt": "plain" } });
  const outside = path.join(s.parent, "outside");
  await mkdir(outside);
  await writeFile(path.join(outside, "secret.txt"), "SECRET");
  const ws = s.workspace;
  await symlink(path.join(outside, "secret.txt"), path.join(ws, "flink"));
  await symlink(outside, path.join(ws, "dlink"));
  await mkdir(path.join(ws, "sub"));
  await symlink("../../outside", path.join(ws, "sub", "plink"));
  await symlink(path.join(outside, "nothing.txt"), path.join(ws, "dang-out"));
  await symlink("nothing-yet.txt", path.join(ws, "dang-in"));
  await symlink("real.txt", path.join(ws, "ilink"));
  await symlink("realdir", path.join(ws, "idir"));
  const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
  return { s, sid, outside };
}

const OUTSIDE_PATHS = ["flink", "dlink/secret.txt", "dlink/new.txt", "sub/plink/secret.txt", "sub/plink/new/deep.txt", "dang-out"];

test("symlinks pointing outside: every operation refused, outside untouched", async () => {
  const { s, sid } = await setup();
  try {
    const before = await snapshotTree(s.parent);
    const read = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: OUTSIDE_PATHS } });
    assert.equal(read.status, 200);
    assert.deepEqual(read.json.items.map((i: { code: string }) => i.code), OUTSIDE_PATHS.map(() => "path_outside_workspace"));
    assert.ok(!read.text.includes("SECRET") && !read.text.includes(b64("SECRET")));

    const write = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: OUTSIDE_PATHS.map((p) => ({ path: p, contentBase64: b64("pwned") })) } });
    assert.equal(write.status, 200);
    assert.deepEqual(write.json.items.map((i: { code: string }) => i.code), OUTSIDE_PATHS.map(() => "path_outside_workspace"));

    const ops = [
      ...OUTSIDE_PATHS.map((p) => ({ type: "delete", path: p, recursive: true })),
      ...OUTSIDE_PATHS.map((p) => ({ type: "rename", from: p, to: "moved-in.txt" })),
      ...OUTSIDE_PATHS.map((p) => ({ type: "rename", from: "plain.txt", to: p, overwrite: true })),
      { type: "mkdir", path: "dlink/sub" },
      { type: "mkdir", path: "sub/plink/x/y" },
    ];
    const o = await s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: ops } });
    assert.equal(o.status, 200, o.text);
    assert.deepEqual(o.json.items.map((i: { code: string }) => i.code), ops.map(() => "path_outside_workspace"));

    const content = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=flink`);
    assert.equal(content.status, 403);
    assert.equal(content.json.code, "path_outside_workspace");
    const cw = await s.request("POST", `/workspace/${s.workspaceId}/files/content`, { json: { path: "dlink/x.txt", content: "x" } });
    assert.equal(cw.status, 403);
    assert.equal(cw.json.code, "path_outside_workspace");

    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
    assert.equal(await readFile(path.join(s.parent, "outside", "secret.txt"), "utf8"), "SECRET");
  } finally {
    await s.close();
  }
});

test("symlinks inside pointing inside: reads and writes follow them, delete/rename act on the link", async () => {
  const { s, sid } = await setup();
  try {
    const ws = s.workspace;
    const r = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["ilink", "idir/f.txt", "dang-in"] } });
    assert.equal(Buffer.from(r.json.items[0].contentBase64, "base64").toString(), "inside");
    assert.equal(Buffer.from(r.json.items[1].contentBase64, "base64").toString(), "in-dir");
    assert.equal(r.json.items[2].code, "file_not_found");

    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: [{ path: "ilink", contentBase64: b64("via-link") }, { path: "idir/g.txt", contentBase64: b64("g") }, { path: "dang-in", contentBase64: b64("created") }] },
    });
    assert.deepEqual(w.json.items.map((i: { ok: boolean }) => i.ok), [true, true, true], w.text);
    assert.equal(await readFile(path.join(ws, "real.txt"), "utf8"), "via-link");
    assert.ok((await lstat(path.join(ws, "ilink"))).isSymbolicLink(), "the link itself stays a link");
    assert.equal(await readFile(path.join(ws, "realdir", "g.txt"), "utf8"), "g");
    assert.equal(await readFile(path.join(ws, "nothing-yet.txt"), "utf8"), "created");

    const o = await s.request("POST", `/files/sessions/${sid}/ops`, {
      json: { operations: [{ type: "rename", from: "ilink", to: "ilink2" }, { type: "delete", path: "idir" }] },
    });
    assert.deepEqual(o.json.items.map((i: { ok: boolean }) => i.ok), [true, true], o.text);
    assert.equal(await readlink(path.join(ws, "ilink2")), "real.txt");
    await assert.rejects(lstat(path.join(ws, "idir")));
    assert.equal(await readFile(path.join(ws, "realdir", "f.txt"), "utf8"), "in-dir", "delete of a dir link removes the link only");
  } finally {
    await s.close();
  }
});

function multipart(boundary: string, filename: string, content: string): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n${content}\r\n--${boundary}--\r\n`,
  );
}

test("inbox upload target and artifact download through outside symlinks are refused", async () => {
  const { s, outside } = await setup();
  try {
    const inbox = path.join(s.workspace, ".opencode", "openwork", "inbox");
    const outbox = path.join(s.workspace, ".opencode", "openwork", "outbox");
    await mkdir(inbox, { recursive: true });
    await mkdir(outbox, { recursive: true });
    await symlink(outside, path.join(inbox, "out"));
    await symlink(path.join(outside, "secret.txt"), path.join(inbox, "secret-link"));
    await symlink(path.join(outside, "secret.txt"), path.join(outbox, "leak.txt"));
    await symlink(outside, path.join(outbox, "leakdir"));
    await writeFile(path.join(outbox, "ok.txt"), "fine");
    const before = await snapshotTree(s.parent);
    for (const target of ["out/x.txt", "secret-link", "out/secret.txt"]) {
      const r = await s.request("POST", `/workspace/${s.workspaceId}/inbox?path=${encodeURIComponent(target)}`, {
        body: multipart("bnd", "x.txt", "pwned"),
        headers: { "content-type": "multipart/form-data; boundary=bnd" },
      });
      assert.equal(r.status, 403, `${target}: ${r.text}`);
      assert.equal(r.json.code, "path_outside_workspace");
    }
    const list = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`);
    assert.deepEqual(list.json.items.map((i: { path: string }) => i.path), ["ok.txt"]);
    for (const rel of ["leak.txt", "leakdir/secret.txt"]) {
      const d = await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${Buffer.from(rel).toString("base64url")}`);
      assert.equal(d.status, 403, rel);
      assert.equal(d.json.code, "path_outside_workspace");
      assert.ok(!d.text.includes("SECRET"));
    }
    const inboxList = await s.request("GET", `/workspace/${s.workspaceId}/inbox`);
    assert.deepEqual(inboxList.json.items, []);
    const after = await snapshotTree(s.parent);
    assert.deepEqual(diffSnapshots(before, after), { added: [], removed: [], changed: [] });
  } finally {
    await s.close();
  }
});

test(".opencode itself linked outside: inbox and outbox refuse", async () => {
  const s = await startServer();
  try {
    const outside = path.join(s.parent, "outside-oc");
    await mkdir(path.join(outside, "openwork", "outbox"), { recursive: true });
    await writeFile(path.join(outside, "openwork", "outbox", "x.txt"), "x");
    await symlink(outside, path.join(s.workspace, ".opencode"));
    const before = await snapshotTree(s.parent);
    const list = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`);
    assert.equal(list.status, 403);
    assert.equal(list.json.code, "path_outside_workspace");
    const up = await s.request("POST", `/workspace/${s.workspaceId}/inbox`, {
      body: multipart("bnd", "x.txt", "pwned"),
      headers: { "content-type": "multipart/form-data; boundary=bnd" },
    });
    assert.equal(up.status, 403);
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
  } finally {
    await s.close();
  }
});

test("a folder swapped for an outside symlink in a tight loop while writing: nothing remains outside (S05)", async () => {
  const s = await startServer();
  const { rename, rm: rmf, readdir: rd } = await import("node:fs/promises");
  try {
    const outside = path.join(s.parent, "outside-race");
    await mkdir(outside);
    const dir = path.join(s.workspace, "dir");
    await mkdir(dir);
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    let stop = false;
    let swapper: Promise<void> = Promise.resolve();
    try {
    swapper = (async () => {
      while (!stop) {
        try {
          await rename(dir, dir + ".real");
          await symlink(outside, dir + ".lnk");
          await rename(dir + ".lnk", dir);
          await new Promise((r) => setImmediate(r));
          await rmf(dir, { force: true });
          await rename(dir + ".real", dir);
        } catch {
          // a rename raced with the server's mkdir: restore and go on
          await rmf(dir + ".lnk", { force: true }).catch(() => {});
        }
      }
    })();
    const codes = new Map<string, number>();
    for (let i = 0; i < 150; i++) {
      const r = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: `dir/x${i}.txt`, contentBase64: b64("race") }] } });
      assert.equal(r.status, 200, r.text);
      const k = r.json.items[0].ok ? "ok" : r.json.items[0].code;
      codes.set(k, (codes.get(k) ?? 0) + 1);
      assert.ok(["ok", "path_outside_workspace", "conflict", "file_not_found", "not_a_directory"].includes(k), `unexpected ${k}`);
    }
    stop = true;
    await swapper;
    assert.deepEqual(await rd(outside), [], `files leaked outside: ${JSON.stringify([...codes])}`);
    assert.ok((codes.get("path_outside_workspace") ?? 0) + (codes.get("ok") ?? 0) > 0);
    } finally {
      // A failed assertion must not leave the swapper running (the test file would never end).
      stop = true;
      await swapper;
    }
  } finally {
    await s.close();
  }
});

test("special files: a FIFO and a /dev/zero link are never read and never block (S07)", async () => {
  const { execFileSync } = await import("node:child_process");
  const s = await startServer();
  try {
    execFileSync("mkfifo", [path.join(s.workspace, "pipe")]);
    await symlink("/dev/zero", path.join(s.workspace, "zero"));
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const r = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["pipe", "zero"] } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.items.map((i: { code: string }) => i.code), ["file_not_found", "path_outside_workspace"]);
    const c = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=pipe`);
    assert.equal(c.status, 404);
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "pipe", contentBase64: "eA==" }] } });
    assert.equal(w.json.items[0].code, "not_a_file");
  } finally {
    await s.close();
  }
});
