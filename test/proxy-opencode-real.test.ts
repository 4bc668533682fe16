// The OpenCode proxy against the real OpenCode server (`opencode serve`). `.ci/run` provides the
// binary through .ci/opencode.sh (OPENCODE_BIN). In CI a missing binary is a failure, not a skip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, constants, mkdtemp, readFile, realpath, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstApproval, pendingApprovals, readAuditLog, startServer, type StartOptions, type TestServer } from "./helpers/server.ts";
import { openSseClient } from "./helpers/sse.ts";
import { waitFor } from "./helpers/wait.ts";
import { freePort } from "./helpers/ports.ts";
import { call } from "./helpers/http-call.ts";

const bin = process.env.OPENCODE_BIN;

async function binaryUsable(path: string | undefined): Promise<boolean> {
  if (!path) return false;
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

interface RunningOpencode {
  output: string[];
  /** Throws (with the engine's output) when `opencode serve` has exited. */
  checkAlive(): void;
  stop(): Promise<void>;
}

/** `opencode serve` in `cwd` with basic auth and no network side trips; resolves once it prints its "listening" line. */
async function startOpencode(cwd: string, home: string, port: number, password: string): Promise<RunningOpencode> {
  const oc: ChildProcess = spawn(bin!, ["serve", "--port", String(port), "--hostname", "127.0.0.1"], {
    cwd,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_DATA_HOME: join(home, ".local/share"),
      XDG_CACHE_HOME: join(home, ".cache"),
      XDG_STATE_HOME: join(home, ".local/state"),
      // The engine requires basic auth; the proxy must supply it.
      OPENCODE_SERVER_PASSWORD: password,
      // No network side trips during the test (models list, default plugins, LSP downloads, updates).
      OPENCODE_DISABLE_AUTOUPDATE: "1",
      OPENCODE_DISABLE_MODELS_FETCH: "1",
      OPENCODE_DISABLE_DEFAULT_PLUGINS: "1",
      OPENCODE_DISABLE_LSP_DOWNLOAD: "1",
      OPENCODE_DISABLE_SHARE: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  oc.stdout!.on("data", (c: Buffer) => output.push(c.toString()));
  oc.stderr!.on("data", (c: Buffer) => output.push(c.toString()));
  let exitCode: number | null | undefined;
  oc.on("exit", (code) => (exitCode = code));
  const running: RunningOpencode = {
    output,
    checkAlive() {
      if (exitCode !== undefined) throw new Error(`opencode exited (${exitCode}): ${output.join("")}`);
    },
    async stop() {
      if (oc.exitCode !== null || oc.signalCode !== null) return;
      const gone = new Promise<void>((r) => oc.once("exit", () => r()));
      oc.kill("SIGTERM");
      const timer = setTimeout(() => oc.kill("SIGKILL"), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
  try {
    // Wait for its "listening" line first: opencode 1.18 leaves a request that arrives during its
    // own start-up unanswered.
    await waitFor(() => exitCode !== undefined || /listening on/.test(output.join("")), { timeoutMs: 60_000, what: "opencode serve listening" });
    running.checkAlive();
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}

/** Skips locally, fails in CI, when the real binary is missing. */
async function requireBinary(t: { skip(message: string): void }): Promise<boolean> {
  if (await binaryUsable(bin)) return true;
  const why = `OPENCODE_BIN is ${bin ? `not executable (${bin})` : "not set"}; source .ci/opencode.sh to provide the OpenCode binary`;
  // In CI the real-engine test must run: a missing binary is a failure, never a silent skip.
  if (process.env.CI) assert.fail(why);
  t.skip(`${why} (skipped locally)`);
  return false;
}

/** Where the engine will listen and its password, and our server pointed at it (with `options`). */
async function serverForEngine(options: StartOptions = {}): Promise<{ s: TestServer; ocHome: string; ocPort: number; password: string }> {
  const ocHome = await mkdtemp(join(tmpdir(), "ow-oc-home-"));
  const password = randomBytes(12).toString("hex");
  const ocPort = await freePort();
  const s = await startServer({
    ...options,
    env: {
      OPENWORK_OPENCODE_BASE_URL: `http://127.0.0.1:${ocPort}`,
      OPENWORK_OPENCODE_USERNAME: "opencode",
      OPENWORK_OPENCODE_PASSWORD: password,
    },
  });
  return { s, ocHome, ocPort, password };
}

/**
 * Runs `body` against our server (started with `options`) and a real `opencode serve` behind it;
 * both are stopped afterwards. Skipped locally, a failure in CI, without the binary.
 */
async function withEngine(
  t: { skip(message: string): void },
  options: StartOptions,
  body: (e: { s: TestServer; oc: RunningOpencode; ocPort: number }) => Promise<void>,
): Promise<void> {
  if (!(await requireBinary(t))) return;
  const { s, ocHome, ocPort, password } = await serverForEngine(options);
  let oc: RunningOpencode | undefined;
  try {
    oc = await startOpencode(s.workspace, ocHome, ocPort, password);
    // A request that opencode leaves unanswered during its start-up becomes a quick retry.
    s.context.proxy.headersTimeoutMs = 5_000;
    await body({ s, oc, ocPort });
  } finally {
    await oc?.stop();
    await s.close();
    await rm(ocHome, { recursive: true, force: true });
  }
}

test("real OpenCode through /w/:id/opencode: config, session create/list, event stream, session delete, engine reload", { timeout: 120_000 }, async (t) => {
  await withEngine(t, {}, async ({ s, oc, ocPort }) => {
    const base = `${s.url}/w/${s.workspaceId}/opencode`;
    const auth = { authorization: `Bearer ${s.clientToken}` };
    const config = await waitFor(
      async () => {
        oc!.checkAlive();
        const res = await call(`${base}/config`, { headers: auth });
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "opencode serve answering /config through the proxy" },
    );
    assert.equal(typeof config.json, "object");
    assert.ok(config.json !== null && !Array.isArray(config.json));

    // Without our basic auth the engine refuses: proves the proxy adds it.
    assert.equal((await call(`http://127.0.0.1:${ocPort}/config`)).status, 401);

    const created = await call(`${base}/session`, { method: "POST", headers: { ...auth, "content-type": "application/json", "x-opencode-directory": "/" }, body: "{}" });
    assert.equal(created.status, 200, created.text);
    const sessionId = created.json.id as string;
    assert.match(sessionId, /^ses_/);
    assert.equal(created.json.directory, await realpath(s.workspace), "the engine acted on the workspace, not the client's directory");

    const listed = await call(`${base}/session`, { headers: auth });
    assert.equal(listed.status, 200);
    assert.ok((listed.json as Array<{ id: string }>).some((x) => x.id === sessionId), "new session is listed");

    const events = await openSseClient(`${base}/event`, auth);
    assert.equal(events.status, 200);
    assert.match(String(events.headers["content-type"]), /text\/event-stream/);
    await waitFor(() => events.events.length >= 1, { timeoutMs: 15_000, what: "an event from the engine" });
    const first = JSON.parse(events.events[0]!.data) as { type?: string };
    assert.equal(typeof first.type, "string");
    events.close();

    const deleted = await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/${sessionId}`);
    assert.equal(deleted.status, 200, deleted.text);
    assert.deepEqual(deleted.json, { ok: true });
    const after = await call(`${base}/session`, { headers: auth });
    assert.ok(!(after.json as Array<{ id: string }>).some((x) => x.id === sessionId), "session is gone");

    const again = await s.request("DELETE", `/workspace/${s.workspaceId}/sessions/${sessionId}`);
    assert.equal(again.status, 502);
    assert.equal(again.json.code, "opencode_request_failed");
    assert.equal(again.json.details.status, 404);

    // The app's "reload engine": the engine disposes its instance (audited) and answers again afterwards.
    const reloaded = await s.request("POST", `/workspace/${s.workspaceId}/engine/reload`, { json: {} });
    assert.equal(reloaded.status, 200, reloaded.text);
    assert.equal(reloaded.json.ok, true);
    assert.ok((await readAuditLog(s)).some((e) => e.action === "engine.reload"));
    await waitFor(async () => (await call(`${base}/session`, { headers: auth })).status === 200 || undefined, { timeoutMs: 30_000, intervalMs: 250, what: "the engine answering after its reload" });
  });
});

test("real OpenCode, engine policy: a prompt-only slash command goes on at once; a shell-running one and a config write wait for the host", { timeout: 180_000 }, async (t) => {
  await withEngine(t, {
    approval: "manual",
    // A project command whose template runs a shell (the engine reads it at start).
    files: { ".opencode/command/listing.md": "---\ndescription: list the files\n---\nHere are the files:\n!`ls`\n" },
  }, async ({ s, oc, ocPort }) => {
    const path = `/w/${s.workspaceId}/opencode`;
    await waitFor(
      async () => {
        oc!.checkAlive();
        return (await s.request("GET", `${path}/command`)).status === 200 || undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "opencode serve answering through the proxy" },
    );
    // The facts the policy relies on: the engine lists its built-in commands with their templates.
    const commands = (await s.request("GET", `${path}/command`)).json as Array<{ name: string; template?: string }>;
    assert.ok(commands.some((c) => c.name === "init" && typeof c.template === "string" && !c.template.includes("!`")), JSON.stringify(commands.map((c) => c.name)));
    assert.ok(commands.some((c) => c.name === "listing" && c.template?.includes("!`ls`")));

    const created = await s.request("POST", `${path}/session`, { json: {} });
    assert.equal(created.status, 200, created.text);
    const sessionId = created.json.id as string;
    const events = await openSseClient(`${s.url}${path}/event`, { authorization: `Bearer ${s.clientToken}` });
    try {
      // `/init` (built in, prompt only): forwarded at once — the engine turns it into a user message
      // (no model is reachable here, so the turn is then aborted).
      const init = s.request("POST", `${path}/session/${sessionId}/command`, { json: { command: "init", arguments: "" } });
      await waitFor(
        () => events.events.some((e) => e.data.includes('"message.part.updated"') && e.data.includes(sessionId) && e.data.includes("AGENTS.md")),
        { timeoutMs: 30_000, what: "the engine running /init" },
      );
      assert.equal((await pendingApprovals(s)).length, 0, "a prompt-only command does not wait for the host");
      assert.equal((await s.request("POST", `${path}/session/${sessionId}/abort`, { json: {} })).status, 200);
      assert.equal((await init).status, 200);
    } finally {
      events.close();
    }
    const messagesBefore = ((await s.request("GET", `${path}/session/${sessionId}/message`)).json as unknown[]).length;

    // `/listing` runs `ls` on the host: the host sees the command and denies; the engine never gets it.
    const listing = s.request("POST", `${path}/session/${sessionId}/command`, { json: { command: "listing", arguments: "" } });
    const approval = await firstApproval(s);
    assert.equal(approval.action, "engine.command");
    assert.match(approval.summary, /\/listing/);
    assert.equal((await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } })).status, 200);
    const denied = await listing;
    assert.equal(denied.status, 403);
    assert.equal(denied.json.code, "write_denied");
    assert.equal(((await s.request("GET", `${path}/session/${sessionId}/message`)).json as unknown[]).length, messagesBefore, "no message was added");

    // A config write: denied, the engine writes nothing; allowed, exactly the approved change lands.
    const patch = { share: "disabled" };
    const configWrite = () => s.request("PATCH", `${path}/config`, { json: patch });
    const first = configWrite();
    const asked = await firstApproval(s);
    assert.equal(asked.action, "engine.config.update");
    assert.deepEqual(asked.change.body, patch);
    await s.request("POST", `/approvals/${asked.id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await first).status, 403);
    const engineFile = join(s.workspace, "config.json"); // where opencode 1.18 writes a PATCH /config
    await assert.rejects(access(engineFile), "a denied config write leaves no file");
    const second = configWrite();
    const again = await firstApproval(s);
    await s.request("POST", `/approvals/${again.id}`, { token: null, host: true, json: { reply: "allow" } });
    const applied = await second;
    assert.equal(applied.status, 200, applied.text);
    assert.equal(JSON.parse(await readFile(engineFile, "utf8")).share, "disabled");
    const audit = await readAuditLog(s);
    assert.ok(audit.some((e) => e.action === "engine.config.update" && /engine answered 200/.test(e.summary)), JSON.stringify(audit.map((e) => e.summary)));
  });
});

test("real OpenCode, viewers: the engine's config comes redacted and secret-class files are refused; collaborators see both", { timeout: 180_000 }, async (t) => {
  const apiKey = "sk-ant-api03-real-looking-secret-0123456789";
  const files = {
    ".env": "API_KEY=sk-live-abcdef0123456789\n",
    "notes.txt": "hello\n",
    "opencode.json": JSON.stringify({ provider: { anthropic: { options: { apiKey } } } }),
  };
  await withEngine(t, { files }, async ({ s, oc }) => {
    const path = `/w/${s.workspaceId}/opencode`;
    const viewer = await s.mintToken("viewer");
    const config = await waitFor(
      async () => {
        oc.checkAlive();
        const res = await s.request("GET", `${path}/config`);
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "opencode serve answering through the proxy" },
    );
    assert.equal(config.json.provider.anthropic.options.apiKey, apiKey, "a collaborator gets the engine's config as it is");
    const seen = await s.request("GET", `${path}/config`, { token: viewer });
    assert.equal(seen.status, 200);
    assert.equal(seen.json.provider.anthropic.options.apiKey, "[redacted]");
    assert.ok(!seen.text.includes(apiKey));

    const env = await s.request("GET", `${path}/file/content?path=.env`, { token: viewer });
    assert.equal(env.status, 403);
    assert.equal(env.json.code, "protected_path");
    const notes = await s.request("GET", `${path}/file/content?path=notes.txt`, { token: viewer });
    assert.equal(notes.status, 200, notes.text);
    assert.equal(notes.json.content.trim(), "hello");
    const collaborator = await s.request("GET", `${path}/file/content?path=.env`);
    assert.equal(collaborator.status, 200);
    assert.match(collaborator.json.content, /API_KEY=sk-live/);
    // Viewers write nothing through the engine, whatever the endpoint.
    assert.equal((await s.request("POST", `${path}/session`, { token: viewer, json: {} })).status, 403);
  });
});
