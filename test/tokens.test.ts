// Scoped tokens: the reference store format, file mode, corrupt stores, mint/revoke, audit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request as httpRequest } from "node:http";
import { startServer } from "./helpers/server.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";
import { StartupError } from "../src/startup-error.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

test("a store written in the reference format is read; its tokens work with their scopes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-store-"));
  const store = join(dir, "tokens.json");
  const viewerSecret = "owt_" + "a".repeat(32);
  const expiredSecret = "owt_" + "b".repeat(32);
  await writeFile(store, JSON.stringify({
    schemaVersion: 1,
    updatedAt: 1730000000000,
    tokens: [
      { id: "11111111-1111-4111-8111-111111111111", hash: sha(viewerSecret), scope: "viewer", createdAt: 1730000000000, label: "phone" },
      { id: "22222222-2222-4222-8222-222222222222", hash: sha(expiredSecret), scope: "owner", createdAt: 1730000000000, expiresAt: 1730000001000 },
    ],
  }));
  const s = await startServer({ env: { OPENWORK_TOKEN_STORE: store } });
  try {
    const who = await s.request("GET", "/whoami", { token: viewerSecret });
    assert.equal(who.status, 200);
    assert.equal(who.json.actor.scope, "viewer");
    assert.equal((await s.request("GET", "/whoami", { token: expiredSecret })).status, 401, "expired tokens are rejected");
    const list = await s.request("GET", "/tokens", { token: null, host: true });
    assert.deepEqual(list.json.items[0], { id: "11111111-1111-4111-8111-111111111111", scope: "viewer", createdAt: 1730000000000, label: "phone" });
    assert.ok(!list.text.includes(sha(viewerSecret)), "hashes are never listed");
  } finally {
    await s.close();
  }
});

test("minting stores only the hash, mode 0600, and is audited without the secret", async () => {
  const s = await startServer();
  try {
    const res = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "collaborator", label: "ci", ttlSeconds: 60 } });
    assert.equal(res.status, 201);
    assert.match(res.json.token, /^owt_[0-9a-f]{32}$/);
    assert.equal(res.json.scope, "collaborator");
    assert.equal(res.json.label, "ci");
    assert.equal(res.json.expiresAt - res.json.createdAt, 60000);
    const storePath = s.context.config.tokenStorePath;
    const text = await readFile(storePath, "utf8");
    assert.ok(!text.includes(res.json.token), "the secret is not stored");
    assert.ok(text.includes(sha(res.json.token)));
    assert.equal((await stat(storePath)).mode & 0o777, 0o600);
    const audit = await readFile(join(s.dataDir, "audit", "_server.jsonl"), "utf8");
    assert.match(audit, /"action":"tokens.mint"/);
    assert.ok(!audit.includes(res.json.token));
  } finally {
    await s.close();
  }
});

test("token validation: bad scope, label and ttl", async () => {
  const s = await startServer();
  try {
    const cases: Array<[unknown, string]> = [
      [{ scope: "admin" }, "invalid_scope"],
      [{}, "invalid_scope"],
      [{ scope: "viewer", label: "x".repeat(201) }, "invalid_payload"],
      [{ scope: "viewer", label: 5 }, "invalid_payload"],
      [{ scope: "viewer", ttlSeconds: -1 }, "invalid_payload"],
      [{ scope: "viewer", ttlSeconds: "10" }, "invalid_payload"],
    ];
    for (const [body, code] of cases) {
      const res = await s.request("POST", "/tokens", { token: null, host: true, json: body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.code, code);
    }
    assert.equal((await s.request("GET", "/tokens", { token: null, host: true })).json.items.length, 0);
    const missing = await s.request("DELETE", "/tokens/nope", { token: null, host: true });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, "token_not_found");
  } finally {
    await s.close();
  }
});

test("a revoked token stops working at once and its open SSE stream closes", async () => {
  const s = await startServer();
  try {
    const minted = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "owner" } });
    const token = minted.json.token;
    assert.equal((await s.request("GET", "/approvals", { token })).status, 200, "owner bearer opens host routes");
    const feed = await openSseClient(`${s.url}/approvals/events`, { authorization: `Bearer ${token}` });
    assert.equal(feed.status, 200);
    assert.equal((await s.request("DELETE", `/tokens/${minted.json.id}`, { token: null, host: true })).status, 200);
    await waitFor(() => feed.closed, { what: "stream closed after revoke" });
    assert.equal((await s.request("GET", "/approvals", { token })).status, 401);
    assert.equal((await s.request("GET", "/whoami", { token })).status, 401);
  } finally {
    await s.close();
  }
});

test("read-only mode refuses minting and revoking", async () => {
  const s = await startServer({ readOnly: true });
  try {
    const res = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "viewer" } });
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "read_only");
  } finally {
    await s.close();
  }
});

test("a corrupt token store is a startup error (in process and from the CLI, exit 2)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-store-"));
  const store = join(dir, "tokens.json");
  await writeFile(store, "{ not json");
  await assert.rejects(startServer({ env: { OPENWORK_TOKEN_STORE: store } }), StartupError);
  await writeFile(store, JSON.stringify({ tokens: [{ id: "x" }] }));
  await assert.rejects(startServer({ env: { OPENWORK_TOKEN_STORE: store } }), StartupError);
  const ws = await mkdtemp(join(tmpdir(), "ow-ws-"));
  const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli.ts", "--workspace", ws, "--port", "0"], {
    env: { ...process.env, HOME: dir, OPENWORK_TOKEN_STORE: store },
    encoding: "utf8",
    timeout: 30000,
  });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, /tokens\.json/);
  assert.equal(await readFile(store, "utf8"), JSON.stringify({ tokens: [{ id: "x" }] }), "the corrupt store is left as it was");
});

test("on one keep-alive connection a remembered token stops at once when revoked or expired, and a changed header is checked again", async () => {
  const s = await startServer();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (token: string) =>
    new Promise<{ status: number; port: number }>((resolve, reject) => {
      const req = httpRequest(`${s.url}/status`, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, port: req.socket?.localPort ?? 0 }));
      });
      req.on("error", reject);
      req.end();
    });
  try {
    const minted = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "viewer" } });
    const first = await get(minted.json.token);
    const second = await get(minted.json.token);
    assert.deepEqual([first.status, second.status], [200, 200]);
    assert.equal(first.port, second.port, "the same connection");
    assert.equal((await get("wrong-token")).status, 401, "another header on the same connection is checked");
    assert.equal((await get(minted.json.token)).status, 200);
    assert.equal((await s.request("DELETE", `/tokens/${minted.json.id}`, { token: null, host: true })).status, 200);
    assert.equal((await get(minted.json.token)).status, 401, "revoked: refused on the connection that used it");
    const short = await s.request("POST", "/tokens", { token: null, host: true, json: { scope: "viewer", ttlSeconds: 1 } });
    assert.equal((await get(short.json.token)).status, 200);
    await waitFor(async () => (await get(short.json.token)).status === 401 || undefined, { what: "expired token refused", timeoutMs: 5_000 });
  } finally {
    agent.destroy();
    await s.close();
  }
});
