// The OpenWork orchestrator launches this server as a sidecar: first as it does (the exact
// arguments and environment of 0.18.1, with a leading `--`) checked with its own post-launch
// checks, then with the real orchestrator binary (ORCHESTRATOR_BIN, provided by .ci/orchestrator.sh).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, startCli } from "./helpers/cli.ts";
import { waitFor } from "./helpers/wait.ts";
import { freePort } from "./helpers/ports.ts";

async function temp(t: { after(fn: () => Promise<void>): void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function get(url: string, headers: Record<string, string> = {}, init: RequestInit = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { ...init, headers });
  return { status: res.status, json: await res.json() };
}

test("launched as openwork-orchestrator 0.18.1 launches it: leading --, env credentials, its post-launch checks pass; JSON logs on stdout carry its fields", async (t) => {
  const home = await temp(t, "ow-orch-home-");
  const ws = await temp(t, "ow-orch-ws-");
  const env = {
    HOME: home,
    OPENWORK_TOKEN: "collab-token-1",
    OPENWORK_HOST_TOKEN: "host-token-1",
    OPENWORK_RUN_ID: "run-42",
    OPENWORK_LOG_FORMAT: "json",
    OTEL_RESOURCE_ATTRIBUTES: "service.name=openwork-server,service.instance.id=run-42",
    OPENWORK_OPENCODE_BASE_URL: "http://127.0.0.1:4096",
    OPENWORK_OPENCODE_DIRECTORY: ws,
    OPENWORK_OPENCODE_USERNAME: "opencode",
    OPENWORK_OPENCODE_PASSWORD: "oc-pass",
    OPENWORK_CONTROL_BASE_URL: "http://127.0.0.1:9",
    OPENWORK_CONTROL_TOKEN: "0b5f2c1e-0000-4000-8000-000000000000",
    SOME_UNKNOWN_VARIABLE: "ignored",
  };
  const args = ["--", "--host", "127.0.0.1", "--port", "0", "--workspace", ws, "--approval", "manual", "--approval-timeout", "30000", "--cors", "*", "--opencode-base-url", "http://127.0.0.1:4096", "--opencode-directory", ws, "--log-format", "json"];
  const cli = startCli(args, { env, cwd: ws });
  t.after(async () => {
    cli.kill("SIGKILL");
    await cli.exited;
  });
  const [, url] = await cli.waitForStdout(/listening on (\S+)\n/);
  // 1-2. health (version compared only when a manifest pins one)
  assert.equal((await get(`${url}/health`)).status, 200);
  // 3. the workspace with the credentials it passed, seen with the client token
  const list = await get(`${url}/workspaces`, { authorization: "Bearer collab-token-1" });
  assert.equal(list.status, 200);
  const item = list.json.items.find((w: any) => w.path.replace(/\/+$/, "") === ws);
  assert.ok(item, JSON.stringify(list.json));
  assert.deepEqual(item.opencode, { baseUrl: "http://127.0.0.1:4096", directory: ws, username: "opencode", password: "oc-pass" });
  // 4. approvals with the host token; 5. an owner token minted
  assert.equal((await get(`${url}/approvals`, { "x-openwork-host-token": "host-token-1" })).status, 200);
  const minted = await get(`${url}/tokens`, { "x-openwork-host-token": "host-token-1", "content-type": "application/json" }, { method: "POST", body: JSON.stringify({ scope: "owner", label: "OpenWork owner token" }) });
  assert.equal(minted.status, 201);
  assert.equal(typeof minted.json.token, "string");
  // 6. --check: the config of items[0]
  assert.equal((await get(`${url}/workspace/${list.json.items[0].id}/config`, { authorization: "Bearer collab-token-1" })).status, 200);

  // Its log streams: every stdout line after the banner is a JSON object it passes through raw.
  const line = await waitFor(() => cli.stdout().split("\n").find((l) => l.includes('"body":"request"') && l.includes("/tokens")), { what: "request log line" });
  const entry = JSON.parse(line);
  assert.equal(typeof entry.timeUnixNano, "string");
  assert.equal(typeof entry.severityText, "string");
  assert.equal(entry.severityNumber, 9);
  assert.deepEqual(entry.resource, { "service.name": "openwork-server", "service.version": entry.resource["service.version"], "service.instance.id": "run-42" });
  assert.equal(cli.stderr(), "", "nothing on stderr: the orchestrator labels every stderr line ERROR");
  assert.ok(!cli.stdout().includes("oc-pass") && !cli.stdout().includes("host-token-1"));
  cli.kill("SIGTERM");
  assert.equal((await cli.exited).code, 0);
});

test("--no-log-requests and OPENWORK_LOG_REQUESTS=0 turn request lines off", async (t) => {
  const home = await temp(t, "ow-orch-home-");
  for (const [args, env] of [[["--no-log-requests"], {}], [[], { OPENWORK_LOG_REQUESTS: "0" }]] as const) {
    const cli = startCli(["--port", "0", "--token", "tok", ...args], { env: { HOME: home, ...env } });
    const [, url] = await cli.waitForStdout(/listening on (\S+)\n/);
    assert.equal((await get(`${url}/status`, { authorization: "Bearer tok" })).status, 200);
    cli.kill("SIGTERM");
    const r = await cli.exited;
    assert.equal(r.code, 0);
    assert.ok(!r.stdout.includes("/status") && !r.stderr.includes("/status"), `${JSON.stringify(args)}: ${r.stdout}`);
  }
  const bad = startCli(["--port", "0"], { env: { HOME: home, OPENWORK_LOG_REQUESTS: "maybe" } });
  const r = await bad.exited;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /OPENWORK_LOG_REQUESTS/);
});

