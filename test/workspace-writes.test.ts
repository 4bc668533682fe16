// Every write route of the workspace configuration API through the approval gate:
// auto applies and audits; manual + allow applies; deny leaves every byte as it was;
// validation errors never create an approval; viewers get 403 forbidden; read-only 403 read_only.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { firstApproval, pendingApprovals, startServer, type TestServer } from "./helpers/server.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

const COMMENTED = `{
  // keep me
  "$schema": "https://opencode.ai/config.json",

  "plugin": ["a@1", "@s/b@2"], // plugins
  "mcp": {
    "old": { "type": "remote", "url": "https://old.example" },
  },
  "theme": "light",
}
`;

interface Invalid {
  method?: string;
  path?: string;
  body?: unknown;
  raw?: string;
  status: number;
  code: string;
}

interface WriteCase {
  action: string;
  files: Record<string, string>;
  method: string;
  path: string;
  body?: unknown;
  executesCode: boolean;
  verify(s: TestServer, res: { status: number; json: any }): Promise<void>;
  invalid: Invalid[];
}

const read = (s: TestServer, rel: string) => readFile(join(s.workspace, rel), "utf8");
const exists = async (s: TestServer, rel: string) => stat(join(s.workspace, rel)).then(() => true, () => false);

const CASES: WriteCase[] = [
  {
    action: "config.patch",
    files: { "opencode.jsonc": COMMENTED },
    method: "PATCH",
    path: "config",
    body: { opencode: { theme: "dark" }, openwork: { reload: "auto" } },
    executesCode: true,
    async verify(s, res) {
      assert.equal(await read(s, "opencode.jsonc"), COMMENTED.replace('"theme": "light"', '"theme": "dark"'));
      assert.equal(await read(s, ".opencode/openwork.json"), '{\n  "reload": "auto"\n}\n');
      assert.equal(res.json.opencode.theme, "dark");
      assert.deepEqual(res.json.openwork, { reload: "auto" });
      assert.equal(typeof res.json.updatedAt, "number");
    },
    invalid: [
      { body: {}, status: 400, code: "invalid_payload" },
      { body: { opencode: [] }, status: 400, code: "invalid_payload" },
      { body: { openwork: "x" }, status: 400, code: "invalid_payload" },
      { body: { opencode: null }, status: 400, code: "invalid_payload" },
      { raw: "null", status: 400, code: "invalid_json" },
      { raw: "{not json", status: 400, code: "invalid_json" },
      { raw: '{"opencode":{"__proto__":{"x":1}}}', status: 400, code: "invalid_json" },
    ],
  },
  {
    action: "plugins.add",
    files: { "opencode.jsonc": COMMENTED },
    method: "POST",
    path: "plugins",
    body: { spec: "  opencode-new@3  " },
    executesCode: true,
    async verify(s, res) {
      const text = await read(s, "opencode.jsonc");
      assert.ok(text.includes('"opencode-new@3"'));
      assert.ok(text.startsWith('{\n  // keep me\n  "$schema"'));
      assert.deepEqual(res.json.items.map((i: any) => i.spec), ["a@1", "@s/b@2", "opencode-new@3"]);
    },
    invalid: [
      { body: { spec: "" }, status: 400, code: "invalid_plugin_spec" },
      { body: { spec: "   " }, status: 400, code: "invalid_plugin_spec" },
      { body: { spec: 5 }, status: 400, code: "invalid_plugin_spec" },
      { body: {}, status: 400, code: "invalid_plugin_spec" },
    ],
  },
  {
    action: "plugins.remove",
    files: { "opencode.jsonc": COMMENTED },
    method: "DELETE",
    path: "plugins/%40s%2Fb",
    executesCode: true,
    async verify(s, res) {
      assert.ok((await read(s, "opencode.jsonc")).includes('"plugin": [\n    "a@1"\n  ], // plugins'));
      assert.deepEqual(res.json.items.map((i: any) => i.spec), ["a@1"]);
    },
    // Removing a plugin that is not there is a 200 with the unchanged list (reference; spec 40 §8.3).
    invalid: [],
  },
  {
    action: "skills.upsert",
    files: {},
    method: "POST",
    path: "skills",
    body: { name: "new-skill", content: "# Body\n", description: "Does new things" },
    executesCode: false,
    async verify(s, res) {
      assert.equal(await read(s, ".opencode/skills/new-skill/SKILL.md"), "---\nname: new-skill\ndescription: Does new things\n---\n# Body\n");
      assert.deepEqual(res.json, { name: "new-skill", path: "/.opencode/skills/new-skill/SKILL.md", description: "Does new things", scope: "project" });
    },
    invalid: [
      { body: { name: "Bad", content: "x", description: "d" }, status: 400, code: "invalid_skill_name" },
      { body: { name: "ok-name", content: "", description: "d" }, status: 400, code: "invalid_skill_content" },
      { body: { name: "ok-name", content: "   \n", description: "d" }, status: 400, code: "invalid_skill_content" },
      { body: { name: "ok-name", content: "---\nname: other\ndescription: d\n---\nx" }, status: 400, code: "invalid_skill_name" },
      { body: { name: "ok-name", content: "---\nname: [oops\n---\nx", description: "d" }, status: 400, code: "invalid_skill_content" },
      { body: { name: "ok-name", content: "no description" }, status: 422, code: "invalid_description" },
      { body: { name: "ok-name", content: "x", description: "d".repeat(1025) }, status: 422, code: "invalid_description" },
    ],
  },
  {
    action: "skills.delete",
    files: { ".opencode/skills/old/SKILL.md": "---\nname: old\ndescription: Old one\n---\n", ".opencode/skills/old/scripts/run.sh": "echo" },
    method: "DELETE",
    path: "skills/old",
    executesCode: false,
    async verify(s, res) {
      assert.equal(await exists(s, ".opencode/skills/old"), false);
      assert.deepEqual(res.json, { ok: true, name: "old", path: ".opencode/skills/old" });
      assert.deepEqual(await snapshotTree(join(s.workspace, ".opencode/skills")), new Map(), "no leftovers (temp folders) remain");
    },
    invalid: [
      { method: "DELETE", path: "skills/missing", status: 404, code: "skill_not_found" },
      { method: "DELETE", path: "skills/Old", status: 400, code: "invalid_skill_name" },
    ],
  },
  {
    action: "mcp.add",
    files: { "opencode.jsonc": COMMENTED },
    method: "POST",
    path: "mcp",
    body: { name: "tools", config: { type: "local", command: ["node", "server.js"], environment: { TOKEN: "t" } } },
    executesCode: true,
    async verify(s, res) {
      const text = await read(s, "opencode.jsonc");
      assert.ok(text.includes('"tools": {\n      "type": "local"'));
      assert.ok(text.includes("// keep me"));
      assert.deepEqual(res.json.items.map((i: any) => i.name), ["old", "tools"]);
    },
    invalid: [
      { body: { name: "-x", config: { type: "local", command: ["a"] } }, status: 400, code: "invalid_mcp_name" },
      { body: { name: "a b", config: { type: "local", command: ["a"] } }, status: 400, code: "invalid_mcp_name" },
      { body: { name: "x".repeat(65), config: { type: "local", command: ["a"] } }, status: 400, code: "invalid_mcp_name" },
      { body: { name: "ok", config: { type: "local", command: [] } }, status: 400, code: "invalid_mcp_config" },
      { body: { name: "ok", config: { type: "local", command: "node" } }, status: 400, code: "invalid_mcp_config" },
      { body: { name: "ok", config: { type: "remote", url: "ftp://x" } }, status: 400, code: "invalid_mcp_config" },
      { body: { name: "ok", config: { type: "remote" } }, status: 400, code: "invalid_mcp_config" },
      { body: { name: "ok", config: { type: "other" } }, status: 400, code: "invalid_mcp_config" },
      { body: { name: "ok", config: "x" }, status: 400, code: "invalid_mcp_config" },
    ],
  },
  {
    action: "mcp.remove",
    files: { "opencode.jsonc": COMMENTED },
    method: "DELETE",
    path: "mcp/old",
    executesCode: true,
    async verify(s, res) {
      assert.ok((await read(s, "opencode.jsonc")).includes('"mcp": {},'));
      assert.deepEqual(res.json.items, []);
    },
    invalid: [{ method: "DELETE", path: "mcp/-bad", status: 400, code: "invalid_mcp_name" }],
  },
  {
    action: "commands.upsert",
    files: {},
    method: "POST",
    path: "commands",
    body: { name: " /review ", template: "Review $ARGUMENTS", description: "Review code", model: "anthropic/claude" },
    executesCode: false,
    async verify(s, res) {
      assert.equal(await read(s, ".opencode/commands/review.md"), "---\nname: review\ndescription: Review code\nmodel: anthropic/claude\nsubtask: false\n---\n\nReview $ARGUMENTS\n");
      assert.deepEqual(res.json.items, [{ name: "review", description: "Review code", template: "Review $ARGUMENTS", model: "anthropic/claude", subtask: false, scope: "workspace" }]);
    },
    invalid: [
      { body: { name: "a/b", template: "t" }, status: 400, code: "invalid_command_name" },
      { body: { name: "", template: "t" }, status: 400, code: "invalid_command_name" },
      { body: { name: "ok", template: "  " }, status: 400, code: "invalid_command_template" },
      { body: { name: "ok" }, status: 400, code: "invalid_command_template" },
    ],
  },
  {
    action: "commands.delete",
    files: { ".opencode/commands/old.md": "---\nname: old\n---\n\nOld\n" },
    method: "DELETE",
    path: "commands/old",
    executesCode: false,
    async verify(s, res) {
      assert.equal(await exists(s, ".opencode/commands/old.md"), false);
      assert.deepEqual(res.json, { ok: true });
    },
    invalid: [{ method: "DELETE", path: "commands/missing", status: 404, code: "command_not_found" }],
  },
  {
    action: "config.import",
    files: {},
    method: "POST",
    path: "import",
    body: { skills: [{ name: "imp", content: "---\nname: imp\ndescription: Imported\n---\nBody\n" }], commands: [{ name: "c1", template: "T" }] },
    executesCode: false,
    async verify(s, res) {
      assert.equal(await read(s, ".opencode/skills/imp/SKILL.md"), "---\nname: imp\ndescription: Imported\n---\nBody\n");
      assert.equal(await read(s, ".opencode/commands/c1.md"), "---\nname: c1\nsubtask: false\n---\n\nT\n");
      assert.deepEqual(res.json, { ok: true, written: [".opencode/skills/imp/SKILL.md", ".opencode/commands/c1.md"], removed: [] });
    },
    invalid: [
      { body: { skills: "x" }, status: 400, code: "invalid_payload" },
      { body: { skills: [{ name: "BAD", content: "x", description: "d" }] }, status: 400, code: "invalid_skill_name" },
      { body: { commands: [{ name: "ok", template: "" }] }, status: 400, code: "invalid_command_template" },
      { body: { mode: { skills: "wipe" } }, status: 400, code: "invalid_payload" },
      { body: { opencode: 1 }, status: 400, code: "invalid_payload" },
    ],
  },
];

