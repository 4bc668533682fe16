/**
 * Fault injection on writes (hostile inputs F02): the real CLI runs under strace, which makes
 * fsync fail with EIO (every fsync, or only the target folder's with `-P`). The write must be
 * reported as failed, the old file must be intact (or, when only the folder fsync after the rename
 * fails, complete) and no temp file may remain.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./helpers/wait.ts";

const CLI = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");
const WATCHDOG = new URL("./helpers/exit-with-parent.ts", import.meta.url).href;
const TOKEN = "fault-client-token-0123456789";

const haveStrace = spawnSync("strace", ["-V"]).status === 0;
// Without strace these tests skip locally; in CI (.ci/run installs it) they run and fail instead.
const skipWithoutStrace = haveStrace || process.env.CI ? false : "strace is not installed";

async function withFaultyServer(
  inject: string[],
  traced: string | undefined,
  ws: string,
  home: string,
  fn: (url: string, wsId: string) => Promise<void>,
): Promise<void> {
  assert.ok(haveStrace, "strace is not installed");
  const child = spawn(
    "strace",
    ["-f", "-qq", "-o", "/dev/null", ...inject, ...(traced ? ["-P", traced] : []), process.execPath, "--import", TSX, "--import", WATCHDOG, CLI,
      "--workspace", ws, "--port", "0", "--host", "127.0.0.1", "--token", TOKEN, "--host-token", "fault-host-token-0123", "--approval", "auto", "--data-dir", path.join(home, "data")],
    // detached: own process group, so strace and the traced server can be killed together (a killed
    // strace only detaches from its tracee); stdin is a pipe the server watches (exit-with-parent)
    // so it also goes away if this test process is killed before its cleanup.
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home }, stdio: ["pipe", "pipe", "pipe"], detached: true },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr.resume();
  const exited = new Promise<void>((r) => child.on("close", () => r()));
  try {
    const url = (await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], { timeoutMs: 30_000, what: "server under strace" }))!;
    const wsId = ((await (await fetch(`${url}/workspaces`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { id: string }[] }).items[0]!.id;
    await fn(url, wsId);
  } finally {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
}

async function temps(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).filter((n) => n.endsWith(".tmp"));
}

// (`strace -P` matches only the first path of rename(2), so EXDEV on the rename onto a target
// cannot be aimed at one file; the fsync faults cover the "never report success" rule.)
for (const fault of [
  { name: "EIO on every fsync (F02)", inject: ["-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"], dir: false, pathFilter: false },
  { name: "EIO on fsync of the target's folder (F02)", inject: ["-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"], dir: true, pathFilter: true },
]) {
  test(`write-batch under ${fault.name}: failure reported, old file intact, no temp file`, { skip: skipWithoutStrace }, async () => {
    const root = await mkdtemp(path.join(tmpdir(), "ow-fault-"));
    const ws = path.join(root, "ws");
    const home = path.join(root, "home");
    await mkdir(path.join(ws, "sub"), { recursive: true });
    await mkdir(home);
    const target = path.join(ws, "sub", "target.txt");
    await writeFile(target, "OLD");
    try {
      await withFaultyServer(fault.inject, fault.pathFilter ? path.join(ws, "sub") : undefined, ws, home, async (url, wsId) => {
        const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
        const sid = ((await (await fetch(`${url}/workspace/${wsId}/files/sessions`, { method: "POST", headers: auth, body: "{}" })).json()) as { session: { id: string } }).session.id;
        const res = await fetch(`${url}/files/sessions/${sid}/write-batch`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ writes: [{ path: "sub/target.txt", contentBase64: Buffer.from("NEW").toString("base64") }] }),
        });
        const body = (await res.json()) as { items?: { ok: boolean; code: string }[]; code?: string };
        assert.ok(res.status >= 200 && res.status < 600);
        if (fault.dir) {
          // The rename happened before the failing directory fsync: the new content is complete,
          // but the write is not reported as durable.
          assert.equal(body.items![0]!.ok, false, JSON.stringify(body));
          assert.ok(["OLD", "NEW"].includes(await readFile(target, "utf8")));
        } else {
          // Every fsync fails, the audit log's too: the write-ahead intent cannot be made durable,
          // so the write is refused before anything is touched (never applied unaudited).
          assert.ok(res.status >= 500 || body.items?.[0]?.ok === false, JSON.stringify(body));
          assert.equal(await readFile(target, "utf8"), "OLD");
        }
        assert.deepEqual(await temps(ws), []);
        // the server is still up
        assert.equal((await fetch(`${url}/health`)).status, 200);
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}

test("atomic write-batch failing midway (EIO on the second folder's fsync): the items that landed are audited", { skip: skipWithoutStrace }, async () => {
  const root = await mkdtemp(path.join(tmpdir(), "ow-fault-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(path.join(ws, "a"), { recursive: true });
  await mkdir(path.join(ws, "b"), { recursive: true });
  await mkdir(home);
  try {
    await withFaultyServer(["-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"], path.join(ws, "b"), ws, home, async (url, wsId) => {
      const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
      const sid = ((await (await fetch(`${url}/workspace/${wsId}/files/sessions`, { method: "POST", headers: auth, body: "{}" })).json()) as { session: { id: string } }).session.id;
      const res = await fetch(`${url}/files/sessions/${sid}/write-batch`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ atomic: true, writes: [{ path: "a/one.txt", contentBase64: Buffer.from("ONE").toString("base64") }, { path: "b/two.txt", contentBase64: Buffer.from("TWO").toString("base64") }] }),
      });
      const body = (await res.json()) as { code?: string; details?: { items: { index: number; ok: boolean }[] } };
      assert.ok(res.status >= 500, JSON.stringify(body));
      assert.equal(await readFile(path.join(ws, "a", "one.txt"), "utf8"), "ONE");
      // The answer says which items landed, and the audit log has an entry for each of them.
      assert.deepEqual(body.details?.items.map((i) => i.ok), [true, false], JSON.stringify(body));
      const audit = (await (await fetch(`${url}/workspace/${wsId}/audit`, { headers: auth })).json()) as { items: { action: string; target: string }[] };
      assert.ok(audit.items.some((e) => e.action === "workspace.files.session.write" && e.target === "a/one.txt"), JSON.stringify(audit));
      assert.deepEqual(await temps(ws), []);
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
