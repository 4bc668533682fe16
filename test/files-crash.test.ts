/**
 * Crash safety: a real server process (the CLI) is killed with SIGKILL in the middle of a large
 * inbox upload and in the middle of write-batches. After a restart no target file is torn (old or
 * new content only) and the startup cleanup removes every temp file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { request } from "node:http";
import { startCli, type RunningCli } from "./helpers/cli.ts";
import { waitFor } from "./helpers/wait.ts";
import { multipartParts } from "./helpers/upload.ts";

const TOKEN = "crash-client-token-0123456789";
const HOST = "crash-host-token-0123456789";

async function boot(ws: string, home: string, env: Record<string, string> = {}): Promise<{ cli: RunningCli; url: string }> {
  const cli = startCli(["--workspace", ws, "--port", "0", "--host", "127.0.0.1", "--token", TOKEN, "--host-token", HOST, "--approval", "auto", "--data-dir", path.join(home, "data")], {
    env: { HOME: home, ...env },
  });
  const m = await cli.waitForStdout(/listening on (http:\/\/[^\s]+)/, 30_000);
  return { cli, url: m[1]! };
}

async function kill9(cli: RunningCli): Promise<void> {
  cli.kill("SIGKILL");
  const r = await cli.exited;
  assert.equal(r.signal, "SIGKILL");
}

async function tempFiles(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).filter((n) => /\.(openwork|upload)-[0-9a-f-]{36}\.tmp$/.test(n));
}

function post(url: string, pathname: string, body: Buffer, headers: Record<string, string>): { done: Promise<number> } {
  const done = new Promise<number>((resolve) => {
    const req = request(new URL(pathname, url), { method: "POST", headers: { ...headers, authorization: `Bearer ${TOKEN}`, "content-length": String(body.length) }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", () => resolve(0));
    });
    req.on("error", () => resolve(0));
    req.end(body);
  });
  return { done };
}

test("SIGKILL mid-upload: the target keeps its old content, the staged file is removed on restart", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "ow-crash-up-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(path.join(ws, ".opencode", "openwork", "inbox"), { recursive: true });
  await mkdir(home);
  const target = path.join(ws, ".opencode", "openwork", "inbox", "big.bin");
  await writeFile(target, "OLD");
  let running: RunningCli | undefined;
  try {
    const { cli, url } = await boot(ws, home, { OPENWORK_INBOX_MAX_BYTES: "250000000" });
    running = cli;
    const BND = "crashboundary";
    const size = 200 * 1024 * 1024;
    // Stream the upload; kill the server once its staging file holds some bytes.
    const id = (await (await fetch(`${url}/workspaces`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { id: string }[] };
    const wsId = id.items[0]!.id;
    const up = request(new URL(`/workspace/${wsId}/inbox?path=big.bin`, url), {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": `multipart/form-data; boundary=${BND}` },
      agent: false,
    });
    up.on("error", () => {});
    void (async () => {
      for (const chunk of multipartParts(BND, { filename: "big.bin", size, fill: 0x4e })()) {
        if (up.destroyed) return;
        if (!up.write(chunk)) await new Promise<void>((r) => { up.once("drain", r); up.once("close", r); });
      }
      up.end();
    })();
    const inbox = path.dirname(target);
    await waitFor(async () => {
      for (const n of await tempFiles(inbox)) if ((await stat(path.join(inbox, n))).size > 4 * 1024 * 1024) return true;
      return false;
    }, { timeoutMs: 30_000, intervalMs: 5, what: "a staging file with data" });
    await kill9(cli);
    up.destroy();
    assert.equal(await readFile(target, "utf8"), "OLD");
    assert.ok((await tempFiles(inbox)).length >= 1, "the crash left a staging file behind");
    const again = await boot(ws, home);
    running = again.cli;
    await waitFor(async () => (await tempFiles(ws)).length === 0, { what: "startup cleanup" });
    assert.equal(await readFile(target, "utf8"), "OLD");
    running.kill("SIGTERM");
    await running.exited;
  } finally {
    running?.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  }
});

test("SIGKILL mid write-batch (several trials): every file is all-old or all-new, no temp files after restart", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "ow-crash-wb-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(ws);
  await mkdir(home);
  const N = 32;
  const SIZE = 256 * 1024;
  const oldContent = (i: number) => Buffer.alloc(SIZE, 0x30 + (i % 10));
  for (let i = 0; i < N; i++) await writeFile(path.join(ws, `f${i}.bin`), oldContent(i));
  let running: RunningCli | undefined;
  try {
    let killedMidWrite = 0;
    for (let trial = 0; trial < 4; trial++) {
      const { cli, url } = await boot(ws, home);
      running = cli;
      const wsId = ((await (await fetch(`${url}/workspaces`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { id: string }[] }).items[0]!.id;
      const sres = await fetch(`${url}/workspace/${wsId}/files/sessions`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: "{}" });
      const sid = ((await sres.json()) as { session: { id: string } }).session.id;
      const newContent = (i: number) => Buffer.alloc(SIZE, 0x61 + ((i + trial) % 26));
      const body = Buffer.from(JSON.stringify({ writes: Array.from({ length: N }, (_, i) => ({ path: `f${i}.bin`, contentBase64: newContent(i).toString("base64") })) }));
      const { done } = post(url, `/files/sessions/${sid}/write-batch`, body, { "content-type": "application/json" });
      // Kill as soon as a temp file shows up (or when the batch finished first).
      let finished = false;
      void done.then(() => (finished = true));
      await waitFor(async () => finished || (await tempFiles(ws)).length > 0, { timeoutMs: 30_000, intervalMs: 1, what: "write in progress" });
      if (!finished) killedMidWrite++;
      await kill9(cli);
      await done;
      // Every file is one complete version (the old one, this trial's new one, or an earlier trial's).
      for (let i = 0; i < N; i++) {
        const data = await readFile(path.join(ws, `f${i}.bin`));
        assert.equal(data.length, SIZE, `f${i} torn (length ${data.length})`);
        assert.ok(data.every((b) => b === data[0]), `f${i} mixes two versions`);
      }
      const again = await boot(ws, home);
      running = again.cli;
      await waitFor(async () => (await tempFiles(ws)).length === 0, { what: "temp files cleaned after restart" });
      again.cli.kill("SIGTERM");
      await again.cli.exited;
    }
    assert.ok(killedMidWrite >= 1, "at least one trial killed the server in the middle of the batch");
  } finally {
    running?.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  }
});
