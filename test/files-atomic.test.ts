import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat, writeFile, symlink, chmod } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeFileAtomic, withPathLock, removeStaleTempFiles, isTempFileName, tempPathFor, uploadTempName } from "../src/fs/atomic.ts";

async function tmpdir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "ow-atomic-"));
}

test("writeFileAtomic writes, replaces, keeps mode and leaves no temp file", async () => {
  const dir = await tmpdir();
  try {
    const f = path.join(dir, "a.txt");
    await writeFileAtomic(f, "one", { mode: 0o600 });
    assert.equal(await readFile(f, "utf8"), "one");
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    await chmod(f, 0o640);
    const ino1 = (await stat(f)).ino;
    await writeFileAtomic(f, Buffer.from("two"));
    assert.equal(await readFile(f, "utf8"), "two");
    assert.equal((await stat(f)).mode & 0o777, 0o640);
    assert.notEqual((await stat(f)).ino, ino1, "replaced by rename → new inode");
    await writeFileAtomic(f, "");
    assert.equal(await readFile(f, "utf8"), "");
    assert.deepEqual(await readdir(dir), ["a.txt"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("writeFileAtomic replaces a symlink itself, never writes through it", async () => {
  const dir = await tmpdir();
  try {
    const outside = path.join(dir, "outside.txt");
    await writeFile(outside, "keep");
    const link = path.join(dir, "link");
    await symlink(outside, link);
    await writeFileAtomic(link, "new");
    assert.equal(await readFile(outside, "utf8"), "keep");
    assert.equal(await readFile(link, "utf8"), "new");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("writeFileAtomic into a missing directory fails and leaves nothing", async () => {
  const dir = await tmpdir();
  try {
    await assert.rejects(writeFileAtomic(path.join(dir, "nope", "x"), "x"), { code: "ENOENT" });
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("withPathLock serialises holders of the same key and not different keys", async () => {
  const order: string[] = [];
  let inside = 0;
  let maxInside = 0;
  const job = (name: string) =>
    withPathLock("/x/same", async () => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      order.push(name + ":in");
      await new Promise((r) => setImmediate(r));
      order.push(name + ":out");
      inside--;
      return name;
    });
  const results = await Promise.all([job("a"), job("b"), job("c")]);
  assert.deepEqual(results, ["a", "b", "c"]);
  assert.equal(maxInside, 1);
  assert.deepEqual(order, ["a:in", "a:out", "b:in", "b:out", "c:in", "c:out"]);
  // a throwing holder releases the lock
  await assert.rejects(withPathLock("/x/same", async () => { throw new Error("boom"); }));
  assert.equal(await withPathLock("/x/same", async () => 7), 7);
  // different keys run concurrently
  let both = 0;
  let peak = 0;
  const hold = (k: string) => withPathLock(k, async () => { both++; peak = Math.max(peak, both); await new Promise((r) => setImmediate(r)); both--; });
  await Promise.all([hold("/x/1"), hold("/x/2")]);
  assert.equal(peak, 2);
});

test("temp names are recognised and stale ones removed", async () => {
  const dir = await tmpdir();
  try {
    const t1 = tempPathFor(dir);
    const t2 = path.join(dir, uploadTempName());
    assert.ok(isTempFileName(path.basename(t1)));
    assert.ok(isTempFileName(path.basename(t2)));
    assert.ok(!isTempFileName(".upload-x.tmp"));
    assert.ok(!isTempFileName("notes.tmp"));
    await writeFile(t1, "x");
    await writeFile(t2, "y");
    await writeFile(path.join(dir, "keep.tmp"), "z");
    assert.equal(await removeStaleTempFiles(dir), 2);
    assert.deepEqual(await readdir(dir), ["keep.tmp"]);
    assert.equal(await removeStaleTempFiles(path.join(dir, "missing")), 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