function url(s: TestServer, p: string): string {
  return `/workspace/${s.workspaceId}/${p}`;
}

function send(s: TestServer, c: { method: string; path: string; body?: unknown; raw?: string }, token?: string) {
  const opts: Record<string, unknown> = {};
  if (token !== undefined) opts.token = token;
  if (c.raw !== undefined) {
    opts.body = c.raw;
    opts.headers = { "content-type": "application/json" };
  } else if (c.body !== undefined) opts.json = c.body;
  return s.request(c.method, url(s, c.path), opts);
}

const homeSnap = (s: TestServer) => snapshotTree(s.home, (rel) => rel === ".openwork" || rel.startsWith(".openwork/"));

for (const c of CASES) {
  test(`${c.action}: manual mode — validation, viewer, deny, allow`, async () => {
    const s = await startServer({ approval: "manual", approvalTimeoutMs: 20_000, files: c.files });
    try {
      const noApprovals = async () => assert.deepEqual(await pendingApprovals(s), []);
      const viewer = await s.mintToken("viewer");
      const before = await snapshotTree(s.workspace);
      const homeBefore = await homeSnap(s);
      for (const bad of c.invalid) {
        const res = await send(s, { method: bad.method ?? c.method, path: bad.path ?? c.path, body: bad.body, raw: bad.raw });
        assert.equal(res.status, bad.status, `${JSON.stringify(bad)} → ${res.text}`);
        assert.equal(res.json.code, bad.code, JSON.stringify(bad));
        await noApprovals();
      }
      const vr = await send(s, c, viewer);
      assert.equal(vr.status, 403);
      assert.equal(vr.json.code, "forbidden");
      await noApprovals();

      // Deny: the held request answers 403 and nothing on disk changed.
      const denied = send(s, c);
      const pending = await firstApproval(s);
      assert.equal(pending.action, c.action);
      assert.equal(pending.workspaceId, s.workspaceId);
      assert.ok(pending.change !== undefined && pending.change !== null);
      assert.ok(Array.isArray(pending.paths) && pending.paths.length > 0);
      assert.deepEqual(pending.risk.includes("executes-code"), c.executesCode, `risk of ${c.action}: ${JSON.stringify(pending.risk)}`);
      const reply = await s.request("POST", `/approvals/${pending.id}`, { token: null, host: true, json: { reply: "deny" } });
      assert.equal(reply.status, 200);
      const dr = await denied;
      assert.equal(dr.status, 403);
      assert.equal(dr.json.code, "write_denied");
      assert.deepEqual(await snapshotTree(s.workspace), before, "workspace byte-identical after deny");
      assert.deepEqual(await homeSnap(s), homeBefore, "HOME byte-identical after deny");

      // Allow: applied.
      const allowed = send(s, c);
      const p2 = await firstApproval(s);
      await s.request("POST", `/approvals/${p2.id}`, { token: null, host: true, json: { reply: "allow" } });
      const ar = await allowed;
      assert.equal(ar.status, 200, ar.text);
      await c.verify(s, ar);
      const audit = await s.request("GET", url(s, "audit"));
      assert.equal(audit.json.items[0].action, c.action);
      assert.equal(audit.json.items[1].action, "approval.denied");
    } finally {
      await s.close();
    }
  });
}

