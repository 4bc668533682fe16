import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, stat, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { createServer as createNetServer } from "node:net";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig, maskedConfig, removeWorkspaceFromConfigFile } from "../src/config.ts";
import type { ServerConfig } from "../src/context.ts";
import { runCli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/temp.ts";

const TLS_DIR = fileURLToPath(new URL("./fixtures/tls/", import.meta.url));

interface Fixture {
  home: string;
  /** Folder with workspaces a, b, c (all real directories). */
  root: string;
  configPath: string;
}

async function fixture(t: { after(fn: () => Promise<void>): void }, file?: unknown): Promise<Fixture> {
  const home = await tempDir(t, "ow-cfg-");
  const root = join(home, "root");
  for (const d of ["a", "b", "c"]) await mkdir(join(root, d), { recursive: true });
  const configPath = join(home, ".config", "openwork", "server.json");
  if (file !== undefined) {
    await mkdir(join(home, ".config", "openwork"), { recursive: true });
    await writeFile(configPath, typeof file === "string" ? file : JSON.stringify(file, null, 2));
  }
  return { home, root, configPath };
}

function load(f: Fixture, argv: string[] = [], env: Record<string, string> = {}): Promise<ServerConfig> {
  return loadConfig({ argv, env: { HOME: f.home, ...env }, cwd: f.root });
}

/** Loads with one setting given at each level: file only, + env, + flag. Returns the three results. */
async function levels(
  t: { after(fn: () => Promise<void>): void },
  file: Record<string, unknown>,
  env: Record<string, string>,
  argv: string[],
): Promise<[ServerConfig, ServerConfig, ServerConfig, ServerConfig]> {
  const f = await fixture(t, file);
  const bare = await fixture(t);
  return [await load(bare), await load(f), await load(f, [], env), await load(f, argv, env)];
}

// --- precedence: one test per row of the configuration table ----------------------------------

test("config file: default ~/.config/openwork/server.json < OPENWORK_SERVER_CONFIG < --config", async (t) => {
  const f = await fixture(t, { host: "10.0.0.1" });
  const envFile = join(f.home, "env.json");
  const cliFile = join(f.home, "cli.json");
  await writeFile(envFile, JSON.stringify({ host: "10.0.0.2" }));
  await writeFile(cliFile, JSON.stringify({ host: "10.0.0.3" }));
  const d = await load(f);
  assert.equal(d.configPath, f.configPath);
  assert.equal(d.configFileExists, true);
  assert.equal(d.host, "10.0.0.1");
  const e = await load(f, [], { OPENWORK_SERVER_CONFIG: envFile });
  assert.equal(e.configPath, envFile);
  assert.equal(e.host, "10.0.0.2");
  const c = await load(f, ["--config", "../cli.json"], { OPENWORK_SERVER_CONFIG: envFile }); // relative to cwd
  assert.equal(c.configPath, cliFile);
  assert.equal(c.host, "10.0.0.3");
  const none = await load(await fixture(t));
  assert.equal(none.configFileExists, false);
});

test("host: default 127.0.0.1 < host < OPENWORK_HOST < --host", async (t) => {
  const [d, f, e, c] = await levels(t, { host: "10.0.0.1" }, { OPENWORK_HOST: "10.0.0.2" }, ["--host", "10.0.0.3"]);
  assert.deepEqual([d.host, f.host, e.host, c.host], ["127.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
});

test("port: default 8787 < port < OPENWORK_PORT < --port (0 allowed)", async (t) => {
  const [d, f, e, c] = await levels(t, { port: 9001 }, { OPENWORK_PORT: "9002" }, ["--port", "0"]);
  assert.deepEqual([d.port, f.port, e.port, c.port], [8787, 9001, 9002, 0]);
});

test("client token: generated < token < OPENWORK_TOKEN < --token, with tokenSource", async (t) => {
  const [d, f, e, c] = await levels(t, { token: "file-tok" }, { OPENWORK_TOKEN: "env-tok" }, ["--token", "cli-tok"]);
  assert.match(d.token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(d.tokenSource.client, "generated");
  assert.deepEqual([f.token, f.tokenSource.client], ["file-tok", "file"]);
  assert.deepEqual([e.token, e.tokenSource.client], ["env-tok", "env"]);
  assert.deepEqual([c.token, c.tokenSource.client], ["cli-tok", "cli"]);
  const again = await load(await fixture(t));
  assert.notEqual(again.token, d.token, "generated tokens are random");
  assert.notEqual(d.token, d.hostToken);
});

test("host token: generated < hostToken < OPENWORK_HOST_TOKEN < --host-token, with tokenSource", async (t) => {
  const [d, f, e, c] = await levels(t, { hostToken: "file-h" }, { OPENWORK_HOST_TOKEN: "env-h" }, ["--host-token", "cli-h"]);
  assert.equal(d.tokenSource.host, "generated");
  assert.ok(d.hostToken.length >= 40);
  assert.deepEqual([f.hostToken, f.tokenSource.host], ["file-h", "file"]);
  assert.deepEqual([e.hostToken, e.tokenSource.host], ["env-h", "env"]);
  assert.deepEqual([c.hostToken, c.tokenSource.host], ["cli-h", "cli"]);
});

test("approval mode and timeout: defaults < approval.{mode,timeoutMs} < env < flags", async (t) => {
  const [d, f, e, c] = await levels(
    t,
    { approval: { mode: "auto", timeoutMs: 1000 } },
    { OPENWORK_APPROVAL_MODE: "manual", OPENWORK_APPROVAL_TIMEOUT_MS: "2000" },
    ["--approval", "auto", "--approval-timeout", "3000"],
  );
  assert.deepEqual(d.approval, { mode: "manual", timeoutMs: 30000 });
  assert.deepEqual(f.approval, { mode: "auto", timeoutMs: 1000 });
  assert.deepEqual(e.approval, { mode: "manual", timeoutMs: 2000 });
  assert.deepEqual(c.approval, { mode: "auto", timeoutMs: 3000 });
});

test("workspaces: none < workspaces[] (relative to the file) < OPENWORK_WORKSPACES (relative to cwd) < --workspace", async (t) => {
  const f = await fixture(t);
  await mkdir(join(f.home, ".config", "openwork"), { recursive: true });
  // Relative paths inside server.json resolve against the file's own folder.
  await writeFile(f.configPath, JSON.stringify({ workspaces: ["../../root/a", { path: join(f.root, "b"), name: "Bee", workspaceType: "local", baseUrl: "http://127.0.0.1:4096/", directory: "sub", opencodeUsername: "u", opencodePassword: "p" }] }));
  const none = await load(await fixture(t));
  assert.deepEqual(none.workspaces, []);
  assert.deepEqual(none.authorizedRoots, []);

  const fromFile = await load(f);
  assert.deepEqual(fromFile.workspaces, [
    { path: join(f.root, "a") },
    { path: join(f.root, "b"), name: "Bee", workspaceType: "local", baseUrl: "http://127.0.0.1:4096", directory: join(f.home, ".config", "openwork", "sub"), opencodeUsername: "u", opencodePassword: "p" },
  ]);
  assert.deepEqual(fromFile.authorizedRoots, [join(f.root, "a"), join(f.root, "b")], "authorizedRoots default to the workspace paths");

  const envList = await load(f, [], { OPENWORK_WORKSPACES: "c; a ,b" });
  assert.deepEqual(envList.workspaces.map((w) => w.path), [join(f.root, "c"), join(f.root, "a"), join(f.root, "b")]);
  assert.equal(envList.workspaces[2]!.name, "Bee", "a path also described in server.json keeps its attributes");
  const envJson = await load(f, [], { OPENWORK_WORKSPACES: JSON.stringify(["c", { path: "a", name: "Ay" }]) });
  assert.deepEqual(envJson.workspaces, [{ path: join(f.root, "c") }, { path: join(f.root, "a"), name: "Ay" }]);

  const cli = await load(f, ["--workspace", "c", "--workspace", join(f.root, "a"), "--workspace", "./c"], { OPENWORK_WORKSPACES: "b" });
  assert.deepEqual(cli.workspaces.map((w) => w.path), [join(f.root, "c"), join(f.root, "a")], "flags win; duplicates dropped");
});

test("authorizedRoots: from server.json (relative to the file)", async (t) => {
  const f = await fixture(t, { authorizedRoots: ["../../root", "/srv"] });
  const c = await load(f, ["--workspace", "a"]);
  assert.deepEqual(c.authorizedRoots, [f.root, "/srv"]);
});

test("CORS origins: ['*'] < corsOrigins < OPENWORK_CORS_ORIGINS < --cors", async (t) => {
  const [d, f, e, c] = await levels(t, { corsOrigins: ["http://a.test"] }, { OPENWORK_CORS_ORIGINS: "http://b.test, http://c.test" }, ["--cors", "*"]);
  assert.deepEqual(d.corsOrigins, ["*"]);
  assert.deepEqual(f.corsOrigins, ["http://a.test"]);
  assert.deepEqual(e.corsOrigins, ["http://b.test", "http://c.test"]);
  assert.deepEqual(c.corsOrigins, ["*"]);
  const f2 = await fixture(t);
  assert.deepEqual((await load(f2, ["--cors", "http://x.test,http://y.test"])).corsOrigins, ["http://x.test", "http://y.test"]);
});

test("read-only: false < readOnly < OPENWORK_READONLY < --read-only; every boolean spelling", async (t) => {
  const [d, f, e, c] = await levels(t, { readOnly: true }, { OPENWORK_READONLY: "off" }, ["--read-only"]);
  assert.deepEqual([d.readOnly, f.readOnly, e.readOnly, c.readOnly], [false, true, false, true]);
  const g = await fixture(t);
  for (const v of ["1", "true", "YES", "On"]) assert.equal((await load(g, [], { OPENWORK_READONLY: v })).readOnly, true, v);
  for (const v of ["0", "False", "no", "OFF"]) assert.equal((await load(g, [], { OPENWORK_READONLY: v })).readOnly, false, v);
  await assert.rejects(load(g, [], { OPENWORK_READONLY: "maybe" }), (err: Error) => err instanceof ConfigError && /OPENWORK_READONLY/.test(err.message));
});

test("OpenCode: base URL and directory from env < flags; basic auth top level < env < flags", async (t) => {
  const f = await fixture(t, { opencodeUsername: "fu", opencodePassword: "fp" });
  const fromFile = await load(f);
  assert.deepEqual(fromFile.opencode, { username: "fu", password: "fp" });
  const env = { OPENWORK_OPENCODE_BASE_URL: "http://127.0.0.1:4096", OPENWORK_OPENCODE_DIRECTORY: "a", OPENWORK_OPENCODE_USERNAME: "eu", OPENWORK_OPENCODE_PASSWORD: "ep" };
  const e = await load(f, [], env);
  assert.deepEqual(e.opencode, { baseUrl: "http://127.0.0.1:4096", directory: join(f.root, "a"), username: "eu", password: "ep" });
  const c = await load(f, ["--opencode-base-url", "https://oc.test/", "--opencode-directory", "/x", "--opencode-username", "cu", "--opencode-password", "cp"], env);
  assert.deepEqual(c.opencode, { baseUrl: "https://oc.test", directory: "/x", username: "cu", password: "cp" });
  assert.deepEqual((await load(await fixture(t))).opencode, {});
});

test("token store: tokens.json beside server.json < OPENWORK_TOKEN_STORE", async (t) => {
  const f = await fixture(t);
  assert.equal((await load(f)).tokenStorePath, join(f.home, ".config", "openwork", "tokens.json"));
  const other = join(f.home, "custom.json");
  await writeFile(other, JSON.stringify({}));
  assert.equal((await load(f, ["--config", other])).tokenStorePath, join(f.home, "tokens.json"));
  assert.equal((await load(f, [], { OPENWORK_TOKEN_STORE: "store.json" })).tokenStorePath, join(f.root, "store.json"));
});

test("data dir: ~/.openwork/openwork-server < dataDir < OPENWORK_DATA_DIR < --data-dir", async (t) => {
  const [d, f, e, c] = await levels(t, { dataDir: "/srv/file" }, { OPENWORK_DATA_DIR: "/srv/env" }, ["--data-dir", "/srv/cli"]);
  assert.match(d.dataDir, /\.openwork\/openwork-server$/);
  assert.ok(d.dataDir.startsWith(d.homeDir));
  assert.deepEqual([f.dataDir, e.dataDir, c.dataDir], ["/srv/file", "/srv/env", "/srv/cli"]);
});

test("inbox/outbox: on, 50000000, on by default; env overrides; max bytes clamped to 250000000", async (t) => {
  const f = await fixture(t);
  const d = await load(f);
  assert.deepEqual(d.inbox, { enabled: true, maxBytes: 50_000_000 });
  assert.equal(d.outboxEnabled, true);
  const e = await load(f, [], { OPENWORK_INBOX_ENABLED: "0", OPENWORK_INBOX_MAX_BYTES: "1000", OPENWORK_OUTBOX_ENABLED: "no" });
  assert.deepEqual(e.inbox, { enabled: false, maxBytes: 1000 });
  assert.equal(e.outboxEnabled, false);
  assert.equal((await load(f, [], { OPENWORK_INBOX_MAX_BYTES: "999999999999" })).inbox.maxBytes, 250_000_000);
  await assert.rejects(load(f, [], { OPENWORK_INBOX_MAX_BYTES: "lots" }), /OPENWORK_INBOX_MAX_BYTES/);
  await assert.rejects(load(f, [], { OPENWORK_OUTBOX_ENABLED: "yep" }), /OPENWORK_OUTBOX_ENABLED/);
});

test("sandbox advert: off/none by default; backend docker|container else none; enabled follows the backend unless set", async (t) => {
  const f = await fixture(t);
  assert.deepEqual((await load(f)).sandbox, { enabled: false, backend: "none" });
  assert.deepEqual((await load(f, [], { OPENWORK_SANDBOX_BACKEND: "docker" })).sandbox, { enabled: true, backend: "docker" });
  assert.deepEqual((await load(f, [], { OPENWORK_SANDBOX_BACKEND: "Container", OPENWORK_SANDBOX_ENABLED: "0" })).sandbox, { enabled: false, backend: "container" });
  assert.deepEqual((await load(f, [], { OPENWORK_SANDBOX_BACKEND: "vm" })).sandbox, { enabled: false, backend: "none" });
  assert.deepEqual((await load(f, [], { OPENWORK_SANDBOX_ENABLED: "1" })).sandbox, { enabled: true, backend: "none" });
});

test("toy UI on by default, OPENWORK_TOY_UI turns it off; router health port off unless set", async (t) => {
  const f = await fixture(t);
  const d = await load(f);
  assert.equal(d.toyUi, true);
  assert.equal(d.routerHealthPort, undefined);
  const e = await load(f, [], { OPENWORK_TOY_UI: "false", OPENCODE_ROUTER_HEALTH_PORT: "3005" });
  assert.equal(e.toyUi, false);
  assert.equal(e.routerHealthPort, 3005);
  await assert.rejects(load(f, [], { OPENCODE_ROUTER_HEALTH_PORT: "70000" }), /OPENCODE_ROUTER_HEALTH_PORT/);
});

test("logs: pretty < logFormat < OPENWORK_LOG_FORMAT < --log-format; --verbose", async (t) => {
  const [d, f, e, c] = await levels(t, { logFormat: "json" }, { OPENWORK_LOG_FORMAT: "pretty" }, ["--log-format", "json", "--verbose"]);
  assert.deepEqual([d.logFormat, f.logFormat, e.logFormat, c.logFormat], ["pretty", "json", "pretty", "json"]);
  assert.deepEqual([d.verbose, c.verbose], [false, true]);
});

test("TLS: off < tls.{cert,key} (relative to the file) < env < flags; PEM contents are loaded", async (t) => {
  const cert = await readFile(join(TLS_DIR, "cert.pem"), "utf8");
  const key = await readFile(join(TLS_DIR, "key.pem"), "utf8");
  const f = await fixture(t);
  assert.equal((await load(f)).tls, undefined);
  await mkdir(join(f.home, ".config", "openwork"), { recursive: true });
  await writeFile(join(f.home, ".config", "openwork", "c.pem"), cert);
  await writeFile(join(f.home, ".config", "openwork", "k.pem"), key);
  await writeFile(f.configPath, JSON.stringify({ tls: { cert: "c.pem", key: "k.pem" } }));
  assert.deepEqual((await load(f)).tls, { cert, key });
  // env names a missing file: it wins over the file's valid paths, so it is an error.
  await assert.rejects(load(f, [], { OPENWORK_TLS_CERT: "/nope/cert.pem", OPENWORK_TLS_KEY: join(TLS_DIR, "key.pem") }), /OPENWORK_TLS_CERT/);
  const c = await load(f, ["--tls-cert", join(TLS_DIR, "cert.pem"), "--tls-key", join(TLS_DIR, "key.pem")], { OPENWORK_TLS_CERT: "/nope/cert.pem", OPENWORK_TLS_KEY: "/nope/key.pem" });
  assert.deepEqual(c.tls, { cert, key });
});

test("homeDir comes from HOME", async (t) => {
  const f = await fixture(t);
  assert.equal((await load(f)).homeDir, f.home);
});

test("maskedConfig hides every secret", async (t) => {
  const f = await fixture(t, { workspaces: [{ path: "../../root/a", opencodePassword: "wspass" }] });
  const c = await load(f, ["--token", "tok-secret", "--host-token", "host-secret", "--opencode-password", "oc-secret", "--tls-cert", join(TLS_DIR, "cert.pem"), "--tls-key", join(TLS_DIR, "key.pem")]);
  const text = JSON.stringify(maskedConfig(c));
  for (const secret of ["tok-secret", "host-secret", "oc-secret", "wspass", "PRIVATE KEY"]) assert.ok(!text.includes(secret), secret);
  assert.match(text, /\[redacted\]/);
});

test("removeWorkspaceFromConfigFile: atomic, keeps unknown keys and the file mode", async (t) => {
  const f = await fixture(t, { custom: { keep: [1, 2] }, workspaces: ["../../root/a", { path: "/nonexistent-root/x", name: "X" }, { path: "../../root/b", name: "B" }], zeta: true });
  await chmod(f.configPath, 0o600);
  assert.equal(await removeWorkspaceFromConfigFile(f.configPath, join(f.root, "b")), true);
  const after = JSON.parse(await readFile(f.configPath, "utf8"));
  assert.deepEqual(after, { custom: { keep: [1, 2] }, workspaces: ["../../root/a", { path: "/nonexistent-root/x", name: "X" }], zeta: true });
  assert.equal((await stat(f.configPath)).mode & 0o777, 0o600);
  assert.equal(await removeWorkspaceFromConfigFile(f.configPath, join(f.root, "b")), false, "already gone");
  assert.equal(await removeWorkspaceFromConfigFile(join(f.home, "missing.json"), "/x"), false);
  // Concurrent removals do not lose each other's edit.
  await Promise.all([removeWorkspaceFromConfigFile(f.configPath, join(f.root, "a")), removeWorkspaceFromConfigFile(f.configPath, "/nonexistent-root/x")]);
  assert.deepEqual(JSON.parse(await readFile(f.configPath, "utf8")).workspaces, []);
});

// --- startup errors: the real CLI exits 2 with one line naming the source ---------------------

/** `keepPort`: do not add `--port 0` (a test of the port setting itself). */
type Setup = { argv?: string[]; env?: Record<string, string>; keepPort?: boolean };

async function expectStartupError(
  t: { after(fn: () => Promise<void>): void },
  setup: (f: Fixture) => Promise<Setup> | Setup,
  pattern: RegExp,
  file?: unknown,
): Promise<void> {
  const f = await fixture(t, file);
  const { argv = [], env = {}, keepPort = false } = await setup(f);
  // --port 0: if a bug let the server start anyway, it must not collide with a real port.
  const r = await runCli([...(keepPort ? [] : ["--port", "0"]), ...argv], { env: { HOME: f.home, ...env }, cwd: f.root });
  assert.equal(r.code, 2, `exit code (stdout=${r.stdout} stderr=${r.stderr})`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.match(lines[0]!, /^openwork-server: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stdout, /listening/);
}

test("startup error: server.json nested 50,000 deep is refused in one line (no stack overflow when it is printed back)", async (t) => {
  await expectStartupError(t, () => ({ argv: ["--verbose"] }), /server\.json .*invalid JSON: JSON is nested deeper than 256 levels/, '{"x":' + '{"a":'.repeat(50_000) + "1" + "}".repeat(50_001));
});

test("startup error: server.json that is not valid JSON names the file, line and column", async (t) => {
  await expectStartupError(t, () => ({}), /server\.json \(.*\/\.config\/openwork\/server\.json\) line 3 column 3: invalid JSON/, '{\n  "port": 1,\n  }\n');
  await expectStartupError(t, () => ({}), /server\.json .*must contain a JSON object/, "[1,2]");
});

test("startup error: unknown flag, missing flag value, positional argument", async (t) => {
  await expectStartupError(t, () => ({ argv: ["--bogus"] }), /command line: Unknown option '--bogus'/);
  await expectStartupError(t, () => ({ argv: ["--approval"] }), /--approval/);
  await expectStartupError(t, () => ({ argv: ["serve"] }), /Unexpected argument 'serve'/);
});

test("startup error: bad boolean in the environment names the variable", async (t) => {
  await expectStartupError(t, () => ({ env: { OPENWORK_READONLY: "maybe" } }), /OPENWORK_READONLY: "maybe" is not a boolean/);
  await expectStartupError(t, () => ({ env: { OPENWORK_TOY_UI: "2" } }), /OPENWORK_TOY_UI/);
});

test("startup error: bad port from flag, env or file", async (t) => {
  await expectStartupError(t, () => ({ argv: ["--port", "99999"], keepPort: true }), /--port: "99999" is not a port/);
  await expectStartupError(t, () => ({ env: { OPENWORK_PORT: "http" }, keepPort: true }), /OPENWORK_PORT: "http" is not a port/);
  await expectStartupError(t, () => ({ keepPort: true }), /server\.json .*"port": -1 is not a port/, { port: -1 });
});

test("startup error: a workspace folder that does not exist or is a file", async (t) => {
  await expectStartupError(t, (f) => ({ argv: ["--workspace", join(f.root, "missing")] }), /--workspace .*missing.* does not exist/);
  await expectStartupError(t, async (f) => {
    await writeFile(join(f.root, "file.txt"), "x");
    return { argv: ["--workspace", "file.txt"] };
  }, /--workspace file\.txt: workspace path .*file\.txt is not a directory/);
  await expectStartupError(t, () => ({ env: { OPENWORK_WORKSPACES: "a,nope" } }), /OPENWORK_WORKSPACES \(nope\): workspace folder .* does not exist/);
  await expectStartupError(t, () => ({}), /server\.json .*"workspaces\[1\]": workspace folder .*gone does not exist/, { workspaces: ["../../root/a", "../../root/gone"] });
});

test("startup error: other bad values name their source", async (t) => {
  await expectStartupError(t, () => ({ argv: ["--approval", "sometimes"] }), /--approval: "sometimes" is not one of manual\|auto/);
  await expectStartupError(t, () => ({ env: { OPENWORK_APPROVAL_TIMEOUT_MS: "-5" } }), /OPENWORK_APPROVAL_TIMEOUT_MS/);
  await expectStartupError(t, () => ({ argv: ["--config", "nope.json"] }), /--config: config file .*nope\.json does not exist/);
  await expectStartupError(t, () => ({ argv: ["--log-format", "xml"] }), /--log-format/);
  await expectStartupError(t, () => ({ argv: ["--tls-cert", "/nope/cert.pem", "--tls-key", join(TLS_DIR, "key.pem")] }), /--tls-cert: cannot read \/nope\/cert\.pem/);
  await expectStartupError(t, () => ({ argv: ["--tls-key", join(TLS_DIR, "key.pem")] }), /--tls-key: a TLS key needs a certificate/);
  await expectStartupError(t, () => ({ env: { OPENWORK_WORKSPACES: "[1," } }), /OPENWORK_WORKSPACES: invalid JSON/);
  await expectStartupError(t, () => ({}), /"approval\.mode"/, { approval: { mode: 3 } });
  await expectStartupError(t, () => ({ argv: ["--opencode-base-url", "ftp://x"] }), /--opencode-base-url/);
});

test("startup error: a corrupt token store and a port in use", async (t) => {
  await expectStartupError(t, async (f) => {
    const store = join(f.home, "tokens.json");
    await writeFile(store, "{ this is not json");
    return { env: { OPENWORK_TOKEN_STORE: store } };
  }, /tokens\.json/);
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  await expectStartupError(t, () => ({ argv: ["--port", String(port)], keepPort: true }), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));
});
