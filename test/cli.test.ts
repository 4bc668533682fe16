import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli, startCli, type RunningCli } from "./helpers/cli.ts";
import { gatedRoute, GATED_FILE } from "./helpers/gated-route.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { tempDir } from "./helpers/temp.ts";

const TLS_DIR = fileURLToPath(new URL("./fixtures/tls/", import.meta.url));
const PKG = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

async function tempHome(t: { after(fn: () => Promise<void>): void }): Promise<{ home: string; ws: string }> {
  const home = await tempDir(t, "ow-cli-");
  const ws = join(home, "My Workspace");
  await mkdir(ws);
  return { home, ws };
}

function get(url: string, headers: Record<string, string> = {}, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(url, { headers, ...(ca ? { ca } : {}), agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c)).on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Makes sure a started CLI never outlives its test. */
function track(t: { after(fn: () => Promise<void>): void }, cli: RunningCli): RunningCli {
  t.after(async () => {
    cli.kill("SIGKILL");
    await cli.exited;
  });
  return cli;
}

test("--help prints usage listing every flag and exits 0", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: openwork-server/);
  for (const flag of ["--config", "--host", "--port", "--token", "--host-token", "--approval", "--approval-timeout", "--workspace", "--cors", "--read-only", "--opencode-base-url", "--opencode-directory", "--opencode-username", "--opencode-password", "--data-dir", "--log-format", "--verbose", "--tls-cert", "--tls-key", "--version", "approvals", "audit verify"]) {
    assert.ok(r.stdout.includes(flag), `help mentions ${flag}`);
  }
  assert.equal(r.stderr, "");
  const short = await runCli(["-h"]);
  assert.equal(short.code, 0);
  assert.equal(short.stdout, r.stdout);
});

test("--version prints the bare package version and exits 0", async () => {
  const r = await runCli(["--version"]);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, PKG.version + "\n");
});

test("start on port 0: real URL, generated tokens once, workspace count, UI link; SIGTERM exits 0", async (t) => {
  const { home, ws } = await tempHome(t);
  const cli = track(t, startCli(["--workspace", ws, "--port", "0"], { env: { HOME: home } }));
  const [, url, port] = await cli.waitForStdout(/OpenWork server listening on (http:\/\/127\.0\.0\.1:(\d+))\n/);
  assert.notEqual(Number(port), 0);
  const out = await cli.waitForStdout(/UI: .*\n/).then(() => cli.stdout());
  const client = /Client token \(generated\): (\S+)/.exec(out)?.[1];
  const host = /Host token \(generated\): (\S+)/.exec(out)?.[1];
  assert.ok(client && host && client !== host);
  assert.match(out, /Workspaces: 1\n  ws_[0-9a-f]{12}  My Workspace  /);
  assert.ok(out.includes(`UI: ${url}/ui#token=${encodeURIComponent(client!)}`));

  const health = await get(`${url}/health`);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).version, PKG.version);
  assert.equal((await get(`${url}/status`, { authorization: `Bearer ${client}` })).status, 200);
  assert.equal((await get(`${url}/approvals`, { "x-openwork-host-token": host! })).status, 200);
  assert.equal((await get(`${url}/status`, { authorization: "Bearer wrong" })).status, 401);

  // The tokens appear once (in the banner) and never in the logs. Request lines go to stdout (the
  // orchestrator labels every stderr line ERROR); nothing went to stderr.
  await waitFor(() => cli.stdout().includes("/status"), { what: "request log" });
  assert.equal(cli.stderr(), "");
  assert.ok(out.includes(`UI with host rights (approvals, tokens): ${url}/ui#token=${encodeURIComponent(client!)}&hostToken=${encodeURIComponent(host!)}`));
  assert.equal(out.split(client!).length - 1, 3, "client token: banner line + the two UI links");
  assert.equal(out.split(host!).length - 1, 2, "host token: banner line + the host UI link");
  const logs = cli.stdout().slice(cli.stdout().indexOf("\n", cli.stdout().lastIndexOf("UI")));
  assert.ok(!logs.includes(client!) && !logs.includes(host!));

  const started = Date.now();
  cli.kill("SIGTERM");
  const r = await cli.exited;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - started < 5000, "exits within 5 s");
});