test("auto mode applies and audits every write route", async () => {
  for (const c of CASES) {
    const s = await startServer({ approval: "auto", files: c.files });
    try {
      const res = await send(s, c);
      assert.equal(res.status, 200, `${c.action}: ${res.text}`);
      await c.verify(s, res);
      const audit = await s.request("GET", url(s, "audit?limit=1"));
      assert.equal(audit.json.items.length, 1);
      assert.equal(audit.json.items[0].action, c.action);
      assert.equal(typeof audit.json.items[0].actor.tokenHash, "string");
      // Repeating a write that changes nothing writes nothing and adds no audit entry (deletes of
      // skills and commands 404 instead; a plugin or MCP server that is gone answers the list).
      const again = await send(s, c);
      if (c.method !== "DELETE" || c.action === "plugins.remove" || c.action === "mcp.remove") {
        assert.equal(again.status, 200, `${c.action} repeat: ${again.text}`);
        const audit2 = await s.request("GET", url(s, "audit"));
        assert.equal(audit2.json.items.length, 1, `${c.action}: a no-op write is not audited`);
      } else {
        assert.equal(again.status, 404);
      }
    } finally {
      await s.close();
    }
  }
});

test("read-only mode: every write route answers 403 read_only and writes nothing", async () => {
  const files = Object.assign({}, ...CASES.map((c) => c.files));
  const s = await startServer({ readOnly: true, files });
  try {
    const before = await snapshotTree(s.workspace);
    for (const c of [...CASES, { method: "POST", path: "engine/reload", body: {} }]) {
      const res = await send(s, c);
      assert.equal(res.status, 403, `${c.method} ${c.path}`);
      assert.equal(res.json.code, "read_only");
    }
    assert.deepEqual(await snapshotTree(s.workspace), before);
    const caps = await s.request("GET", "/capabilities");
    assert.equal(caps.json.skills.write, false);
  } finally {
    await s.close();
  }
});

