/**
 * Fault injection (hostile inputs F01, F06).
 * F01 ENOSPC: the workspace lives on a 2 MB tmpfs that is filled up; an inbox upload, a session
 * write-batch and a skill write must fail with 507 insufficient_storage, leave the old file
 * byte-identical and no temp file, and the server keeps serving (HOME/data dir are off the tmpfs,
 * so the audit log still works).
 * F06 EMFILE: the real CLI runs under `prlimit --nofile=64:64` and gets 200 concurrent reads; every
 * answer is 200 or a clean JSON 503 (or a per-item error), the process survives, and reads work
 * again once the load stops.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { mkdtemp, mkdir, readFile, readdir, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type TestServer } from "./helpers/server.ts";
import { streamRequest, multipartParts } from "./helpers/upload.ts";
import { readResponse } from "./helpers/response.ts";
import { waitFor } from "./helpers/wait.ts";
import { workspaceId } from "../src/workspaces.ts";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const WATCHDOG = new URL("./helpers/exit-with-parent.ts", import.meta.url).href;

/** Every file below `dir` (relative path → content), to prove nothing changed and no temp file stayed. */
async function contents(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, abs), await readFile(abs));
  }
  return out;
}

function assertSameTree(before: Map<string, Buffer>, after: Map<string, Buffer>): void {
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), "files were added or removed (temp file left?)");
  for (const [rel, data] of before) assert.ok(after.get(rel)!.equals(data), `${rel} changed`);
}

/** Mounts a 2 MB tmpfs (fails under CI when impossible, skips locally), runs fn, always unmounts. */
async function withTmpfs(t: TestContext, fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), "ow-enospc-"));
  const mnt = path.join(root, "mnt");
  await mkdir(mnt);
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], { encoding: "utf8" });
  if (m.status !== 0) {
    await rm(root, { recursive: true, force: true });
    const reason = `cannot mount a tmpfs (needs root): ${(m.stderr || String(m.error)).trim()}`;
    if (process.env.CI) assert.fail(reason);
    t.skip(reason);
    return;
  }
  let failed = false;
  try {
    await fn(mnt);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    const u = spawnSync("umount", ["-l", mnt], { encoding: "utf8" });
    await rm(root, { recursive: true, force: true });
    // (not asserted on top of an earlier failure, which would hide it)
    if (!failed) assert.equal(u.status, 0, `umount failed: ${u.stderr}`);
  }
}

