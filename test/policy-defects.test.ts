// The small defects found by the policy review, one test each (each failed before its fix).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { FileTokenStore } from "../src/auth/tokens.ts";
import { runHostCommand } from "../src/host-cli.ts";
import { firstApproval, startServer } from "./helpers/server.ts";
import { openSession } from "./helpers/catalog.ts";

test("a write-batch item of 3.4–5 MB (under the 5,000,000 limit) is written, not an internal_error", async () => {
  const s = await startServer();
  try {
    const sid = await openSession(s);
    for (const size of [3_400_000, 4_999_999]) {
      const content = Buffer.alloc(size, 0x41 + (size % 7));
      const res = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: `big-${size}.bin`, contentBase64: content.toString("base64") }] } });
      assert.equal(res.status, 200, res.text.slice(0, 200));
      assert.ok((await readFile(join(s.workspace, `big-${size}.bin`))).equals(content));
    }
    const bad = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "x.bin", contentBase64: "QR==" }] } });
    assert.equal(bad.json.items?.[0]?.code ?? bad.json.code, "invalid_payload", "non-canonical base64 is still refused");
  } finally {
    await s.close();
  }
});

test('{"n": 1e400} is refused with 400 invalid_json, never written as null', async () => {
  const s = await startServer();
  try {
    const body = '{"name":"big","config":{"type":"remote","url":"https://mcp.example","timeout":1e400}}';
    const res = await s.request("POST", `/workspace/${s.workspaceId}/mcp`, { body, headers: { "content-type": "application/json" } });
    assert.equal(res.status, 400);
    assert.equal(res.json.code, "invalid_json");
    assert.deepEqual(await readdir(s.workspace), []);
  } finally {
    await s.close();
  }
});

test("a FIFO as server.json or tokens.json fails startup at once with a clear error instead of hanging", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-fifo-"));
  try {
    const fifo = join(dir, "server.json");
    execFileSync("mkfifo", [fifo]);
    await assert.rejects(loadConfig({ argv: ["--config", fifo, "--workspace", dir], env: { HOME: dir }, cwd: dir }), /not a regular JSON file/);
    const tokens = join(dir, "tokens.json");
    execFileSync("mkfifo", [tokens]);
    await assert.rejects(FileTokenStore.open(tokens), /not a regular file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("plugin specs with bidi overrides or C1 controls are refused; approvals list shows client text escaped", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    for (const spec of ["good\u202Egpj.exe", "pkg\u0085name", "zero\u200Bwidth"]) {
      const res = await s.request("POST", `/workspace/${s.workspaceId}/plugins`, { json: { spec } });
      assert.equal(res.status, 400, JSON.stringify(spec));
      assert.equal(res.json.code, "invalid_plugin_spec");
    }
    // An existing file whose name reverses itself on a terminal, deleted by a collaborator.
    const evil = "invoice\u202Efdp.exe";
    await writeFile(join(s.workspace, evil), "x");
    const sid = await openSession(s);
    const pending = s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: [{ type: "delete", path: evil }] } });
    const approval = await firstApproval(s);
    let out = "";
    const io = { env: { HOME: s.home }, cwd: s.parent, stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } };
    assert.equal(await runHostCommand(["approvals", "list", "--url", s.url, "--host-token", s.hostToken], io as never), 0);
    assert.ok(out.includes(approval.id));
    assert.ok(!/[\u0080-\u009f\u202a-\u202e\u2066-\u2069]/.test(out), JSON.stringify(out));
    assert.match(out, /\\u\{202e\}/);
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await pending).status, 403);
  } finally {
    await s.close();
  }
});

test("deleting or renaming a folder that holds a nested .git carries the git-repository risk", async () => {
  const s = await startServer({ approval: "manual", files: { "vendor/lib/.git/HEAD": "ref: refs/heads/main\n", "vendor/lib/a.txt": "a", "plain/b.txt": "b" } });
  try {
    const sid = await openSession(s);
    for (const op of [{ type: "delete", path: "vendor", recursive: true }, { type: "rename", from: "vendor", to: "moved" }]) {
      const pending = s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: [op] } });
      const approval = await firstApproval(s);
      assert.ok(approval.risk.includes("git-repository"), `${op.type}: ${JSON.stringify(approval.risk)}`);
      await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } });
      assert.equal((await pending).status, 403);
    }
    const plain = s.request("POST", `/files/sessions/${sid}/ops`, { json: { operations: [{ type: "delete", path: "plain", recursive: true }] } });
    const approval = await firstApproval(s);
    assert.deepEqual(approval.risk, []);
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } });
    await plain;
  } finally {
    await s.close();
  }
});

test("POST commands?scope=global on a fresh HOME creates the folder and the command", async () => {
  const s = await startServer();
  try {
    const res = await s.request("POST", `/workspace/${s.workspaceId}/commands?scope=global`, { token: await s.mintToken("owner"), json: { name: "greet", template: "Say hello" } });
    // Global commands are the host's: a client token is refused.
    assert.equal((await s.request("POST", `/workspace/${s.workspaceId}/commands?scope=global`, { json: { name: "x", template: "y" } })).status, 403);
    assert.equal(res.status, 200, res.text);
    const file = await readFile(join(s.home, ".config", "opencode", "commands", "greet.md"), "utf8");
    assert.match(file, /Say hello/);
  } finally {
    await s.close();
  }
});

test("one atomic batch naming the same file twice through an inside symlink cannot pass two writes on one revision", async () => {
  const s = await startServer({ files: { "docs/a.md": "v1" } });
  try {
    await symlink("docs", join(s.workspace, "alias"));
    const sid = await openSession(s);
    const read = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["docs/a.md"] } });
    const revision = read.json.items[0].revision;
    const res = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: {
        atomic: true,
        writes: [
          { path: "docs/a.md", contentBase64: Buffer.from("first").toString("base64"), ifMatchRevision: revision },
          { path: "alias/a.md", contentBase64: Buffer.from("second").toString("base64"), ifMatchRevision: revision },
        ],
      },
    });
    assert.notEqual(res.status, 200, res.text);
    assert.equal(await readFile(join(s.workspace, "docs/a.md"), "utf8"), "v1", "nothing written");
  } finally {
    await s.close();
  }
});

test("an outbox file named back\\slash.txt is listed and its id opens it", async () => {
  const s = await startServer();
  try {
    const outbox = join(s.workspace, ".opencode", "openwork", "outbox");
    await mkdir(outbox, { recursive: true });
    await writeFile(join(outbox, "back\\slash.txt"), "literal");
    const list = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`);
    const item = list.json.items.find((i: { path: string }) => i.path === "back\\slash.txt");
    assert.ok(item, list.text);
    const res = await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${item.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.text, "literal");
  } finally {
    await s.close();
  }
});