test("viewer reads are redacted; audit hides token hashes from viewers", async () => {
  const s = await startServer({
    files: {
      "opencode.jsonc": JSON.stringify({
        provider: { openai: { options: { apiKey: "sk-secret", baseURL: "https://x" } } },
        mcp: { gh: { type: "remote", url: "https://gh", headers: { "X-Custom": "h-secret" }, oauth: { clientSecret: "c-secret" } }, loc: { type: "local", command: ["x"], environment: { ANY: "e-secret" } } },
        theme: "dark",
      }),
      ".opencode/openwork.json": JSON.stringify({ authToken: "o-secret", name: "ws" }),
    },
  });
  try {
    const viewer = await s.mintToken("viewer");
    for (const p of ["config", "mcp", "export"]) {
      const res = await s.request("GET", url(s, p), { token: viewer });
      assert.equal(res.status, 200);
      assert.ok(!/secret/.test(res.text), `${p} leaks a secret: ${res.text}`);
      assert.ok(res.text.includes("[redacted]"));
    }
    const cfg = await s.request("GET", url(s, "config"), { token: viewer });
    assert.equal(cfg.json.opencode.theme, "dark");
    assert.equal(cfg.json.opencode.provider.openai.options.baseURL, "https://x");
    assert.equal(cfg.json.openwork.name, "ws");
    // Collaborators see the real values.
    const full = await s.request("GET", url(s, "config"));
    assert.equal(full.json.opencode.provider.openai.options.apiKey, "sk-secret");
    // An audited write, then the viewer's audit view.
    await s.request("POST", url(s, "plugins"), { json: { spec: "p" } });
    const va = await s.request("GET", url(s, "audit"), { token: viewer });
    assert.equal(va.json.items.length, 1);
    assert.equal(va.json.items[0].actor.tokenHash, undefined);
    assert.equal(va.json.items[0].actor.scope, "collaborator");
    const ca = await s.request("GET", url(s, "audit"));
    assert.equal(typeof ca.json.items[0].actor.tokenHash, "string");
    // An action by the host: collaborators see it without the host token's hash; owners see it.
    assert.equal((await s.request("POST", `/workspaces/${s.workspaceId}/activate`, { token: null, host: true })).status, 200);
    const hostEntry = (items: Array<{ action: string; actor: { type: string; tokenHash?: string } }>) => items.find((e) => e.actor.type === "host")!;
    const asCollaborator = await s.request("GET", url(s, "audit"));
    assert.equal(hostEntry(asCollaborator.json.items).action, "workspace.activate");
    assert.equal(hostEntry(asCollaborator.json.items).actor.tokenHash, undefined);
    const owner = await s.mintToken("owner");
    const asOwner = await s.request("GET", url(s, "audit"), { token: owner });
    assert.match(String(hostEntry(asOwner.json.items).actor.tokenHash), /^[0-9a-f]{64}$/);
  } finally {
    await s.close();
  }
});

