// The OpenWork orchestrator is also a client of this server: `openwork files …` (file sessions,
// catalog, events, read/write/mkdir/rename/delete) and `openwork approvals list|reply` (the host's
// decisions), `openwork status`. Here the real binary (ORCHESTRATOR_BIN, from .ci/orchestrator.sh)
// drives a server started by the test, with manual approvals: every write waits until the host
// allows it through the orchestrator's own `approvals reply`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";

const orchestrator = process.env.ORCHESTRATOR_BIN;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The orchestrator's HOME: its own temp folder (it keeps state there), set by the test. */
let home = tmpdir();

function openwork(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(orchestrator!, args, { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function json(run: Run): any {
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** Runs a writing `openwork files …` command and allows its approval with `openwork approvals reply --allow`. */
async function approvedWrite(s: TestServer, base: string, args: string[]): Promise<any> {
  const host = ["--openwork-url", base, "--host-token", s.hostToken];
  const running = openwork(args, s.workspace);
  const pending = await waitFor(
    async () => (json(await openwork(["approvals", "list", ...host], s.workspace)).items as Array<{ id: string; action: string }>)[0],
    { timeoutMs: 30_000, what: `the approval of ${args.join(" ")}` },
  );
  const replied = json(await openwork(["approvals", "reply", pending.id, "--allow", ...host], s.workspace));
  assert.deepEqual(replied, { ok: true, allowed: true });
  return { approval: pending, result: json(await running) };
}

test("the real orchestrator's files/approvals/status commands work against this server", { timeout: 180_000 }, async (t) => {
  if (!orchestrator) {
    // CI provides it (.ci/orchestrator.sh); there this test must run, never skip.
    assert.ok(!process.env.CI, "ORCHESTRATOR_BIN must be set in CI");
    t.skip("set ORCHESTRATOR_BIN (source .ci/orchestrator.sh)");
    return;
  }
  home = await mkdtemp(join(tmpdir(), "ow-orch-client-home-"));
  t.after(() => rm(home, { recursive: true, force: true }));
  const s = await startServer({ approval: "manual", files: { "p0/notes/a.txt": "hello\n", "p1/notes/a.txt": "hello\n" } });
  t.after(() => s.close());
  const status = json(await openwork(["status", "--openwork-url", s.url, "--json"], s.workspace));
  assert.equal(status.openwork.ok, true);

  // Once on the host's URL, once on the mounted one a remote worker is reached through.
  for (const [n, base] of [s.url, `${s.url}/w/${s.workspaceId}`].entries()) {
    const dir = `p${n}`;
    const at = (rel: string) => join(s.workspace, dir, rel);
    const client = ["--openwork-url", base, "--token", s.clientToken, "--json"];
    const session = json(await openwork(["files", "session", "create", "--workspace-id", s.workspaceId, ...client], s.workspace)).session;
    assert.equal(session.workspaceId, s.workspaceId);
    assert.equal(session.canWrite, true);
    const inSession = [...client, "--session-id", session.id];

    const catalog = json(await openwork(["files", "catalog", ...inSession], s.workspace));
    assert.deepEqual(catalog.items.map((i: { path: string }) => i.path).filter((p: string) => p.startsWith(`${dir}/`)), [`${dir}/notes`, `${dir}/notes/a.txt`]);
    const read = json(await openwork(["files", "read", ...inSession, "--paths", `${dir}/notes/a.txt`], s.workspace));
    assert.equal(Buffer.from(read.items[0].contentBase64, "base64").toString(), "hello\n");

    // Writes wait for the host; the orchestrator's own approvals commands decide.
    const write = await approvedWrite(s, base, ["files", "write", ...inSession, "--path", `${dir}/notes/b.txt`, "--content", "hi there"]);
    assert.equal(write.approval.action, "workspace.files.session.write");
    assert.equal(write.result.items[0].ok, true);
    assert.equal(await readFile(at("notes/b.txt"), "utf8"), "hi there");
    // A stale revision (the write's --if-match) is refused before anyone is asked; nothing changes.
    const stale = json(await openwork(["files", "write", ...inSession, "--path", `${dir}/notes/a.txt`, "--content", "late", "--if-match", "stale-revision"], s.workspace));
    assert.equal(stale.items[0].ok, false);
    assert.equal(stale.items[0].code, "conflict");
    assert.equal(json(await openwork(["approvals", "list", "--openwork-url", base, "--host-token", s.hostToken], s.workspace)).items.length, 0);
    assert.equal(await readFile(at("notes/a.txt"), "utf8"), "hello\n");

    assert.equal((await approvedWrite(s, base, ["files", "mkdir", ...inSession, "--path", `${dir}/d1`])).result.items[0].ok, true);
    assert.equal((await approvedWrite(s, base, ["files", "rename", ...inSession, "--from", `${dir}/notes/b.txt`, "--to", `${dir}/d1/c.txt`])).result.items[0].ok, true);
    assert.equal((await approvedWrite(s, base, ["files", "delete", ...inSession, "--path", `${dir}/notes`, "--recursive"])).result.items[0].ok, true);
    assert.equal(await readFile(at("d1/c.txt"), "utf8"), "hi there");
    await assert.rejects(stat(at("notes")));

    // The session's events since the snapshot's cursor (the documented protocol) name every change.
    assert.equal(typeof catalog.cursor, "number");
    const events = json(await openwork(["files", "events", ...inSession, "--since", String(catalog.cursor)], s.workspace));
    assert.notEqual(events.reset, true);
    const seen = events.items.map((e: { type: string; path: string; toPath?: string }) => [e.type, e.path, e.toPath].filter(Boolean).join(" "));
    for (const want of [`write ${dir}/notes/b.txt`, `mkdir ${dir}/d1`, `rename ${dir}/notes/b.txt ${dir}/d1/c.txt`, `delete ${dir}/notes`]) assert.ok(seen.includes(want), `${want} in ${JSON.stringify(seen)}`);
    // Each of the four writes of this pass is in the audit log.
    const audited = (await readAuditLog(s)).filter((e) => e.action.startsWith("workspace.files") && `${e.target} ${e.summary}`.includes(`${dir}/`));
    assert.ok(audited.length >= 4, JSON.stringify(audited));

    const renewed = json(await openwork(["files", "session", "renew", ...inSession, "--ttl-seconds", "120"], s.workspace));
    assert.equal(renewed.session.id, session.id);
    assert.deepEqual(json(await openwork(["files", "session", "close", ...inSession], s.workspace)), { ok: true });
    const gone = await openwork(["files", "catalog", ...inSession], s.workspace);
    assert.equal(gone.code, 1);
    assert.match(gone.stdout, /404/);
  }
});
