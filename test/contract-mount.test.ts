// Every call of the app's client library (0.11.168, all 64 methods; the upload and the file session come before
// the list), each by its method, path, body and the fields it reads, run against the
// host base URL and against a mounted worker base URL `/w/<id>`: both must answer alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { workspaceId } from "../src/workspaces.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";

interface Call {
  name: string;
  method: string;
  /** Base-relative path; `{id}` is the workspace id, `{sid}` the file session created earlier, `{inbox}`/`{artifact}` item ids. */
  path: string;
  body?: unknown;
  host?: boolean;
  status?: number;
  /** Keys the app reads from the answer. */
  keys?: string[];
}

const CALLS: Call[] = [
  { name: "health", method: "GET", path: "/health", keys: ["ok", "version"] },
  { name: "status", method: "GET", path: "/status", keys: ["ok", "version", "workspaceCount", "activeWorkspaceId"] },
  { name: "capabilities", method: "GET", path: "/capabilities", keys: ["schemaVersion", "skills", "hub", "toolProviders"] },
  { name: "listWorkspaces", method: "GET", path: "/workspaces", keys: ["items", "activeId"] },
  { name: "activateWorkspace", method: "POST", path: "/workspaces/{id}/activate", host: true, keys: ["activeId", "workspace"] },
  { name: "getConfig", method: "GET", path: "/workspace/{id}/config", keys: ["opencode", "openwork", "updatedAt"] },
  { name: "patchConfig", method: "PATCH", path: "/workspace/{id}/config", body: { opencode: { model: "x/y" } }, keys: ["opencode", "openwork", "updatedAt"] },
  { name: "listReloadEvents", method: "GET", path: "/workspace/{id}/events?since=0", keys: ["items", "cursor"] },
  { name: "reloadEngine", method: "POST", path: "/workspace/{id}/engine/reload", keys: ["ok", "reloadedAt"] },
  { name: "deleteSession", method: "DELETE", path: "/workspace/{id}/sessions/ses_1", keys: ["ok"] },
  { name: "addPlugin", method: "POST", path: "/workspace/{id}/plugins", body: { spec: "opencode-x" }, keys: ["items"] },
  { name: "listPlugins", method: "GET", path: "/workspace/{id}/plugins?includeGlobal=true", keys: ["items", "loadOrder"] },
  { name: "removePlugin", method: "DELETE", path: "/workspace/{id}/plugins/opencode-x", keys: ["items"] },
  { name: "removePlugin (absent)", method: "DELETE", path: "/workspace/{id}/plugins/not-there", keys: ["items"] },
  { name: "upsertSkill", method: "POST", path: "/workspace/{id}/skills", body: { name: "skill-creator", content: "# x\n", description: "Makes skills" }, keys: ["name", "path"] },
  { name: "listSkills", method: "GET", path: "/workspace/{id}/skills", keys: ["items"] },
  { name: "getSkill", method: "GET", path: "/workspace/{id}/skills/skill-creator", keys: ["item", "content"] },
  { name: "listHubSkills", method: "GET", path: "/hub/skills?owner=different-ai&repo=openwork-hub&ref=main", keys: ["items"] },
  { name: "installHubSkill", method: "POST", path: "/workspace/{id}/skills/hub/pdf", body: {}, keys: ["ok", "name", "path", "action", "written"] },
  { name: "addMcp", method: "POST", path: "/workspace/{id}/mcp", body: { name: "gh", config: { type: "remote", url: "https://x.example/mcp" } }, keys: ["items"] },
  { name: "listMcp", method: "GET", path: "/workspace/{id}/mcp", keys: ["items"] },
  { name: "logoutMcpAuth", method: "DELETE", path: "/workspace/{id}/mcp/gh/auth", keys: ["ok"] },
  { name: "removeMcp", method: "DELETE", path: "/workspace/{id}/mcp/gh", keys: ["items"] },
  { name: "upsertCommand", method: "POST", path: "/workspace/{id}/commands", body: { name: "review", template: "Review" }, keys: ["items"] },
  { name: "listCommands", method: "GET", path: "/workspace/{id}/commands?scope=workspace", keys: ["items"] },
  { name: "deleteCommand", method: "DELETE", path: "/workspace/{id}/commands/review", keys: ["ok"] },
  { name: "listAudit", method: "GET", path: "/workspace/{id}/audit?limit=5", keys: ["items"] },
  { name: "listScheduledJobs", method: "GET", path: "/workspace/{id}/scheduler/jobs", keys: ["items"] },
  { name: "deleteScheduledJob", method: "DELETE", path: "/workspace/{id}/scheduler/jobs/nightly", keys: ["job"] },
  { name: "exportWorkspace", method: "GET", path: "/workspace/{id}/export", keys: ["opencode", "skills", "commands"] },
  { name: "importWorkspace", method: "POST", path: "/workspace/{id}/import", body: { commands: [{ name: "imported", template: "t" }] }, keys: ["ok"] },
  { name: "getOpenCodeRouterTelegram", method: "GET", path: "/workspace/{id}/opencode-router/telegram", keys: ["ok", "configured"] },
  { name: "getOpenCodeRouterTelegramIdentities", method: "GET", path: "/workspace/{id}/opencode-router/identities/telegram", keys: ["ok", "items"] },
  { name: "getOpenCodeRouterSlackIdentities", method: "GET", path: "/workspace/{id}/opencode-router/identities/slack", keys: ["ok", "items"] },
  { name: "getOpenCodeRouterBindings", method: "GET", path: "/workspace/{id}/opencode-router/bindings", keys: ["ok", "items"] },
  { name: "sendOpenCodeRouterMessage", method: "POST", path: "/workspace/{id}/opencode-router/send", body: { channel: "telegram", text: "hi" }, keys: ["ok", "sent"] },
  { name: "setOpenCodeRouterTelegramToken", method: "POST", path: "/workspace/{id}/opencode-router/telegram-token", body: { token: "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr", healthPort: null }, keys: ["ok"] },
  { name: "setOpenCodeRouterTelegramEnabled", method: "POST", path: "/workspace/{id}/opencode-router/telegram-enabled", body: { enabled: false, clearToken: false, healthPort: null }, keys: ["ok"] },
  { name: "setOpenCodeRouterSlackTokens", method: "POST", path: "/workspace/{id}/opencode-router/slack-tokens", body: { botToken: "xoxb-1-2-abc", appToken: "xapp-1-A1-2-abc", healthPort: null }, keys: ["ok"] },
  { name: "upsertOpenCodeRouterTelegramIdentity", method: "POST", path: "/workspace/{id}/opencode-router/identities/telegram", body: { token: "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr", enabled: true, access: "private", pairingCode: "ABCD-1234", healthPort: null }, keys: ["ok"] },
  { name: "upsertOpenCodeRouterSlackIdentity", method: "POST", path: "/workspace/{id}/opencode-router/identities/slack", body: { botToken: "xoxb-1-2-abc", appToken: "xapp-1-A1-2-abc", enabled: true, healthPort: null }, keys: ["ok"] },
  { name: "setOpenCodeRouterBinding", method: "POST", path: "/workspace/{id}/opencode-router/bindings", body: { channel: "telegram", peerId: "12345", healthPort: null }, keys: ["ok"] },
  { name: "deleteOpenCodeRouterTelegramIdentity", method: "DELETE", path: "/workspace/{id}/opencode-router/identities/telegram/{id}", keys: ["ok"] },
  { name: "deleteOpenCodeRouterSlackIdentity", method: "DELETE", path: "/workspace/{id}/opencode-router/identities/slack/{id}", keys: ["ok"] },
  { name: "opencodeRouterHealth", method: "GET", path: "/opencode-router/health", keys: ["ok"] },
  { name: "opencodeRouterBindings", method: "GET", path: "/opencode-router/bindings?channel=telegram", keys: ["ok", "items"] },
  { name: "opencodeRouterTelegramIdentities", method: "GET", path: "/opencode-router/identities/telegram", keys: ["ok", "items"] },
  { name: "opencodeRouterSlackIdentities", method: "GET", path: "/opencode-router/identities/slack", keys: ["ok", "items"] },
  { name: "runtimeVersions", method: "GET", path: "/runtime/versions", keys: ["ok"] },
  { name: "listInbox", method: "GET", path: "/workspace/{id}/inbox", keys: ["items"] },
  { name: "downloadInboxItem", method: "GET", path: "/workspace/{id}/inbox/{inbox}" },
  { name: "listArtifacts", method: "GET", path: "/workspace/{id}/artifacts", keys: ["items"] },
  { name: "downloadArtifact", method: "GET", path: "/workspace/{id}/artifacts/{artifact}" },
  { name: "writeWorkspaceFile", method: "POST", path: "/workspace/{id}/files/content", body: { path: ".opencode/agents/opencode-router.md", content: "# hi\n" }, keys: ["ok", "updatedAt"] },
  { name: "readWorkspaceFile", method: "GET", path: "/workspace/{id}/files/content?path=.opencode/agents/opencode-router.md", keys: ["content", "updatedAt"] },
  { name: "renewFileSession", method: "POST", path: "/files/sessions/{sid}/renew", body: { ttlSeconds: 60 }, keys: ["session"] },
  { name: "getFileCatalogSnapshot", method: "GET", path: "/files/sessions/{sid}/catalog/snapshot?limit=10", keys: ["items", "cursor", "total"] },
  { name: "listFileSessionEvents", method: "GET", path: "/files/sessions/{sid}/catalog/events?since=0", keys: ["items", "cursor"] },
  { name: "writeFileBatch", method: "POST", path: "/files/sessions/{sid}/write-batch", body: { writes: [{ path: "notes/a.md", contentBase64: "aGk=" }] }, keys: ["items", "cursor"] },
  { name: "readFileBatch", method: "POST", path: "/files/sessions/{sid}/read-batch", body: { paths: ["notes/a.md"] }, keys: ["items"] },
  { name: "runFileBatchOps", method: "POST", path: "/files/sessions/{sid}/ops", body: { operations: [{ type: "mkdir", path: "notes/sub" }] }, keys: ["items", "cursor"] },
  { name: "closeFileSession", method: "DELETE", path: "/files/sessions/{sid}", keys: ["ok"] },
  // Last: the workspace is gone afterwards.
  { name: "deleteWorkspace", method: "DELETE", path: "/workspaces/{id}", host: true, keys: ["ok", "deleted", "persisted", "activeId", "items"] },
];