test("a file changed while its approval was pending is not overwritten (409 conflict)", async () => {
  const s = await startServer({ approval: "manual", approvalTimeoutMs: 20_000, files: { "opencode.jsonc": COMMENTED } });
  try {
    const pendingReq = s.request("POST", url(s, "plugins"), { json: { spec: "late" } });
    const item = await firstApproval(s);
    const external = '{ "plugin": ["someone-else"] }\n';
    await writeFile(join(s.workspace, "opencode.jsonc"), external);
    await s.request("POST", `/approvals/${item.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await pendingReq;
    assert.equal(res.status, 409);
    assert.equal(res.json.code, "conflict");
    assert.equal(await read(s, "opencode.jsonc"), external);
  } finally {
    await s.close();
  }
});

test("writes keep the file mode and never follow a symlinked .opencode out of the workspace", async () => {
  const s = await startServer({ files: { "opencode.jsonc": COMMENTED } });
  try {
    await chmod(join(s.workspace, "opencode.jsonc"), 0o640);
    const res = await s.request("POST", url(s, "plugins"), { json: { spec: "moded" } });
    assert.equal(res.status, 200);
    assert.equal((await stat(join(s.workspace, "opencode.jsonc"))).mode & 0o777, 0o640);

    // .opencode → a folder outside the workspace: every write through it is refused.
    const outside = join(s.parent, "outside");
    await mkdir(outside);
    await symlink(outside, join(s.workspace, ".opencode"));
    const before = await snapshotTree(outside);
    const tries = [
      s.request("POST", url(s, "skills"), { json: { name: "esc", content: "x", description: "d" } }),
      s.request("POST", url(s, "commands"), { json: { name: "esc", template: "t" } }),
      s.request("PATCH", url(s, "config"), { json: { openwork: { a: 1 } } }),
      s.request("POST", url(s, "import"), { json: { skills: [{ name: "esc", content: "x", description: "d" }] } }),
    ];
    for (const r of await Promise.all(tries)) {
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json.code, "path_outside_workspace");
    }
    assert.deepEqual(await snapshotTree(outside), before);
    assert.deepEqual(before, new Map());

    // Reads do not follow it either: nothing from outside reaches an answer.
    await mkdir(join(outside, "skills/leak"), { recursive: true });
    await writeFile(join(outside, "skills/leak/SKILL.md"), "---\nname: leak\ndescription: outside-secret\n---\n");
    await mkdir(join(outside, "commands"));
    await writeFile(join(outside, "commands/leak.md"), "outside-secret\n");
    await writeFile(join(outside, "openwork.json"), '{"x":"outside-secret"}');
    for (const p of ["skills", "commands", "skills/leak", "config", "export"]) {
      const r = await s.request("GET", url(s, p));
      assert.ok(!r.text.includes("outside-secret"), `${p}: ${r.text}`);
    }
    assert.equal((await s.request("GET", url(s, "config"))).json.code, "path_outside_workspace");
  } finally {
    await s.close();
  }
});