/** Fills the file system of `dir` until about `leaveBytes` remain free. */
async function fillUp(dir: string, leaveBytes: number): Promise<void> {
  const st = await statfs(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  await writeFile(path.join(dir, "filler.bin"), Buffer.alloc(Math.max(0, free - leaveBytes), 0x7a));
  const left = Number((await statfs(dir)).bavail) * Number((await statfs(dir)).bsize);
  assert.ok(left <= leaveBytes + 64 * 1024, `tmpfs still has ${left} bytes free`);
}

function assertNoInternalError(r: { status: number; text: string }): void {
  assert.notEqual(r.status, 500, r.text);
  assert.ok(!/internal_error/.test(r.text), r.text);
}

test("F01 ENOSPC: upload, write-batch and skill write fail with 507, old files intact, no temp files", { timeout: 60_000 }, async (t) => {
  await withTmpfs(t, async (mnt) => {
    const ws = path.join(mnt, "ws");
    const inbox = path.join(ws, ".opencode", "openwork", "inbox");
    const skillFile = path.join(ws, ".opencode", "skills", "demo", "SKILL.md");
    await mkdir(inbox, { recursive: true });
    await mkdir(path.dirname(skillFile), { recursive: true });
    await writeFile(path.join(inbox, "report.bin"), "OLD INBOX FILE");
    await writeFile(path.join(ws, "doc.txt"), "OLD DOCUMENT");
    await writeFile(skillFile, "---\nname: demo\ndescription: Old skill\n---\nOld body\n");
    await fillUp(mnt, 96 * 1024);
    const big = 512 * 1024;
    // HOME and the data dir (audit log) stay on the normal disk; only the workspace is on the tmpfs.
    let s: TestServer | undefined;
    try {
      s = await startServer({ noDefaultWorkspace: true, argv: ["--workspace", ws] });
      const wsId = workspaceId(ws);
      const before = await contents(mnt);

      // (a) multipart inbox upload bigger than the free space, onto an existing name
      const BND = "----owEnospcBoundary42";
      const up = await streamRequest(`${s.url}/workspace/${wsId}/inbox?path=report.bin`, {
        headers: { "content-type": `multipart/form-data; boundary=${BND}`, authorization: `Bearer ${s.clientToken}` },
        chunks: multipartParts(BND, { filename: "report.bin", size: big }),
      });
      assertNoInternalError(up);
      assert.equal(up.status, 507, up.text);
      assert.equal(up.json.code, "insufficient_storage");
      assertSameTree(before, await contents(mnt));
      assert.equal((await s.request("GET", "/health")).status, 200);

      // (b) write-batch overwriting an existing file with more than the free space
      const sid = (await s.request("POST", `/workspace/${wsId}/files/sessions`, { json: {} })).json.session.id as string;
      const wb = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
        json: { writes: [{ path: "doc.txt", contentBase64: Buffer.alloc(big, 0x41).toString("base64") }] },
      });
      assertNoInternalError(wb);
      const code = wb.status === 200 ? wb.json.items?.[0]?.code : wb.json.code;
      if (wb.status === 200) assert.equal(wb.json.items[0].ok, false, wb.text);
      assert.equal(code, "insufficient_storage", wb.text);
      assertSameTree(before, await contents(mnt));
      assert.equal((await s.request("GET", "/health")).status, 200);

      // (c) a configuration write (skill upsert) too big for the disk
      const sk = await s.request("POST", `/workspace/${wsId}/skills`, {
        json: { name: "demo", description: "New skill", content: "New body\n" + "x".repeat(big) },
      });
      assertNoInternalError(sk);
      assert.equal(sk.status, 507, sk.text);
      assert.equal(sk.json.code, "insufficient_storage");
      assertSameTree(before, await contents(mnt));
      assert.equal((await s.request("GET", "/health")).status, 200);
      // the skill still reads as the old one
      assert.match((await s.request("GET", `/workspace/${wsId}/skills/demo`)).text, /Old body/);
    } finally {
      await s?.close();
    }
  });
});

/**
 * One request; a transport error resolves as status 0 (with `agent: false` each request opens its
 * own connection, and Node/libuv resets connections it cannot accept for lack of an fd).
 */
function call(url: string, method: string, headers: Record<string, string>, body?: string, agent: Agent | false = false): Promise<{ status: number; text: string; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve) => {
    const req = httpRequest(url, { method, headers: body ? { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) } : headers, agent }, (res) => {
      readResponse(res).then(({ json, text }) => resolve({ status: res.statusCode ?? 0, text, json }), () => resolve({ status: 0, text: "", json: undefined }));
    });
    req.on("error", () => resolve({ status: 0, text: "", json: undefined }));
    req.end(body);
  });
}

type Answer = Awaited<ReturnType<typeof call>>;

/** Checks each answer is 200 (per-item errors only service_unavailable) or a clean JSON 503; returns a tally. */
function checkAnswers(results: Answer[]): Record<string, number> {
  const tally: Record<string, number> = {};
  for (const r of results) {
    const key = r.status === 0 ? "reset" : r.status === 200 ? "200" : `${r.status}:${r.json?.code}`;
    tally[key] = (tally[key] ?? 0) + 1;
    assert.ok(r.status === 0 || r.status === 200 || r.status === 503, `unexpected ${r.status}: ${r.text}`);
    if (r.status === 503) assert.equal(r.json?.code, "service_unavailable", r.text);
    // no stack trace or internal error text in any answer
    assert.ok(!/internal_error|\.ts:\d+|\n\s+at /.test(r.text), r.text);
    for (const item of r.status === 200 && Array.isArray(r.json?.items) ? r.json.items : []) {
      if (item.ok !== false) continue;
      assert.equal(item.code, "service_unavailable", JSON.stringify(item));
      tally["item:service_unavailable"] = (tally["item:service_unavailable"] ?? 0) + 1;
    }
  }
  return tally;
}

const havePrlimit = spawnSync("prlimit", ["--version"]).status === 0;