test("configured tokens are not printed as generated; no workspace → how to add one; SIGINT exits 0", async (t) => {
  const { home } = await tempHome(t);
  const cli = track(t, startCli(["--port", "0", "--token", "my-client-token", "--host-token", "my-host-token"], { env: { HOME: home } }));
  await cli.waitForStdout(/UI: .*\n/);
  assert.doesNotMatch(cli.stdout(), /generated/);
  assert.doesNotMatch(cli.stdout(), /my-host-token/);
  assert.doesNotMatch(cli.stdout(), /my-client-token/, "a chosen token is never echoed, not even in the UI link");
  assert.match(cli.stdout(), /Workspaces: 0 — add one with --workspace/);
  cli.kill("SIGINT");
  assert.equal((await cli.exited).code, 0);
});

test("--verbose prints the resolved configuration with secrets masked; JSON logs strip query strings", async (t) => {
  const { home, ws } = await tempHome(t);
  const cli = track(t, startCli(["--workspace", ws, "--port", "0", "--verbose", "--log-format", "json", "--token", "tok-123456", "--host-token", "host-abcdef", "--opencode-password", "pw-secret"], { env: { HOME: home } }));
  const [, url] = await cli.waitForStdout(/listening on (\S+)\n/);
  const out = cli.stdout();
  assert.match(out, /Resolved configuration \(secrets masked\):/);
  const block = out.slice(out.indexOf("{"), out.indexOf("OpenWork server listening"));
  const resolved = JSON.parse(block);
  assert.equal(resolved.token, "[redacted]");
  assert.equal(resolved.hostToken, "[redacted]");
  assert.equal(resolved.opencode.password, "[redacted]");
  assert.equal(resolved.port, 0);
  assert.deepEqual(resolved.workspaces, [{ path: ws }]);
  assert.ok(!out.includes("host-abcdef") && !out.includes("pw-secret"));

  await get(`${url}/health?token=query-secret`, { authorization: "Bearer tok-123456" });
  const line = await waitFor(() => cli.stdout().split("\n").find((l) => l.includes('"msg":"request"')), { what: "JSON request log" });
  const entry = JSON.parse(line);
  assert.equal(entry.level, "info");
  assert.equal(entry.severityText, "INFO");
  assert.equal(entry.attributes.method, "GET");
  assert.equal(entry.attributes.path, "/health");
  assert.equal(entry.attributes.status, 200);
  assert.equal(typeof entry.attributes.durationMs, "number");
  assert.equal(entry.resource["service.name"], "openwork-server");
  assert.ok(!Number.isNaN(Date.parse(entry.time)));
  const logLines = cli.stdout().slice(cli.stdout().indexOf("\n", cli.stdout().lastIndexOf("UI: "))).trim().split("\n");
  for (const l of logLines) JSON.parse(l); // every log line is JSON
  assert.equal(cli.stderr(), "");
  assert.ok(!cli.stdout().includes("query-secret") && !cli.stdout().includes("tok-123456"));
  cli.kill("SIGTERM");
  assert.equal((await cli.exited).code, 0);
});

test("TLS: --tls-cert/--tls-key serve https", async (t) => {
  const { home, ws } = await tempHome(t);
  const cli = track(t, startCli(["--workspace", ws, "--port", "0", "--tls-cert", join(TLS_DIR, "cert.pem"), "--tls-key", join(TLS_DIR, "key.pem")], { env: { HOME: home } }));
  const [, url] = await cli.waitForStdout(/listening on (https:\/\/\S+)\n/);
  const res = await get(`${url}/health`, {}, await readFile(join(TLS_DIR, "cert.pem"), "utf8"));
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).ok, true);
  cli.kill("SIGTERM");
  assert.equal((await cli.exited).code, 0);
});

// --- host subcommands against a running server -----------------------------------------------

async function gatedServer(t: { after(fn: () => Promise<void>): void }): Promise<TestServer> {
  const s = await startServer({ approval: "manual", extraRoutes: [gatedRoute] });
  t.after(() => s.close());
  return s;
}

async function pendingIds(s: TestServer): Promise<string[]> {
  const r = await s.request("GET", "/approvals", { token: null, host: true });
  return (r.json.items as Array<{ id: string }>).map((i) => i.id);
}