/**
 * `openwork serve` with our published entry on a temp workspace and HOME; its output collected. It
 * runs in a process group of its own, removed whole when the test ends: the OpenCode and server it
 * started must not outlive a failed test.
 */
async function serve(t: { after(fn: () => Promise<void>): void }, bins: { orchestrator: string; opencode: string }, extra: string[]) {
  const home = await temp(t, "ow-orch-home-");
  const ws = await temp(t, "ow-orch-ws-");
  const child = spawn(bins.orchestrator, ["serve", "--workspace", ws, "--openwork-server-bin", join(REPO_ROOT, "bin/openwork-server.js"), "--opencode-bin", bins.opencode, "--allow-external", "--no-tui", ...extra], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
    cwd: ws,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const run = {
    ws,
    child,
    out: "",
    closed: new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c))),
    /** SIGKILL to the whole group (the orchestrator and everything it started). */
    async killAll(): Promise<void> {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // the group is already gone
      }
      await run.closed;
    },
  };
  child.stdout.setEncoding("utf8").on("data", (c: string) => (run.out += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (run.out += c));
  t.after(() => run.killAll());
  return run;
}

/**
 * `openwork serve` on a free port until it reports itself running. OpenCode may leave a request
 * that arrives during its own start-up unanswered, and the orchestrator's health check then waits
 * forever: a launch that is not running within 60 s is removed and tried again (three times).
 */
async function serveRunning(t: { after(fn: () => Promise<void>): void }, bins: { orchestrator: string; opencode: string }, extra: string[]) {
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const run = await serve(t, bins, ["--openwork-port", String(port), ...extra]);
    const up = await waitFor(() => /OpenWork orchestrator running/.test(run.out) || run.child.exitCode !== null || undefined, { timeoutMs: 60_000, what: "the orchestrator running" }).then(() => /OpenWork orchestrator running/.test(run.out), () => false);
    if (up) return { run, url: `http://127.0.0.1:${port}` };
    last = run.out;
    await run.killAll();
  }
  assert.fail(`openwork serve did not report itself running in three tries; last output:\n${last}`);
}

