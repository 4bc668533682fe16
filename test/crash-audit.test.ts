// SIGKILL at random moments: a real server process (the CLI) killed while it applies writes, an
// import of 40 skills over 10, or skill deletes; after a restart every applied write has its audit
// record, no import is partial, and no staged file or moved-aside folder is left. Kill counts come
// from CRASH_TRIALS (default 8 per test; `npm run soak` runs 40).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startCli, type RunningCli } from "./helpers/cli.ts";
import { verifyAuditFile } from "../src/audit.ts";
import { workspaceId } from "../src/workspaces.ts";
import { waitFor } from "./helpers/wait.ts";

const TRIALS = Number(process.env.CRASH_TRIALS ?? 8);
const TOKEN = "crash-client-token-0123456789";

async function boot(ws: string, home: string): Promise<{ cli: RunningCli; url: string }> {
  const cli = startCli(["--workspace", ws, "--port", "0", "--token", TOKEN, "--host-token", "crash-host-0123456789", "--approval", "auto", "--data-dir", path.join(home, "data")], { env: { HOME: home } });
  const m = await cli.waitForStdout(/listening on (http:\/\/[^\s]+)/, 30_000);
  return { cli, url: m[1]! };
}

async function kill9(cli: RunningCli): Promise<void> {
  cli.kill("SIGKILL");
  await cli.exited;
}

/** Fires requests until the process dies (answers and connection errors are both expected). */
function hammer(url: string, pathname: string, body: (i: number) => unknown): { stop(): void; done: Promise<void> } {
  let stopped = false;
  const done = (async () => {
    for (let i = 0; !stopped; i++) {
      await fetch(`${url}${pathname}`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body(i)) }).then((r) => r.arrayBuffer(), () => undefined);
    }
  })();
  return { stop: () => (stopped = true), done };
}

const randomDelay = () => new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 120)));

async function auditLines(home: string, ws: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path.join(home, "data", "audit", `${workspaceId(ws)}.jsonl`), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).filter((n) => /\.(openwork|upload)-[0-9a-f-]{36}\.tmp$/.test(n));
}

test(`SIGKILL during writes (${TRIALS} kills): every file that landed has its audit record; the chain verifies`, async () => {
  const root = await mkdtemp(path.join(tmpdir(), "ow-crash-wal-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(ws);
  await mkdir(home);
  try {
    for (let k = 0; k < TRIALS; k++) {
      const { cli, url } = await boot(ws, home);
      const h = hammer(url, `/workspace/${workspaceId(ws)}/files/content`, (i) => ({ path: `w/k${k}-${i}.txt`, content: `write ${k}-${i}` }));
      await randomDelay();
      await kill9(cli);
      h.stop();
      await h.done;
    }
    const { cli } = await boot(ws, home); // the last start recovers
    // Torn temp files of killed writes are removed by the clean-up that runs after listen()
    // (a large workspace must not delay the start): wait for it, on a busy machine it takes a while.
    await waitFor(async () => (await leftovers(ws)).length === 0 || undefined, { timeoutMs: 30_000, what: "the startup clean-up of torn temp files" });
    await kill9(cli);
    const lines = await auditLines(home, ws);
    const recorded = new Set(lines.filter((l) => l.phase === "intent").map((l) => l.target));
    const landed = (await readdir(path.join(ws, "w")).catch(() => [] as string[])).map((n) => `w/${n}`);
    assert.ok(landed.length > 0, "some writes landed");
    assert.deepEqual(landed.filter((f) => !recorded.has(f)), [], "a write landed without its audit record");
    const intents = lines.filter((l) => l.phase === "intent").map((l) => l.id);
    const closed = new Set(lines.filter((l) => l.phase === "outcome").map((l) => l.intent));
    assert.deepEqual(intents.filter((id) => !closed.has(id)), [], "every intent is closed (applied, failed or interrupted)");
    const verified = await verifyAuditFile(path.join(home, "data", "audit", `${workspaceId(ws)}.jsonl`));
    assert.equal(verified.ok, true, JSON.stringify(verified));
    assert.deepEqual(await leftovers(ws), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

const skill = (name: string, v: string) => `---\nname: ${name}\ndescription: ${v}\n---\n# ${name}\n`;

test(`SIGKILL during imports and skill deletes (${TRIALS} kills): never partial, no leftover folder after restart`, async () => {
  const root = await mkdtemp(path.join(tmpdir(), "ow-crash-import-"));
  const ws = path.join(root, "ws");
  const home = path.join(root, "home");
  await mkdir(home);
  const OLD = Array.from({ length: 10 }, (_, i) => `old-${i}`);
  const NEW = Array.from({ length: 40 }, (_, i) => `new-${i}`);
  try {
    for (let k = 0; k < TRIALS; k++) {
      await rm(ws, { recursive: true, force: true });
      for (const n of OLD) {
        await mkdir(path.join(ws, ".opencode/skills", n), { recursive: true });
        await writeFile(path.join(ws, ".opencode/skills", n, "SKILL.md"), skill(n, "old"));
      }
      const { cli, url } = await boot(ws, home);
      const importing = fetch(`${url}/workspace/${workspaceId(ws)}/import`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ mode: { skills: "replace" }, skills: NEW.map((n) => ({ name: n, content: skill(n, "new") })) }),
      }).catch(() => undefined);
      await randomDelay();
      await kill9(cli);
      await importing;
      const { cli: again } = await boot(ws, home); // recovery runs at startup
      await kill9(again);
      const present = new Set(await readdir(path.join(ws, ".opencode/skills")));
      const oldCount = OLD.filter((n) => present.has(n)).length;
      const newCount = NEW.filter((n) => present.has(n)).length;
      assert.ok((oldCount === 10 && newCount === 0) || (oldCount === 0 && newCount === 40), `kill ${k}: partial import (${oldCount} old, ${newCount} new)`);
      for (const n of present) {
        if (n.startsWith(".")) assert.fail(`kill ${k}: leftover ${n}`);
        assert.match(await readFile(path.join(ws, ".opencode/skills", n, "SKILL.md"), "utf8"), oldCount === 10 ? /old/ : /new/);
      }
      assert.deepEqual(await leftovers(ws), [], `kill ${k}: leftover temp files`);
      assert.deepEqual(await readdir(path.join(home, "data", "journal")).catch(() => []), [], "no journal left");
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