// Without prlimit this test skips locally; in CI it runs and fails instead.
test("F06 EMFILE: 200 concurrent reads under nofile=64 answer 200 or clean 503, no crash, then recover", { timeout: 60_000, skip: havePrlimit || process.env.CI ? false : "prlimit is not installed" }, async () => {
  assert.ok(havePrlimit, "prlimit is not installed");
  const root = await mkdtemp(path.join(tmpdir(), "ow-emfile-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(ws);
  await mkdir(home);
  const N = 20;
  for (let i = 0; i < N; i++) await writeFile(path.join(ws, `f${i}.txt`), `file ${i}\n`);
  // Files above the read-batch fast path's size (256 KiB) are opened the careful, parallel way:
  // with them the burst needs more descriptors than the limit allows.
  for (let i = 0; i < N; i++) await writeFile(path.join(ws, `g${i}.bin`), Buffer.alloc(300 * 1024, i));
  const TOKEN = "emfile-client-token-0123456789";
  const child = spawn(
    "prlimit",
    ["--nofile=64:64", process.execPath, "--import", TSX, "--import", WATCHDOG, CLI,
      "--workspace", ws, "--port", "0", "--host", "127.0.0.1", "--token", TOKEN, "--host-token", "emfile-host-token-0123", "--approval", "auto", "--data-dir", path.join(home, "data")],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home }, stdio: ["pipe", "pipe", "pipe"], detached: true },
  );
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) => child.on("close", (c) => { exitCode = c; r(); }));
  try {
    const url = (await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], { timeoutMs: 30_000, what: "server under prlimit" }))!;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const wsId = workspaceId(ws);
    const sid = (await call(`${url}/workspace/${wsId}/files/sessions`, "POST", auth, "{}")).json.session.id as string;
    const fire = (agent: Agent | false) =>
      Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          i % 2 === 0
            ? call(`${url}/workspace/${wsId}/files/content?path=f${i % N}.txt`, "GET", auth, undefined, agent)
            : call(`${url}/files/sessions/${sid}/read-batch`, "POST", auth, JSON.stringify({ paths: Array.from({ length: 8 }, (_, k) => `g${(i + k) % N}.bin`) }), agent),
        ),
      );
    // 1) 200 connections at once: the ones that got an fd are answered 200/503, the rest are reset at accept.
    const burst = checkAnswers(await fire(false));
    const recovered = async (what: string) =>
      waitFor(async () => {
        const r = await call(`${url}/workspace/${wsId}/files/content?path=f0.txt`, "GET", auth);
        return r.status === 200 && r.json.content === "file 0\n";
      }, { timeoutMs: 20_000, what });
    await recovered("reads recover after the burst");
    // 2) the same 200 requests over 16 keep-alive sockets: no resets, the file opens run out of fds.
    const pool = new Agent({ keepAlive: true, maxSockets: 16 });
    // The 16 sockets are connected before the load (while fds are free), so none is reset at accept.
    const warm = await Promise.all(Array.from({ length: 16 }, () => call(`${url}/health`, "GET", {}, undefined, pool)));
    assert.deepEqual(warm.map((r) => r.status), Array(16).fill(200));
    const pooled = checkAnswers(await fire(pool));
    pool.destroy();
    console.log(`# F06 outcomes: burst ${JSON.stringify(burst)}, pooled ${JSON.stringify(pooled)}`);
    assert.ok((burst["200"] ?? 0) > 0, `no request succeeded: ${JSON.stringify(burst)}`);
    assert.equal(pooled.reset, undefined, `pooled requests were reset: ${JSON.stringify(pooled)}`);
    // The limit was really hit by the file opens (else this test proves nothing about EMFILE).
    assert.ok((pooled["503:service_unavailable"] ?? 0) + (pooled["item:service_unavailable"] ?? 0) > 0, `no EMFILE seen: ${JSON.stringify(pooled)}`);
    // Still the same process, and a plain read works again once the load is gone.
    assert.equal(exitCode, undefined, `server exited (${exitCode}): ${err.slice(-2000)}`);
    await recovered("reads recover after the load");
    const rb = await call(`${url}/files/sessions/${sid}/read-batch`, "POST", auth, JSON.stringify({ paths: ["f1.txt", "f2.txt"] }));
    assert.equal(rb.status, 200, rb.text);
    assert.deepEqual(rb.json.items.map((i: { ok: boolean }) => i.ok), [true, true], rb.text);
    assert.equal(exitCode, undefined, "server exited");
    assert.ok(!/unhandled error/.test(out + err), "an EMFILE was logged as an unhandled error");
  } finally {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
    await rm(root, { recursive: true, force: true });
  }
});