/** Fake engine, hub and router answering the happy path of every call above. */
async function outsideServices(): Promise<TestUpstream> {
  const fake = await startUpstream();
  fake.handle((req, res) => {
    const u = req.url ?? "";
    if (u.endsWith("/skills/pdf/SKILL.md")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("---\nname: pdf\ndescription: Works with PDFs\n---\n# pdf\n");
      return;
    }
    const body = u.includes("/git/trees/") ? { tree: [{ path: "skills/pdf/SKILL.md", type: "blob", mode: "100644" }] } : u.includes("/contents/skills") ? [] : u.startsWith("/bindings") || u.startsWith("/identities") ? { ok: true, items: [] } : u === "/send" ? { ok: true, attempted: 1, sent: 1 } : { ok: true };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  return fake;
}

async function run(mounted: boolean): Promise<Map<string, { status: number; json: unknown }>> {
  const fake = await outsideServices();
  // A do-nothing `systemctl` first on PATH: deleting a scheduled job must not reach the real one.
  const bin = await mkdtemp(join(tmpdir(), "ow-bin-"));
  await writeFile(join(bin, "systemctl"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  const s = await startServer({
    env: { PATH: `${bin}:${process.env.PATH}`, OPENWORK_OPENCODE_BASE_URL: fake.url, OPENWORK_HUB_API_URL: fake.url, OPENWORK_HUB_RAW_URL: fake.url, OPENCODE_ROUTER_HEALTH_PORT: String(fake.port), OPENCODE_ROUTER_DATA_DIR: "", OPENWORK_TELEGRAM_API_URL: fake.url, OPENWORK_CONTROL_BASE_URL: fake.url, OPENWORK_CONTROL_TOKEN: "control-secret" },
    files: { ".opencode/openwork/outbox/report.txt": "done" },
  });
  const base = mounted ? `/w/${s.workspaceId}` : "";
  const out = new Map<string, { status: number; json: unknown }>();
  try {
    const form = `--B\r\nContent-Disposition: form-data; name="file"; filename="in.txt"\r\n\r\nhello\r\n--B--\r\n`;
    const up = await s.request("POST", `${base}/workspace/${s.workspaceId}/inbox`, { body: form, headers: { "content-type": "multipart/form-data; boundary=B" } });
    assert.equal(up.status, 200, `uploadInbox: ${up.text}`);
    out.set("uploadInbox", { status: up.status, json: up.json });
    const inbox = (await s.request("GET", `${base}/workspace/${s.workspaceId}/inbox`)).json.items[0].id;
    const artifact = (await s.request("GET", `${base}/workspace/${s.workspaceId}/artifacts`)).json.items[0].id;
    const session = await s.request("POST", `${base}/workspace/${s.workspaceId}/files/sessions`, { json: { ttlSeconds: 60 } });
    assert.equal(session.status, 200, session.text);
    const sid = session.json.session.id;
    const jobs = join(s.home, ".config/opencode/jobs");
    await mkdir(jobs, { recursive: true });
    await writeFile(join(jobs, "nightly.json"), JSON.stringify({ slug: "nightly", name: "Nightly", schedule: "0 3 * * *", workdir: s.workspace, prompt: "p" }));
    for (const c of CALLS) {
      const path = base + c.path.replace(/\{id\}/g, s.workspaceId).replace("{sid}", sid).replace("{inbox}", inbox).replace("{artifact}", artifact);
      const res = await s.request(c.method, path, { ...(c.body === undefined ? {} : { json: c.body }), ...(c.host ? { host: true } : {}) });
      assert.equal(res.status, c.status ?? 200, `${c.name} ${mounted ? "mounted" : "host"}: ${res.text}`);
      for (const k of c.keys ?? []) assert.ok(res.json && k in res.json, `${c.name}: answer lacks ${k}: ${res.text}`);
      out.set(c.name, { status: res.status, json: res.json });
    }
  } finally {
    await s.close();
    await fake.close();
    await rm(bin, { recursive: true, force: true });
  }
  return out;
}

test("every client call answers alike on the host base URL and on a mounted /w/<id> base URL", async () => {
  const host = await run(false);
  const mounted = await run(true);
  for (const [name, h] of host) {
    const m = mounted.get(name)!;
    assert.equal(m.status, h.status, name);
    const keys = (v: unknown) => (v && typeof v === "object" ? Object.keys(v).sort() : []);
    assert.deepEqual(keys(m.json), keys(h.json), name);
  }
  assert.equal((mounted.get("listWorkspaces")!.json as { items: unknown[] }).items.length, 1);
  const skill = (host.get("listSkills")!.json as { items: { path: string }[] }).items[0]!;
  assert.ok(skill.path.toLowerCase().includes("/.opencode/skills/"), "the app's built-in badge rule matches");
});

/** A server with its default workspace first and a second one (`b`) beside it. */
async function twoWorkspaces(t: { after(fn: () => Promise<void>): void }): Promise<{ s: TestServer; otherId: string }> {
  const b = await mkdtemp(join(tmpdir(), "ow-second-"));
  const s = await startServer({ argv: ["--workspace", b] });
  t.after(async () => {
    await s.close();
    await rm(b, { recursive: true, force: true });
  });
  return { s, otherId: workspaceId(b) };
}

test("mount rules: the nested id must be the mount id; sessions must belong to it; unknown mounts 404 only after auth; /w/<id> alone is 404", async (t) => {
  const { s, otherId } = await twoWorkspaces(t);
  const M = s.workspaceId;
  const mismatch = await s.request("GET", `/w/${M}/workspace/${otherId}/config`);
  assert.equal(mismatch.status, 404);
  assert.equal(mismatch.json.code, "not_found");
  assert.equal((await s.request("POST", `/w/${M}/workspaces/${otherId}/activate`, { host: true })).json.code, "not_found");
  const sessionB = (await s.request("POST", `/workspace/${otherId}/files/sessions`, { json: {} })).json.session.id;
  const foreign = await s.request("GET", `/w/${M}/files/sessions/${sessionB}/catalog/snapshot`);
  assert.equal(foreign.status, 404);
  assert.equal(foreign.json.code, "file_session_not_found");
  assert.equal((await s.request("GET", `/w/${otherId}/files/sessions/${sessionB}/catalog/snapshot`)).status, 200);
  assert.equal((await s.request("GET", "/w/ws_ffffffffffff/status", { token: null })).status, 401, "no probing of ids without a token");
  assert.equal((await s.request("GET", "/w/ws_ffffffffffff/whoami")).json.code, "workspace_not_found");
  for (const p of [`/w/${M}`, `/w/${M}/`, `/w/${M}/w/${M}/status`]) assert.equal((await s.request("GET", p)).status, 404, p);
  assert.equal((await s.request("GET", `/w/%zz/status`)).json.code, "invalid_path");
  const viewer = await s.mintToken("viewer");
  assert.equal((await s.request("POST", `/w/${M}/workspace/${M}/plugins`, { token: viewer, json: { spec: "x" } })).status, 403);
  assert.equal((await s.request("GET", `/w/${M}/approvals`, { host: true })).status, 200, "top-level routes are served under a mount");
  assert.equal((await s.request("GET", `/w/${M}/tokens`, { host: true })).status, 200);
});