test("approvals list / allow / deny talk to a running server with the host token", async (t) => {
  const s = await gatedServer(t);
  const env = { HOME: s.home };
  const hostArgs = ["--url", s.url, "--host-token", s.hostToken];

  const empty = await runCli(["approvals", "list", ...hostArgs], { env });
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /No pending approvals/);

  const held = s.request("POST", `/test/workspace/${s.workspaceId}/gated`, { json: { text: "via cli" } });
  const [id] = await waitFor(async () => ((await pendingIds(s)).length === 1 ? pendingIds(s) : undefined), { what: "pending approval" });
  const list = await runCli(["approvals", "list", ...hostArgs], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(list.stdout.includes(id!));
  assert.match(list.stdout, /test\.write/);
  assert.ok(list.stdout.includes(join(s.workspace, GATED_FILE)));
  const asJson = await runCli(["approvals", "list", "--json", ...hostArgs], { env: { HOME: s.home, OPENWORK_URL: "http://127.0.0.1:1" } });
  assert.equal(JSON.parse(asJson.stdout)[0].id, id, "--url wins over OPENWORK_URL");

  // Env instead of flags.
  const allow = await runCli(["approvals", "allow", id!], { env: { HOME: s.home, OPENWORK_URL: s.url, OPENWORK_HOST_TOKEN: s.hostToken } });
  assert.equal(allow.code, 0, allow.stderr);
  assert.match(allow.stdout, new RegExp(`Allowed ${id}`));
  assert.equal((await held).status, 200);
  assert.equal(await readFile(join(s.workspace, GATED_FILE), "utf8"), "via cli");

  const held2 = s.request("POST", `/test/workspace/${s.workspaceId}/gated`, { json: { text: "denied" } });
  const [id2] = await waitFor(async () => ((await pendingIds(s)).length === 1 ? pendingIds(s) : undefined), { what: "second approval" });
  const deny = await runCli(["approvals", "deny", id2!, ...hostArgs], { env });
  assert.equal(deny.code, 0, deny.stderr);
  const denied = await held2;
  assert.equal(denied.status, 403);
  assert.equal(denied.json.code, "write_denied");
  assert.equal(await readFile(join(s.workspace, GATED_FILE), "utf8"), "via cli", "nothing written");

  const unknown = await runCli(["approvals", "allow", id2!, ...hostArgs], { env });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /not found/);
});

test("approvals CLI: host token from server.json, URL from the config's port; failures have distinct exit codes", async (t) => {
  const s = await gatedServer(t);
  const port = new URL(s.url).port;
  const home = await tempDir(t, "ow-cli-cfg-");
  await mkdir(join(home, ".config", "openwork"), { recursive: true });
  await writeFile(join(home, ".config", "openwork", "server.json"), JSON.stringify({ port: Number(port), hostToken: s.hostToken }));
  const fromConfig = await runCli(["approvals", "list"], { env: { HOME: home } });
  assert.equal(fromConfig.code, 0, fromConfig.stderr);
  assert.match(fromConfig.stdout, /No pending approvals/);

  const wrong = await runCli(["approvals", "list", "--url", s.url, "--host-token", "nope"], { env: { HOME: s.home } });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the host token/);
  const noToken = await runCli(["approvals", "list", "--url", s.url], { env: { HOME: s.home } });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /no host token/);
  const unreachable = await runCli(["approvals", "list", "--url", "http://127.0.0.1:1", "--host-token", "x"], { env: { HOME: s.home } });
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach the server/);
  const usage = await runCli(["approvals", "frobnicate"], { env: { HOME: s.home } });
  assert.equal(usage.code, 2);
  const badFlag = await runCli(["approvals", "list", "--nope"], { env: { HOME: s.home } });
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--nope/);
});

test("approvals watch prints requested and resolved events from the SSE feed", async (t) => {
  const s = await gatedServer(t);
  const watch = track(t, startCli(["approvals", "watch", "--url", s.url, "--host-token", s.hostToken], { env: { HOME: s.home } }));
  await watch.waitForStdout(/Watching approvals/);
  await waitFor(() => s.context.streams.size === 1, { what: "watch stream open" });
  const held = s.request("POST", `/test/workspace/${s.workspaceId}/gated`, { json: { text: "watched" } });
  const [, id] = await watch.waitForStdout(/requested {2}(\S+) {2}ws_\S+ {2}test\.write/);
  const reply = await s.request("POST", `/approvals/${id}`, { token: null, host: true, json: { reply: "allow" } });
  assert.equal(reply.status, 200);
  await watch.waitForStdout(new RegExp(`resolved {3}${id} {2}allowed`));
  assert.equal((await held).status, 200);
  assert.ok(existsSync(join(s.workspace, GATED_FILE)));
  watch.kill("SIGINT");
  assert.equal((await watch.exited).code, 0);
});
