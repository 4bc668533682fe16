// OpenCode Router bridge setup against a local fake of the router's health API and of Telegram's
// Bot API (real HTTP servers on listen(0)): persistence, apply results, degraded answers, secrets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startServer, firstApproval, readAuditLog, type TestServer } from "./helpers/server.ts";
import { startUpstream, type TestUpstream } from "./helpers/upstream.ts";

interface Env {
  s: TestServer;
  router: TestUpstream;
  telegram: TestUpstream;
  configFile: string;
  base: string;
}

async function setup(o: { approval?: "auto" | "manual"; readOnly?: boolean; routerDown?: boolean } = {}): Promise<Env> {
  const router = await startUpstream();
  let wsId = "";
  router.handle((req, res, rec) => {
    const body = rec.body.length ? JSON.parse(rec.body.toString()) : {};
    const send = (status: number, b: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(b));
    };
    if (req.url === "/identities/telegram" && req.method === "POST") return send(200, { ok: true, telegram: { id: body.id, enabled: true, applied: true, starting: false } });
    if (req.url === "/identities/slack" && req.method === "POST") return send(200, { ok: true, slack: { id: body.id, applied: false, error: "bad app token" } });
    if (req.url?.startsWith("/identities/telegram/") && req.method === "DELETE") return send(200, { ok: true, telegram: { id: wsId, deleted: true } });
    if (req.url === "/identities/telegram" && req.method === "GET") return send(200, { ok: true, items: [{ id: "other", enabled: true, running: true }, { id: wsId, running: true, pairingRequired: true }] });
    if (req.url?.startsWith("/bindings") && req.method === "GET") return send(200, { ok: true, items: [{ channel: "telegram", identityId: wsId, peerId: "42", directory: "/d" }] });
    if (req.url === "/bindings") return send(200, { ok: true });
    if (req.url === "/send") return body.text === "fail" ? send(500, { ok: false, error: "telegram down" }) : send(200, { ok: true, channel: body.channel, directory: body.directory, attempted: 1, sent: 1 });
    send(404, { ok: false, error: "not found" });
  });
  const telegram = await startUpstream();
  telegram.handle((req, res) => {
    const ok = req.url === "/bot123:SECRET-TOKEN/getMe";
    res.writeHead(ok ? 200 : 401, { "content-type": "application/json" });
    res.end(JSON.stringify(ok ? { ok: true, result: { id: 7, username: "my_bot", first_name: "My Bot" } } : { ok: false }));
  });
  const dataDir = await mkdtemp(join(tmpdir(), "ow-router-"));
  const configFile = join(dataDir, "opencode-router.json");
  const s = await startServer({
    approval: o.approval ?? "auto",
    readOnly: o.readOnly,
    env: { OPENCODE_ROUTER_HEALTH_PORT: String(o.routerDown ? 9 : router.port), OPENCODE_ROUTER_DATA_DIR: dataDir, OPENWORK_TELEGRAM_API_URL: telegram.url },
  });
  wsId = s.workspaceId;
  return { s, router, telegram, configFile, base: `/workspace/${s.workspaceId}/opencode-router` };
}

async function teardown(e: Env) {
  await e.s.close();
  await e.router.close();
  await e.telegram.close();
  await rm(dirname(e.configFile), { recursive: true, force: true });
}

const readConfig = async (e: Env) => JSON.parse(await readFile(e.configFile, "utf8"));

test("telegram-token: approval without the secret, persisted (0600), applied, bot named; GET telegram; audit", async () => {
  const e = await setup({ approval: "manual" });
  try {
    const pending = e.s.request("POST", `${e.base}/telegram-token`, { json: { token: " 123:SECRET-TOKEN ", healthPort: 1 } });
    const approval = await firstApproval(e.s);
    assert.equal(approval.action, "opencodeRouter.telegram.set-token");
    assert.deepEqual(approval.paths, [e.configFile]);
    assert.ok(!JSON.stringify(approval).includes("SECRET-TOKEN"), "no token in the approval");
    assert.equal(approval.change.token.last4, "OKEN");
    await e.s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true, persisted: true, applied: true, telegram: { configured: true, enabled: true, bot: { id: 7, username: "my_bot", name: "My Bot" }, applied: true, starting: false } });
    const cfg = await readConfig(e);
    assert.equal(cfg.version, 1);
    assert.deepEqual(cfg.channels.telegram, { enabled: true, bots: [{ id: e.s.workspaceId, token: "123:SECRET-TOKEN", enabled: true, directory: e.s.workspace, access: "public" }] });
    assert.equal((await stat(e.configFile)).mode & 0o777, 0o600);
    const call = e.router.requests.find((r) => r.url === "/identities/telegram")!;
    assert.deepEqual(JSON.parse(call.body.toString()), { id: e.s.workspaceId, token: "123:SECRET-TOKEN", enabled: true, directory: e.s.workspace });
    const audit = (await readAuditLog(e.s)).at(-1)!;
    assert.equal(audit.action, "opencodeRouter.telegram.set-token");
    assert.equal(audit.target, "opencodeRouter.telegram");
    assert.ok(!JSON.stringify(await readAuditLog(e.s)).includes("SECRET"));
    // GET telegram looks at the `default` bot only (reference quirk): a workspace bot reads as not configured.
    assert.deepEqual((await e.s.request("GET", `${e.base}/telegram`)).json, { ok: true, configured: false, enabled: false, bot: null });
    assert.ok(!e.s.logs.some((l) => JSON.stringify(l).includes("SECRET-TOKEN")), "never logged");
  } finally {
    await teardown(e);
  }
});