/** The real orchestrator and the OpenCode it pins (.ci/orchestrator.sh); skipped locally, a failure in CI, without them. */
function orchestratorBins(t: { skip(message: string): void }): { orchestrator: string; opencode: string } | undefined {
  const orchestrator = process.env.ORCHESTRATOR_BIN;
  const opencode = process.env.ORCHESTRATOR_OPENCODE_BIN;
  if (orchestrator && opencode) return { orchestrator, opencode };
  // CI provides both; there these tests must run, never skip.
  assert.ok(!process.env.CI, "ORCHESTRATOR_BIN / ORCHESTRATOR_OPENCODE_BIN must be set in CI");
  t.skip("set ORCHESTRATOR_BIN and ORCHESTRATOR_OPENCODE_BIN (source .ci/orchestrator.sh)");
  return undefined;
}

test("the real orchestrator (openwork serve --check) starts bin/openwork-server.js and its checks pass", { timeout: 180_000 }, async (t) => {
  const bins = orchestratorBins(t);
  if (!bins) return;
  // The orchestrator runs the published entry, which imports the compiled dist/ (built by npm ci / npm run build).
  assert.ok(existsSync(join(REPO_ROOT, "dist/cli.js")), "dist/cli.js exists (run npm run build)");
  const run = await serve(t, bins, ["--openwork-port", "0", "--check"]);
  const timer = setTimeout(() => void run.killAll(), 150_000);
  const code = await run.closed;
  clearTimeout(timer);
  assert.equal(code, 0, run.out);
  assert.match(run.out, /Checks: ok/);
  assert.match(run.out, /\[openwork-server\] Healthy/);
  assert.doesNotMatch(run.out, /\[openwork-server\] ERROR/, "no line of ours was labelled an error");
});

test("under the real orchestrator (openwork serve): runtime versions come from its control endpoint, the engine it manages answers through /w/:id/opencode, and stopping it stops us", { timeout: 280_000 }, async (t) => {
  const bins = orchestratorBins(t);
  if (!bins) return;
  const { run, url } = await serveRunning(t, bins, ["--openwork-token", "collab-token-2", "--openwork-host-token", "host-token-2"]);
  const { child, closed } = run;
  const client = { authorization: "Bearer collab-token-2" };

  // Runtime control: the orchestrator passed OPENWORK_CONTROL_BASE_URL/TOKEN; we relay its snapshot.
  const versions = await get(`${url}/runtime/versions`, client);
  assert.equal(versions.status, 200, JSON.stringify(versions.json));
  assert.equal(versions.json.orchestrator.version, "0.18.1");
  const ours = versions.json.services.find((s: { name: string }) => s.name === "openwork-server");
  assert.equal(ours.running, true);
  assert.equal(ours.path, join(REPO_ROOT, "bin/openwork-server.js"));
  // A viewer gets it without host paths.
  const viewer = await get(`${url}/tokens`, { "x-openwork-host-token": "host-token-2", "content-type": "application/json" }, { method: "POST", body: JSON.stringify({ scope: "viewer" }) });
  const seen = await get(`${url}/runtime/versions`, { authorization: `Bearer ${viewer.json.token}` });
  assert.equal(seen.status, 200);
  assert.equal(seen.json.worker.workspace, undefined);
  assert.ok(seen.json.services.every((s: { path?: string }) => s.path === undefined));

  // The engine it manages (basic auth it generated and passed to us) through the mounted proxy.
  const id = (await get(`${url}/workspaces`, client)).json.items[0].id as string;
  const created = await waitFor(async () => {
    const res = await get(`${url}/w/${id}/opencode/session`, { ...client, "content-type": "application/json" }, { method: "POST", body: "{}" });
    return res.status === 200 ? res : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500, what: "a session created through the proxy" });
  assert.match(created.json.id, /^ses_/);
  assert.equal(created.json.directory, run.ws);

  // Stopping the orchestrator stops its sidecars: our port closes.
  child.kill("SIGTERM");
  await closed;
  await waitFor(async () => (await fetch(`${url}/health`).then(() => false, () => true)) || undefined, { timeoutMs: 20_000, what: "our server stopped with the orchestrator" });
});
