/**
 * Security review regressions: protected paths (.git, data dir, token store, server.json) reached
 * through symlinks in any component, case variants or a parent folder; approvals asked for writes
 * that cannot succeed or that understate their risk; checks not repeated after the approval.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, symlink, writeFile, lstat } from "node:fs/promises";
import path from "node:path";
import { firstApproval, pendingApprovals, startServer } from "./helpers/server.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const BND = "----owsecrev";
const ct = { "content-type": `multipart/form-data; boundary=${BND}` };
function upload(filename: string, content: string): Buffer {
  return Buffer.from(`--${BND}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n\r\n${content}\r\n--${BND}--\r\n`);
}

test("a symlink to .git does not make .git writable or readable (write-batch, ops, content, read-batch)", async () => {
  const s = await startServer({ files: { ".git/config": "[core]\n", ".git/HEAD": "ref: refs/heads/main\n", "a.txt": "a" } });
  try {
    await symlink(".git", path.join(s.workspace, "glink"));
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: [{ path: "glink/config", contentBase64: b64("[core]\n\tfsmonitor = touch /tmp/pwned\n") }, { path: "glink/hooks/x", contentBase64: b64("x") }] },
    });
    assert.equal(w.status, 200, w.text);
    assert.deepEqual(w.json.items.map((i: { code?: string }) => i.code), ["protected_path", "protected_path"]);
    assert.equal(await readFile(path.join(s.workspace, ".git/config"), "utf8"), "[core]\n");
    const r = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["glink/config"] } });
    assert.equal(r.json.items[0].code, "protected_path");
    const o = await s.request("POST", `/files/sessions/${sid}/ops`, {
      json: { operations: [{ type: "rename", from: "a.txt", to: "glink/HEAD", overwrite: true }, { type: "delete", path: "glink/HEAD" }, { type: "mkdir", path: "glink/hooks" }] },
    });
    assert.equal(o.status, 200, o.text);
    assert.deepEqual(o.json.items.map((i: { code?: string }) => i.code), ["protected_path", "protected_path", "protected_path"]);
    const c = await s.request("POST", `/workspace/${s.workspaceId}/files/content`, { json: { path: "glink/config", content: "x" } });
    assert.equal(c.status, 403);
    assert.equal(c.json.code, "protected_path");
    assert.equal(await readFile(path.join(s.workspace, ".git/HEAD"), "utf8"), "ref: refs/heads/main\n");
  } finally {
    await s.close();
  }
});

test("an inbox folder that is a symlink into .git refuses uploads", async () => {
  const s = await startServer({ files: { ".git/config": "[core]\n" } });
  try {
    await mkdir(path.join(s.workspace, ".opencode/openwork"), { recursive: true });
    await symlink("../../.git", path.join(s.workspace, ".opencode/openwork/inbox"));
    const r = await s.request("POST", `/workspace/${s.workspaceId}/inbox?path=config`, { body: upload("config", "[core]\n\tfsmonitor = evil\n"), headers: ct });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.code, "protected_path");
    assert.equal(await readFile(path.join(s.workspace, ".git/config"), "utf8"), "[core]\n");
  } finally {
    await s.close();
  }
});

test("a folder holding the data dir or the token store cannot be deleted or renamed", async () => {
  const s = await startServer({ argv: ["--data-dir", "workspace/state/ow-data"], env: { OPENWORK_TOKEN_STORE: "workspace/secrets/tokens.json" } });
  try {
    await mkdir(path.join(s.workspace, "secrets"), { recursive: true });
    await writeFile(path.join(s.workspace, "secrets", "tokens.json"), "{}");
    await mkdir(path.join(s.context.config.dataDir, "audit"), { recursive: true });
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const o = await s.request("POST", `/files/sessions/${sid}/ops`, {
      json: { operations: [{ type: "delete", path: "state", recursive: true }, { type: "rename", from: "secrets", to: "moved" }, { type: "rename", from: "state", to: "moved2" }] },
    });
    assert.equal(o.status, 200, o.text);
    assert.deepEqual(o.json.items.map((i: { code?: string }) => i.code), ["protected_path", "protected_path", "protected_path"]);
    // Case variants too: on a case-insensitive file system (macOS, Windows) they are the same files.
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: ["State/OW-DATA/audit/x.jsonl", "SECRETS/Tokens.json"].map((p) => ({ path: p, contentBase64: b64("x") })) },
    });
    assert.deepEqual(w.json.items.map((i: { code?: string }) => i.code), ["protected_path", "protected_path"], w.text);
    await lstat(path.join(s.workspace, "secrets", "tokens.json"));
    await lstat(s.context.config.dataDir);
  } finally {
    await s.close();
  }
});

test("a skills folder symlinked to .git: skill delete/upsert cannot reach into .git", async () => {
  const s = await startServer({ files: { ".git/HEAD": "ref: refs/heads/main\n", ".git/objects/ab/cdef": "blob", ".opencode/x": "" } });
  try {
    await symlink("../.git", path.join(s.workspace, ".opencode/skills"));
    const del = await s.request("DELETE", `/workspace/${s.workspaceId}/skills/objects`);
    assert.equal(del.status, 403, del.text);
    assert.equal(del.json.code, "protected_path");
    assert.equal(await readFile(path.join(s.workspace, ".git/objects/ab/cdef"), "utf8"), "blob");
    const up = await s.request("POST", `/workspace/${s.workspaceId}/skills`, { json: { name: "hooks", content: "---\nname: hooks\ndescription: d\n---\nbody\n" } });
    assert.equal(up.status, 403, up.text);
    assert.equal(up.json.code, "protected_path");
    await assert.rejects(lstat(path.join(s.workspace, ".git/hooks")));
  } finally {
    await s.close();
  }
});

test("an outbox symlinked to a project folder does not expose its .git or the token store", async () => {
  const s = await startServer({ env: { OPENWORK_TOKEN_STORE: "workspace/proj/secrets/tokens.json" }, files: { "proj/.git/config": "[remote]\nurl = https://user:SECRET@example.com\n", "proj/ok.txt": "fine" } });
  try {
    await mkdir(path.join(s.workspace, ".opencode/openwork"), { recursive: true });
    await symlink("../../proj", path.join(s.workspace, ".opencode/openwork/outbox"));
    await mkdir(path.join(s.workspace, "proj/secrets"), { recursive: true });
    await writeFile(path.join(s.workspace, "proj/secrets", "tokens.json"), '{"tokens":[{"hash":"SECRETHASH"}]}');
    const viewer = await s.mintToken("viewer");
    const list = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`, { token: viewer });
    assert.equal(list.status, 200, list.text);
    const paths: string[] = list.json.items.map((i: { path: string }) => i.path);
    assert.ok(paths.includes("ok.txt"), list.text);
    assert.ok(!paths.some((p) => p.toLowerCase().startsWith(".git/")), list.text);
    for (const rel of [".git/config", "secrets/tokens.json"]) {
      const id = Buffer.from(rel).toString("base64url");
      const r = await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${id}`, { token: viewer });
      assert.equal(r.status, 403, `${rel}: ${r.text}`);
      assert.equal(r.json.code, "protected_path");
      assert.ok(!r.text.includes("SECRET"));
    }
  } finally {
    await s.close();
  }
});

test("server.json inside the workspace (it may hold the host token) is protected like the token store", async () => {
  const s = await startServer({ argv: ["--config", "workspace/cfg/server.json"], files: { "cfg/server.json": '{"hostToken":"SECRET-HOST-TOKEN-123"}\n' } });
  try {
    assert.equal(path.relative(s.workspace, s.context.config.configPath), path.join("cfg", "server.json"));
    const viewer = await s.mintToken("viewer");
    const vsid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token: viewer, json: {} })).json.session.id;
    const rd = await s.request("POST", `/files/sessions/${vsid}/read-batch`, { token: viewer, json: { paths: ["cfg/server.json"] } });
    assert.equal(rd.json.items[0].code, "protected_path", rd.text);
    assert.ok(!rd.text.includes(b64("SECRET-HOST-TOKEN-123").slice(0, 12)));
    const c = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=cfg/server.json`, { token: viewer });
    assert.equal(c.status, 403, c.text);
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, { json: { writes: [{ path: "cfg/server.json", contentBase64: b64('{"authorizedRoots":["/"]}') }] } });
    assert.equal(w.json.items[0].code, "protected_path", w.text);
    assert.equal(await readFile(path.join(s.workspace, "cfg/server.json"), "utf8"), '{"hostToken":"SECRET-HOST-TOKEN-123"}\n');
    const snap = await s.request("GET", `/files/sessions/${vsid}/catalog/snapshot`, { token: viewer });
    assert.equal(snap.status, 200, snap.text);
    const listed: string[] = snap.json.items.map((i: { path: string }) => i.path);
    assert.ok(listed.includes("cfg") && !listed.includes("cfg/server.json"), snap.text);
  } finally {
    await s.close();
  }
});

test("config writes whose target a symlink places outside fail before an approval is asked", async () => {
  const s = await startServer({ approval: "manual", approvalTimeoutMs: 20_000 });
  try {
    const outside = path.join(s.parent, "outside");
    await mkdir(outside);
    await symlink(outside, path.join(s.workspace, ".opencode"));
    await symlink(path.join(outside, "oc.json"), path.join(s.workspace, "opencode.jsonc"));
    const cases: [string, string, unknown][] = [
      ["PATCH", "config", { openwork: { a: 1 } }],
      ["PATCH", "config", { opencode: { a: 1 } }],
      ["POST", "plugins", { spec: "evil-plugin" }],
      ["POST", "mcp", { name: "m", config: { type: "remote", url: "https://example.com" } }],
    ];
    for (const [method, route, json] of cases) {
      const r = await s.request(method, `/workspace/${s.workspaceId}/${route}`, { json });
      assert.equal(r.status, 403, `${method} ${route}: ${r.text}`);
      assert.equal(r.json.code, "path_outside_workspace");
      assert.deepEqual(await pendingApprovals(s), []);
    }
    assert.deepEqual(await (await import("node:fs/promises")).readdir(outside), []);
  } finally {
    await s.close();
  }
});

test("a write through a symlink onto a plugin folder or opencode.json is flagged executes-code in the approval", async () => {
  const s = await startServer({ approval: "manual", approvalTimeoutMs: 20_000, files: { ".opencode/plugins/keep.js": "", "opencode.json": "{}\n" } });
  try {
    await symlink(".opencode/plugins", path.join(s.workspace, "plug"));
    await symlink("opencode.json", path.join(s.workspace, "notes.txt"));
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const cases: [string, unknown][] = [
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: "plug/evil.js", contentBase64: b64("x") }] }],
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: "notes.txt", contentBase64: b64('{"plugin":["evil"]}') }] }],
      [`/workspace/${s.workspaceId}/files/content`, { path: "notes.txt", content: '{"plugin":["evil"]}' }],
      [`/files/sessions/${sid}/ops`, { operations: [{ type: "rename", from: "plain.txt", to: "plug/moved.js" }] }],
      // OpenCode loads custom tools (.opencode/tools, legacy .opencode/tool) and .opencode/plugin as code too.
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: ".opencode/tools/db.ts", contentBase64: b64("x") }] }],
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: ".opencode/tool/db.ts", contentBase64: b64("x") }] }],
      [`/files/sessions/${sid}/write-batch`, { writes: [{ path: ".opencode/plugin/p.ts", contentBase64: b64("x") }] }],
    ];
    // An inbox folder symlinked onto the plugins folder: an upload there is a plugin.
    await mkdir(path.join(s.workspace, ".opencode/openwork"), { recursive: true });
    await symlink("../plugins", path.join(s.workspace, ".opencode/openwork/inbox"));
    const up = s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: upload("evil.js", "x"), headers: ct });
    const upItem = await firstApproval(s);
    assert.deepEqual(upItem.risk, ["executes-code"], JSON.stringify(upItem));
    await s.request("POST", `/approvals/${upItem.id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await up).status, 403);
    for (const [url, json] of cases) {
      const pending = s.request("POST", url, { json });
      const item = await firstApproval(s);
      assert.deepEqual(item.risk, ["executes-code"], JSON.stringify(item));
      await s.request("POST", `/approvals/${item.id}`, { token: null, host: true, json: { reply: "deny" } });
      assert.equal((await pending).status, 403);
    }
  } finally {
    await s.close();
  }
});

test("skill delete re-checks containment after the approval: a skills folder swapped for a symlink meanwhile is refused", async () => {
  const s = await startServer({ approval: "manual", approvalTimeoutMs: 20_000, files: { ".git/objects/ab/cdef": "blob", ".opencode/skills/objects/SKILL.md": "---\nname: objects\ndescription: d\n---\n" } });
  try {
    const pending = s.request("DELETE", `/workspace/${s.workspaceId}/skills/objects`);
    const item = await firstApproval(s);
    // While the host decides, .opencode/skills becomes a link into .git.
    const { rename: mv } = await import("node:fs/promises");
    await mv(path.join(s.workspace, ".opencode/skills"), path.join(s.workspace, ".opencode/skills-old"));
    await symlink("../.git", path.join(s.workspace, ".opencode/skills"));
    await s.request("POST", `/approvals/${item.id}`, { token: null, host: true, json: { reply: "allow" } });
    const r = await pending;
    assert.equal(r.status, 403, r.text);
    assert.equal(await readFile(path.join(s.workspace, ".git/objects/ab/cdef"), "utf8"), "blob");
  } finally {
    await s.close();
  }
});