test("router down: token and identity writes degrade to persisted:true, applied:false; lists fall back to the file; bindings/send 503", async () => {
  const e = await setup({ routerDown: true });
  try {
    const res = await e.s.request("POST", `${e.base}/slack-tokens`, { json: { botToken: "xoxb-1", appToken: "xapp-1" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.persisted, true);
    assert.equal(res.json.applied, false);
    assert.equal(typeof res.json.applyError, "string");
    assert.deepEqual((await readConfig(e)).channels.slack.apps, [{ id: e.s.workspaceId, botToken: "xoxb-1", appToken: "xapp-1", enabled: true, directory: e.s.workspace }]);
    const list = await e.s.request("GET", `${e.base}/identities/slack`);
    assert.deepEqual(list.json, { ok: true, items: [{ id: e.s.workspaceId, enabled: true, running: false }] });
    for (const [method, path, json] of [["GET", "bindings", undefined], ["POST", "send", { channel: "telegram", text: "hi" }], ["POST", "bindings", { channel: "telegram", peerId: "1" }]] as const) {
      const r = await e.s.request(method, `${e.base}/${path}`, json ? { json } : {});
      assert.equal(r.status, 503, `${method} ${path}`);
      assert.equal(r.json.code, "opencode_router_unreachable");
    }
    assert.ok(!(await readAuditLog(e.s)).some((a) => a.action === "opencodeRouter.send"), "a failed send is not audited");
  } finally {
    await teardown(e);
  }
});

test("identities: private Telegram identity with a generated pairing code shown once; list reduced to this workspace; delete", async () => {
  const e = await setup();
  try {
    const res = await e.s.request("POST", `${e.base}/identities/telegram`, { json: { token: "123:SECRET-TOKEN", access: "PRIVATE" } });
    assert.equal(res.status, 200, res.text);
    const code = res.json.telegram.pairingCode as string;
    assert.match(code, /^[ABCDEFGHJKLMNPQRSTUVWXYZ23456789]{8}$/);
    assert.equal(res.json.telegram.access, "private");
    assert.equal(res.json.telegram.pairingRequired, true);
    const bot = (await readConfig(e)).channels.telegram.bots[0];
    assert.equal(bot.pairingCodeHash, createHash("sha256").update(code).digest("hex"));
    assert.ok(!JSON.stringify(await readConfig(e)).includes(code), "only the hash is stored");
    const sent = JSON.parse(e.router.requests.find((r) => r.url === "/identities/telegram")!.body.toString());
    assert.equal(sent.pairingCodeHash, bot.pairingCodeHash);
    assert.equal(sent.pairingCode, undefined);
    const list = await e.s.request("GET", `${e.base}/identities/telegram`);
    assert.deepEqual(list.json.items, [{ id: e.s.workspaceId, enabled: true, running: true, access: "private", pairingRequired: true }]);
    // An upsert without access keeps the private bot's access and hash.
    await e.s.request("POST", `${e.base}/telegram-token`, { json: { token: "123:SECRET-TOKEN" } });
    assert.equal((await readConfig(e)).channels.telegram.bots[0].pairingCodeHash, bot.pairingCodeHash);
    const del = await e.s.request("DELETE", `${e.base}/identities/telegram/${e.s.workspaceId}`);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.deleted, true);
    assert.deepEqual((await readConfig(e)).channels.telegram.bots, []);
  } finally {
    await teardown(e);
  }
});

test("bad input before any approval or write: identity of another workspace, env, channel, tokens, pairing code, peer, text; viewers; read-only", async () => {
  const e = await setup({ approval: "manual" });
  try {
    const cases: [string, string, unknown, string][] = [
      ["POST", "identities/telegram", { id: "someone-else", token: "t" }, "identity_mismatch"],
      ["DELETE", "identities/telegram/someone-else", undefined, "identity_mismatch"],
      ["POST", "identities/telegram", { token: "t", access: "private", pairingCode: "ab" }, "invalid_pairing_code"],
      ["POST", "identities/telegram", {}, "token_required"],
      ["POST", "slack-tokens", { botToken: "x" }, "token_required"],
      ["POST", "telegram-token", {}, "token_required"],
      ["GET", "identities/whatsapp", undefined, "invalid_channel"],
      ["POST", "bindings", { channel: "irc", peerId: "1" }, "invalid_channel"],
      ["POST", "bindings", { channel: "telegram" }, "peer_required"],
      ["POST", "send", { channel: "telegram", text: "  " }, "text_required"],
    ];
    for (const [method, path, json, code] of cases) {
      const r = await e.s.request(method, `${e.base}/${path}`, json === undefined ? {} : { json });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.equal(r.json.code, code, path);
    }
    const viewer = await e.s.mintToken("viewer");
    assert.equal((await e.s.request("GET", `${e.base}/identities/telegram`, { token: viewer })).status, 403);
    assert.equal((await e.s.request("POST", `${e.base}/telegram-token`, { token: viewer, json: { token: "t" } })).status, 403);
    await mkdir(join(e.configFile, ".."), { recursive: true });
    await writeFile(e.configFile, "{oops");
    const broken = await e.s.request("POST", `${e.base}/telegram-token`, { json: { token: "t" } });
    assert.equal(broken.status, 422);
    assert.equal(broken.json.code, "invalid_json");
    assert.equal((await e.s.request("GET", "/approvals", { token: null, host: true })).json.items.length, 0, "nothing reached the host");
    assert.equal(await readFile(e.configFile, "utf8"), "{oops");
  } finally {
    await teardown(e);
  }
  const ro = await setup({ readOnly: true });
  try {
    assert.equal((await ro.s.request("POST", `${ro.base}/telegram-token`, { json: { token: "t" } })).json.code, "read_only");
    // Sending is chat, not configuration: allowed in read-only mode (as the reference), audited.
    const sent = await ro.s.request("POST", `${ro.base}/send`, { json: { channel: "TELEGRAM", text: "hi", peerId: " 42 ", healthPort: 1 } });
    assert.equal(sent.status, 200, sent.text);
    assert.deepEqual(sent.json, { ok: true, channel: "telegram", directory: ro.s.workspace, attempted: 1, sent: 1 });
    assert.equal((await readAuditLog(ro.s)).at(-1)!.action, "opencodeRouter.send");
  } finally {
    await teardown(ro);
  }
});

test("bindings and send pass through the router; a router error is 502 opencode_router_request_failed (never 404); denied writes change nothing", async () => {
  const e = await setup({ approval: "manual" });
  try {
    const list = await e.s.request("GET", `${e.base}/bindings?channel=telegram`);
    assert.equal(list.status, 200);
    assert.equal(list.json.items[0].peerId, "42");
    assert.equal(e.router.requests.at(-1)!.url, `/bindings?channel=telegram&identityId=${e.s.workspaceId}`);
    const bind = e.s.request("POST", `${e.base}/bindings`, { json: { channel: "telegram", peerId: "42", directory: "/srv/x" } });
    const a = await firstApproval(e.s);
    assert.equal(a.action, "opencodeRouter.binding.set");
    await e.s.request("POST", `/approvals/${a.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.deepEqual((await bind).json, { ok: true });
    const failed = await e.s.request("POST", `${e.base}/send`, { json: { channel: "slack", text: "fail" } });
    assert.equal(failed.status, 502);
    assert.equal(failed.json.code, "opencode_router_request_failed");
    const denied = e.s.request("POST", `${e.base}/telegram-enabled`, { json: { enabled: false, clearToken: true } });
    await e.s.request("POST", `/approvals/${(await firstApproval(e.s)).id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await denied).json.code, "write_denied");
    await assert.rejects(readFile(e.configFile), "nothing persisted");
    const mounted = await e.s.request("POST", `/w/${e.s.workspaceId}${e.base}/send`, { json: { channel: "telegram", text: "hi" } });
    assert.equal(mounted.status, 200, "the mounted primary route serves send (no fallback needed)");
  } finally {
    await teardown(e);
  }
});
