/**
 * Configuration: CLI flags > environment > server.json > defaults, resolved into one validated
 * ServerConfig. Every problem is a `ConfigError` whose one-line message names its source (the
 * flag, the variable, or the file with line/column) — the CLI prints it and exits 2, so the
 * server never starts half-configured.
 */
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { readRegularFile, readRegularFileSync } from "./fs/regular-file.ts";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ServerConfig, TokenSource, WorkspaceConfig } from "./context.ts";
import { writeFileAtomic, withPathLock } from "./fs/atomic.ts";
import { lineColumn } from "./formats/jsonc.ts";
import { LIMITS } from "./limits.ts";
import { parseJsonBounded } from "./formats/json-nesting.ts";
import { StartupError } from "./startup-error.ts";

/** A configuration problem; `message` is one line naming the source. */
export class ConfigError extends StartupError {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The CLI flags of the server (the host subcommands have their own, in host-cli.ts). */
export const CLI_OPTIONS = {
  config: { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  token: { type: "string" },
  "host-token": { type: "string" },
  approval: { type: "string" },
  "approval-timeout": { type: "string" },
  workspace: { type: "string", multiple: true },
  cors: { type: "string", multiple: true },
  "allowed-host": { type: "string", multiple: true },
  "read-only": { type: "boolean" },
  "opencode-base-url": { type: "string" },
  "opencode-directory": { type: "string" },
  "opencode-username": { type: "string" },
  "opencode-password": { type: "string" },
  "data-dir": { type: "string" },
  "log-format": { type: "string" },
  verbose: { type: "boolean" },
  "log-requests": { type: "boolean" },
  "no-log-requests": { type: "boolean" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

/** Strict parse of the server flags; an unknown flag or a missing value is a ConfigError. */
export function parseCliArgs(argv: string[]) {
  try {
    // A leading `--` is dropped: the orchestrator launches `node <bin> -- <args>`.
    return parseArgs({ args: argv[0] === "--" ? argv.slice(1) : argv, options: CLI_OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`command line: ${describeParseArgsError(err)} (see --help)`);
  }
}

/** Turns node:util parseArgs errors into one short line. */
export function describeParseArgsError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const first = msg.split("\n")[0]!;
  // Node appends advice about "--" to unknown-option messages; keep only the first sentence.
  const m = /^(Unknown option '[^']*')/.exec(first);
  return m ? m[1]! : first.replace(/\.$/, "");
}

export interface LoadConfigInput {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  /**
   * Host subcommands only need where the server is and its host token: skip the checks of
   * workspace folders and TLS files, and do not generate tokens.
   */
  lenient?: boolean;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface FileConfig {
  path: string;
  dir: string;
  exists: boolean;
  data: Record<string, Json>;
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

/** Resolves the whole configuration. Throws ConfigError with a one-line message. */
export async function loadConfig(input: LoadConfigInput): Promise<ServerConfig> {
  const { argv, cwd } = input;
  const env = input.env;
  const cli = parseCliArgs(argv);
  const homeDir = nonEmpty(env.HOME) ?? homedir();
  const envStr = (name: string): string | undefined => nonEmpty(env[name]);

  // --- config file -------------------------------------------------------------------------
  const configPath = cli.config !== undefined
    ? resolve(cwd, requireNonEmpty(cli.config, "--config"))
    : envStr("OPENWORK_SERVER_CONFIG") !== undefined
      ? resolve(cwd, envStr("OPENWORK_SERVER_CONFIG")!)
      : join(homeDir, ".config", "openwork", "server.json");
  const file = await readConfigFile(configPath, cli.config !== undefined ? "--config" : envStr("OPENWORK_SERVER_CONFIG") !== undefined ? "OPENWORK_SERVER_CONFIG" : undefined);
  const fsrc = (key: string) => `server.json (${file.path}): "${key}"`;
  const fget = (key: string): Json | undefined => (Object.hasOwn(file.data, key) ? file.data[key] : undefined);
  const fstr = (key: string): string | undefined => {
    const v = fget(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new ConfigError(`${fsrc(key)} must be a string`);
    return v;
  };
  const fobj = (key: string): Record<string, Json> | undefined => {
    const v = fget(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) throw new ConfigError(`${fsrc(key)} must be an object`);
    return v;
  };

  // --- host / port -------------------------------------------------------------------------
  const host = cli.host !== undefined ? requireNonEmpty(cli.host, "--host")
    : envStr("OPENWORK_HOST") ?? fstr("host") ?? "127.0.0.1";
  const port = cli.port !== undefined ? parsePort(cli.port, "--port")
    : envStr("OPENWORK_PORT") !== undefined ? parsePort(envStr("OPENWORK_PORT")!, "OPENWORK_PORT")
      : fget("port") !== undefined ? parsePort(fget("port"), fsrc("port"))
        : 8787;

  // --- tokens ------------------------------------------------------------------------------
  const pickToken = (flag: string | undefined, flagName: string, envName: string, key: string): { value: string; source: TokenSource } => {
    if (flag !== undefined) return { value: requireNonEmpty(flag, flagName), source: "cli" };
    const e = envStr(envName);
    if (e !== undefined) return { value: e, source: "env" };
    const f = fstr(key);
    if (f !== undefined) {
      if (f.trim() === "") throw new ConfigError(`${fsrc(key)} must not be empty`);
      return { value: f, source: "file" };
    }
    // 32 random bytes: a generated secret is as strong as a hash; printed once at startup.
    return { value: input.lenient ? "" : randomBytes(32).toString("base64url"), source: "generated" };
  };
  const token = pickToken(cli.token, "--token", "OPENWORK_TOKEN", "token");
  const hostToken = pickToken(cli["host-token"], "--host-token", "OPENWORK_HOST_TOKEN", "hostToken");

  // --- approvals ---------------------------------------------------------------------------
  const fapproval = fobj("approval");
  const fapprovalGet = (k: string): Json | undefined => (fapproval && Object.hasOwn(fapproval, k) ? fapproval[k] : undefined);
  const modeRaw: [unknown, string] | undefined = cli.approval !== undefined ? [cli.approval, "--approval"]
    : envStr("OPENWORK_APPROVAL_MODE") !== undefined ? [envStr("OPENWORK_APPROVAL_MODE"), "OPENWORK_APPROVAL_MODE"]
      : fapprovalGet("mode") !== undefined && fapprovalGet("mode") !== null ? [fapprovalGet("mode"), fsrc("approval.mode")]
        : undefined;
  const approvalMode = modeRaw ? parseEnum(modeRaw[0], modeRaw[1], ["manual", "auto"] as const) : "manual";
  const timeoutRaw: [unknown, string] | undefined = cli["approval-timeout"] !== undefined ? [cli["approval-timeout"], "--approval-timeout"]
    : envStr("OPENWORK_APPROVAL_TIMEOUT_MS") !== undefined ? [envStr("OPENWORK_APPROVAL_TIMEOUT_MS"), "OPENWORK_APPROVAL_TIMEOUT_MS"]
      : fapprovalGet("timeoutMs") !== undefined && fapprovalGet("timeoutMs") !== null ? [fapprovalGet("timeoutMs"), fsrc("approval.timeoutMs")]
        : undefined;
  // setTimeout's maximum: a larger value would fire at once.
  const timeoutMs = timeoutRaw ? parseInteger(timeoutRaw[0], timeoutRaw[1], 1, 2_147_483_647, "a timeout in milliseconds") : LIMITS.approvalTimeoutDefaultMs;

  // --- workspaces --------------------------------------------------------------------------
  const fileWorkspaces = parseFileWorkspaces(fget("workspaces"), file, fsrc);
  let workspaces: Array<{ ws: WorkspaceConfig; source: string }>;
  if (cli.workspace !== undefined && cli.workspace.length > 0) {
    workspaces = cli.workspace.map((p) => ({ ws: { path: resolve(cwd, requireNonEmpty(p, "--workspace")) }, source: `--workspace ${p}` }));
  } else if (envStr("OPENWORK_WORKSPACES") !== undefined) {
    workspaces = parseEnvWorkspaces(envStr("OPENWORK_WORKSPACES")!, cwd);
  } else {
    workspaces = fileWorkspaces;
  }
  // A path given by flag/env that server.json also describes keeps the file's attributes.
  if (workspaces !== fileWorkspaces) {
    workspaces = workspaces.map((w) => {
      const known = fileWorkspaces.find((f) => f.ws.path === w.ws.path);
      return known ? { ws: { ...known.ws, ...w.ws }, source: w.source } : w;
    });
  }
  const seen = new Set<string>();
  workspaces = workspaces.filter((w) => (seen.has(w.ws.path) ? false : (seen.add(w.ws.path), true)));
  if (!input.lenient) {
    for (const { ws, source } of workspaces) {
      // A remote workspace describes an engine elsewhere; its path need not exist here.
      if (ws.workspaceType === "remote") continue;
      checkDirectory(ws.path, source);
    }
  }

  // --- authorized roots --------------------------------------------------------------------
  const rootsRaw = fget("authorizedRoots");
  let authorizedRoots: string[];
  if (rootsRaw === undefined || rootsRaw === null) {
    authorizedRoots = workspaces.map((w) => w.ws.path);
  } else {
    if (!Array.isArray(rootsRaw) || rootsRaw.some((r) => typeof r !== "string" || r.trim() === "")) {
      throw new ConfigError(`${fsrc("authorizedRoots")} must be an array of paths`);
    }
    authorizedRoots = (rootsRaw as string[]).map((r) => resolve(file.dir, r));
  }

  // --- lists: CORS origins, allowed Host names ---------------------------------------------
  /** A list setting: repeatable flag (each may be comma-separated), else the env variable, else server.json (array or string). */
  const listSetting = (flagValues: string[] | undefined, flag: string, envName: string, key: string, what: string): string[] | undefined => {
    const [raw, source] = flagValues !== undefined && flagValues.length > 0 ? [flagValues.join(","), flag]
      : envStr(envName) !== undefined ? [envStr(envName)!, envName] : [undefined, fsrc(key)];
    if (raw !== undefined) {
      const list = splitList(raw, ",");
      if (list.length === 0) throw new ConfigError(`${source}: expected ${what}`);
      return list;
    }
    const v = fget(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return splitList(v, ",");
    if (Array.isArray(v) && v.every((o) => typeof o === "string")) return (v as string[]).map((o) => o.trim()).filter(Boolean);
    throw new ConfigError(`${source} must be an array of ${what.replace(/^.*list of /, "")}`);
  };
  let corsOrigins = listSetting(cli.cors, "--cors", "OPENWORK_CORS_ORIGINS", "corsOrigins", `"*" or a comma-separated list of origins`) ?? [];
  if (corsOrigins.length === 0 || corsOrigins.includes("*")) corsOrigins = ["*"];
  // Host names (reverse proxies, tailnet names) a loopback-bound server answers besides loopback.
  const allowedHosts = (listSetting(cli["allowed-host"], "--allowed-host", "OPENWORK_ALLOWED_HOSTS", "allowedHosts", "a comma-separated list of host names") ?? [])
    .map((h) => parseAllowedHost(h));

  // --- read-only ---------------------------------------------------------------------------
  const readOnly = cli["read-only"] === true ? true
    : envStr("OPENWORK_READONLY") !== undefined ? parseBool(envStr("OPENWORK_READONLY")!, "OPENWORK_READONLY")
      : fileBool(fget("readOnly"), fsrc("readOnly")) ?? false;

  // --- OpenCode ----------------------------------------------------------------------------
  const opencode: ServerConfig["opencode"] = {};
  const baseUrl = cli["opencode-base-url"] !== undefined ? [cli["opencode-base-url"], "--opencode-base-url"] as const
    : envStr("OPENWORK_OPENCODE_BASE_URL") !== undefined ? [envStr("OPENWORK_OPENCODE_BASE_URL")!, "OPENWORK_OPENCODE_BASE_URL"] as const
      : undefined;
  if (baseUrl) opencode.baseUrl = parseHttpUrl(baseUrl[0], baseUrl[1]);
  const ocDir = cli["opencode-directory"] !== undefined ? requireNonEmpty(cli["opencode-directory"], "--opencode-directory")
    : envStr("OPENWORK_OPENCODE_DIRECTORY");
  if (ocDir !== undefined) opencode.directory = resolve(cwd, ocDir);
  const ocUser = cli["opencode-username"] ?? envStr("OPENWORK_OPENCODE_USERNAME") ?? fstr("opencodeUsername");
  if (ocUser !== undefined) opencode.username = ocUser;
  const ocPass = cli["opencode-password"] ?? envStr("OPENWORK_OPENCODE_PASSWORD") ?? fstr("opencodePassword");
  if (ocPass !== undefined) opencode.password = ocPass;

  // --- paths -------------------------------------------------------------------------------
  const tokenStorePath = envStr("OPENWORK_TOKEN_STORE") !== undefined
    ? resolve(cwd, envStr("OPENWORK_TOKEN_STORE")!)
    : join(dirname(configPath), "tokens.json");
  const dataDir = cli["data-dir"] !== undefined ? resolve(cwd, requireNonEmpty(cli["data-dir"], "--data-dir"))
    : envStr("OPENWORK_DATA_DIR") !== undefined ? resolve(cwd, envStr("OPENWORK_DATA_DIR")!)
      : fstr("dataDir") !== undefined ? resolve(file.dir, fstr("dataDir")!)
        : join(homeDir, ".openwork", "openwork-server");

  // --- inbox / outbox / sandbox / UI / router ----------------------------------------------
  const envBool = (name: string, dflt: boolean): boolean => {
    const v = envStr(name);
    return v === undefined ? dflt : parseBool(v, name);
  };
  const maxBytesRaw = envStr("OPENWORK_INBOX_MAX_BYTES");
  const inboxMaxBytes = maxBytesRaw === undefined ? LIMITS.inboxDefaultMaxBytes
    // Clamped, not refused: the cap protects the disk whatever the host asks for.
    : Math.min(parseInteger(maxBytesRaw, "OPENWORK_INBOX_MAX_BYTES", 1, Number.MAX_SAFE_INTEGER, "a byte count"), LIMITS.inboxCapMaxBytes);
  const backendRaw = (envStr("OPENWORK_SANDBOX_BACKEND") ?? "none").trim().toLowerCase();
  const backend: ServerConfig["sandbox"]["backend"] = backendRaw === "docker" || backendRaw === "container" ? backendRaw : "none";
  const sandboxEnabled = envBool("OPENWORK_SANDBOX_ENABLED", backend !== "none");
  const routerPortRaw = envStr("OPENCODE_ROUTER_HEALTH_PORT");
  const routerHealthPort = routerPortRaw === undefined ? undefined : parseInteger(routerPortRaw, "OPENCODE_ROUTER_HEALTH_PORT", 1, 65535, "a port (1-65535)");

  // --- logs --------------------------------------------------------------------------------
  const logFormat = cli["log-format"] !== undefined ? parseEnum(cli["log-format"], "--log-format", ["pretty", "json"] as const)
    : envStr("OPENWORK_LOG_FORMAT") !== undefined ? parseEnum(envStr("OPENWORK_LOG_FORMAT"), "OPENWORK_LOG_FORMAT", ["pretty", "json"] as const)
      : fget("logFormat") !== undefined && fget("logFormat") !== null ? parseEnum(fget("logFormat"), fsrc("logFormat"), ["pretty", "json"] as const)
        : "pretty";

  const logRequests = cli["no-log-requests"] === true ? false
    : cli["log-requests"] === true ? true
      : envStr("OPENWORK_LOG_REQUESTS") !== undefined ? parseBool(envStr("OPENWORK_LOG_REQUESTS")!, "OPENWORK_LOG_REQUESTS")
        : fileBool(fget("logRequests"), fsrc("logRequests")) ?? true;

  // --- outside services: skills hub, orchestrator control, the router's files, Telegram --------
  const fhub = fobj("hub");
  const hubStr = (k: string): string | undefined => {
    const v = fhub && Object.hasOwn(fhub, k) ? fhub[k] : undefined;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new ConfigError(`${fsrc(`hub.${k}`)} must be a string`);
    return v;
  };
  const hubEnabledFile = fhub && Object.hasOwn(fhub, "enabled") ? fileBool(fhub.enabled, fsrc("hub.enabled")) : undefined;
  const hubRepoRaw = envStr("OPENWORK_HUB_REPO") ?? hubStr("repo") ?? "different-ai/openwork-hub@main";
  const hubRepo = /^([A-Za-z0-9_.-]{1,100})\/([A-Za-z0-9_.-]{1,100})(?:@([A-Za-z0-9._/-]{1,255}))?$/.exec(hubRepoRaw.trim());
  if (!hubRepo) throw new ConfigError(`${envStr("OPENWORK_HUB_REPO") !== undefined ? "OPENWORK_HUB_REPO" : fsrc("hub.repo")}: ${JSON.stringify(hubRepoRaw)} is not owner/repo[@ref]`);
  const hub: ServerConfig["hub"] = {
    enabled: envStr("OPENWORK_HUB_ENABLED") !== undefined ? parseBool(envStr("OPENWORK_HUB_ENABLED")!, "OPENWORK_HUB_ENABLED") : (hubEnabledFile ?? true),
    apiUrl: parseHttpUrl(envStr("OPENWORK_HUB_API_URL") ?? hubStr("apiUrl") ?? "https://api.github.com", "OPENWORK_HUB_API_URL / hub.apiUrl"),
    rawUrl: parseHttpUrl(envStr("OPENWORK_HUB_RAW_URL") ?? hubStr("rawUrl") ?? "https://raw.githubusercontent.com", "OPENWORK_HUB_RAW_URL / hub.rawUrl"),
    repo: { owner: hubRepo[1]!, name: hubRepo[2]!, ref: hubRepo[3] ?? "main" },
  };
  const hubToken = envStr("OPENWORK_HUB_GITHUB_TOKEN");
  if (hubToken !== undefined) hub.githubToken = hubToken.trim();
  const controlUrl = envStr("OPENWORK_CONTROL_BASE_URL")?.trim().replace(/\/+$/, "");
  const controlToken = envStr("OPENWORK_CONTROL_TOKEN")?.trim();
  const routerDataDir = envStr("OPENCODE_ROUTER_DATA_DIR");
  const routerConfig = envStr("OPENCODE_ROUTER_CONFIG_PATH");
  const routerConfigPath = routerConfig !== undefined
    ? resolve(cwd, routerConfig.trim().startsWith("~/") ? join(homeDir, routerConfig.trim().slice(2)) : routerConfig.trim())
    : join(routerDataDir !== undefined ? resolve(cwd, routerDataDir) : join(homeDir, ".openwork", "opencode-router"), "opencode-router.json");

  // --- TLS ---------------------------------------------------------------------------------
  const ftls = fobj("tls");
  const ftlsStr = (k: "cert" | "key"): string | undefined => {
    const v = ftls && Object.hasOwn(ftls, k) ? ftls[k] : undefined;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" || v.trim() === "") throw new ConfigError(`${fsrc(`tls.${k}`)} must be a file path`);
    return v;
  };
  const tlsPick = (k: "cert" | "key"): { path: string; source: string } | undefined => {
    const flag = k === "cert" ? cli["tls-cert"] : cli["tls-key"];
    const envName = k === "cert" ? "OPENWORK_TLS_CERT" : "OPENWORK_TLS_KEY";
    if (flag !== undefined) return { path: resolve(cwd, requireNonEmpty(flag, `--tls-${k}`)), source: `--tls-${k}` };
    if (envStr(envName) !== undefined) return { path: resolve(cwd, envStr(envName)!), source: envName };
    const f = ftlsStr(k);
    return f === undefined ? undefined : { path: resolve(file.dir, f), source: fsrc(`tls.${k}`) };
  };
  const certPick = tlsPick("cert");
  const keyPick = tlsPick("key");
  let tls: ServerConfig["tls"];
  if (certPick || keyPick) {
    if (!certPick) throw new ConfigError(`${keyPick!.source}: a TLS key needs a certificate too (--tls-cert / OPENWORK_TLS_CERT / tls.cert)`);
    if (!keyPick) throw new ConfigError(`${certPick.source}: a TLS certificate needs a key too (--tls-key / OPENWORK_TLS_KEY / tls.key)`);
    tls = input.lenient ? { cert: "", key: "" } : { cert: readPem(certPick.path, certPick.source), key: readPem(keyPick.path, keyPick.source) };
  }

  const config: ServerConfig = {
    host,
    port,
    token: token.value,
    hostToken: hostToken.value,
    tokenSource: { client: token.source, host: hostToken.source },
    approval: { mode: approvalMode, timeoutMs },
    workspaces: workspaces.map((w) => w.ws),
    authorizedRoots,
    corsOrigins,
    allowedHosts,
    readOnly,
    opencode,
    configPath,
    configFileExists: file.exists,
    tokenStorePath,
    dataDir,
    inbox: { enabled: envBool("OPENWORK_INBOX_ENABLED", true), maxBytes: inboxMaxBytes },
    outboxEnabled: envBool("OPENWORK_OUTBOX_ENABLED", true),
    sandbox: { enabled: sandboxEnabled, backend },
    toyUi: envBool("OPENWORK_TOY_UI", true),
    logFormat,
    logRequests,
    runId: envStr("OPENWORK_RUN_ID")?.trim() ?? randomBytes(6).toString("hex"),
    verbose: cli.verbose === true,
    hub,
    telegramApiUrl: parseHttpUrl(envStr("OPENWORK_TELEGRAM_API_URL") ?? "https://api.telegram.org", "OPENWORK_TELEGRAM_API_URL"),
    routerConfigPath,
    homeDir,
  };
  if (routerHealthPort !== undefined) config.routerHealthPort = routerHealthPort;
  if (env.PATH !== undefined) config.searchPath = env.PATH;
  // Both set = runtime control available (the orchestrator passes them); the token is a secret.
  if (controlUrl && controlToken) config.control = { baseUrl: parseHttpUrl(controlUrl, "OPENWORK_CONTROL_BASE_URL"), token: controlToken };
  if (tls) config.tls = tls;
  return config;
}

/** A copy of the configuration safe to print: secrets replaced, PEM bodies summarized. */
export function maskedConfig(config: ServerConfig): Record<string, unknown> {
  const mask = (v: string | undefined) => (v === undefined ? undefined : v === "" ? "" : "[redacted]");
  const out: Record<string, unknown> = {
    ...config,
    token: mask(config.token),
    hostToken: mask(config.hostToken),
    hub: { ...config.hub, githubToken: mask(config.hub.githubToken) },
    control: config.control ? { ...config.control, token: mask(config.control.token) } : undefined,
    opencode: { ...config.opencode, password: mask(config.opencode.password) },
    workspaces: config.workspaces.map((w) => ({ ...w, opencodePassword: mask(w.opencodePassword) })),
  };
  if (config.tls) out.tls = { cert: `[PEM, ${config.tls.cert.length} chars]`, key: "[redacted]" };
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

/**
 * Removes the workspace `absPath` from server.json, keeping every other key as it was.
 * Atomic (temp file + fsync + rename); the file's mode is kept. Returns false when the file
 * does not exist or does not list the workspace.
 */
export async function removeWorkspaceFromConfigFile(configPath: string, absPath: string): Promise<boolean> {
  // Serialized per file: two removals at once must not lose each other's edit.
  return withPathLock(configPath, async () => {
    let text: string;
    try {
      text = await readRegularFile(configPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
    const data = parseConfigText(text, configPath);
    const list = data.workspaces;
    if (!Array.isArray(list)) return false;
    const dir = dirname(configPath);
    const target = resolve(absPath);
    const kept = list.filter((entry) => {
      const p = typeof entry === "string" ? entry
        : entry && typeof entry === "object" && !Array.isArray(entry) && typeof entry.path === "string" ? entry.path
          : undefined;
      return p === undefined || resolve(dir, p) !== target;
    });
    if (kept.length === list.length) return false;
    data.workspaces = kept;
    // writeFileAtomic keeps the existing file's mode (server.json may hold tokens).
    await writeFileAtomic(configPath, JSON.stringify(data, null, 2) + "\n");
    return true;
  });
}

// ---------------------------------------------------------------------------------------------

async function readConfigFile(path: string, namedBy: string | undefined): Promise<FileConfig> {
  let text: string;
  try {
    text = await readRegularFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The default location may be absent; a file the user named explicitly must exist.
    if (code === "ENOENT" && namedBy === undefined) return { path, dir: dirname(path), exists: false, data: {} };
    if (code === "ENOENT") throw new ConfigError(`${namedBy}: config file ${path} does not exist`);
    if (code === "EISDIR" || code === "ENOTREG") throw new ConfigError(`${namedBy ?? "config file"}: ${path} is not a regular JSON file`);
    throw new ConfigError(`server.json (${path}): cannot be read (${code ?? String(err)})`);
  }
  return { path, dir: dirname(path), exists: true, data: parseConfigText(text, path) };
}

function parseConfigText(text: string, path: string): Record<string, Json> {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let data: unknown;
  try {
    data = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch (err) {
    const loc = locateJsonError(text, err);
    throw new ConfigError(`server.json (${path}) line ${loc.line} column ${loc.column}: invalid JSON: ${loc.message}`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`server.json (${path}): must contain a JSON object`);
  }
  return data as Record<string, Json>;
}

/**
 * Where JSON.parse stopped, as 1-based line and column: V8 names the offset ("… at position 17");
 * a message without one (unexpected end) points at the end of the text.
 */
export function locateJsonError(text: string, err: unknown): { line: number; column: number; message: string } {
  const message = (err instanceof Error ? err.message : String(err)).replace(/ in JSON at position \d+.*$/s, "");
  const m = /at position (\d+)/.exec(err instanceof Error ? err.message : "");
  return { ...lineColumn(text, m ? Number(m[1]) : text.length), message };
}

function parseFileWorkspaces(raw: Json | undefined, file: FileConfig, fsrc: (k: string) => string): Array<{ ws: WorkspaceConfig; source: string }> {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError(`${fsrc("workspaces")} must be an array`);
  return raw.map((entry, idx) => {
    const src = fsrc(`workspaces[${idx}]`);
    return { ws: workspaceEntry(entry, file.dir, src), source: src };
  });
}

function parseEnvWorkspaces(raw: string, cwd: string): Array<{ ws: WorkspaceConfig; source: string }> {
  const text = raw.trim();
  if (text.startsWith("[")) {
    let arr: unknown;
    try {
      arr = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
    } catch (err) {
      const loc = locateJsonError(text, err);
      throw new ConfigError(`OPENWORK_WORKSPACES: invalid JSON at column ${loc.column}: ${loc.message}`);
    }
    if (!Array.isArray(arr)) throw new ConfigError(`OPENWORK_WORKSPACES: expected a JSON array`);
    return arr.map((entry, idx) => {
      const src = `OPENWORK_WORKSPACES[${idx}]`;
      return { ws: workspaceEntry(entry as Json, cwd, src), source: src };
    });
  }
  return splitList(text, /[,;]/).map((p) => ({ ws: { path: resolve(cwd, p) }, source: `OPENWORK_WORKSPACES (${p})` }));
}

/** One workspace entry: a path string or `{path, name?, workspaceType?, baseUrl?, …}`. */
function workspaceEntry(entry: Json, baseDir: string, src: string): WorkspaceConfig {
  if (typeof entry === "string") {
    if (entry.trim() === "") throw new ConfigError(`${src}: empty path`);
    return { path: resolve(baseDir, entry) };
  }
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
    throw new ConfigError(`${src}: must be a path or an object with "path"`);
  }
  const str = (k: string): string | undefined => {
    const v = Object.hasOwn(entry, k) ? entry[k] : undefined;
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new ConfigError(`${src}.${k}: must be a string`);
    return v;
  };
  const p = str("path");
  if (p === undefined || p.trim() === "") throw new ConfigError(`${src}: "path" is required`);
  const ws: WorkspaceConfig = { path: resolve(baseDir, p) };
  const name = str("name");
  if (name !== undefined && name.trim() !== "") ws.name = name;
  const type = str("workspaceType");
  if (type !== undefined) ws.workspaceType = parseEnum(type, `${src}.workspaceType`, ["local", "remote"] as const);
  const baseUrl = str("baseUrl");
  if (baseUrl !== undefined && baseUrl.trim() !== "") ws.baseUrl = parseHttpUrl(baseUrl, `${src}.baseUrl`);
  const directory = str("directory");
  if (directory !== undefined && directory.trim() !== "") ws.directory = isAbsolute(directory) ? directory : resolve(baseDir, directory);
  const user = str("opencodeUsername");
  if (user !== undefined) ws.opencodeUsername = user;
  const pass = str("opencodePassword");
  if (pass !== undefined) ws.opencodePassword = pass;
  return ws;
}

function checkDirectory(path: string, source: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ConfigError(`${source}: workspace folder ${path} does not exist`);
  }
  if (!st.isDirectory()) throw new ConfigError(`${source}: workspace path ${path} is not a directory`);
}

function readPem(path: string, source: string): string {
  let text: string;
  try {
    text = readRegularFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${source}: cannot read ${path} (${code === "ENOENT" ? "file does not exist" : code ?? "error"})`);
  }
  if (!text.includes("-----BEGIN")) throw new ConfigError(`${source}: ${path} is not a PEM file`);
  return text;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}

function requireNonEmpty(v: string, source: string): string {
  if (v.trim() === "") throw new ConfigError(`${source}: value must not be empty`);
  return v;
}

/** A host name as it appears in a Host header, without port, lower-cased ("[::1]" keeps its brackets). */
function parseAllowedHost(value: string): string {
  const host = value.trim().toLowerCase();
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)$/.test(host)) throw new ConfigError(`allowed host "${value}": expected a host name without scheme or port`);
  return host;
}

function splitList(v: string, sep: string | RegExp): string[] {
  return v.split(sep).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Parses `1|true|yes|on` / `0|false|no|off` (any case); anything else names the variable. */
export function parseBool(v: string, source: string): boolean {
  const s = v.trim().toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  throw new ConfigError(`${source}: ${JSON.stringify(v)} is not a boolean (use 1|true|yes|on or 0|false|no|off)`);
}

function fileBool(v: Json | undefined, source: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new ConfigError(`${source} must be true or false`);
  return v;
}

function parsePort(v: unknown, source: string): number {
  return parseInteger(v, source, 0, 65535, "a port (0-65535)");
}

function parseInteger(v: unknown, source: string, min: number, max: number, what: string): number {
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && /^\s*\d+\s*$/.test(v)) n = Number(v.trim());
  else n = NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${source}: ${JSON.stringify(v)} is not ${what}`);
  }
  return n;
}

function parseEnum<T extends string>(v: unknown, source: string, allowed: readonly T[]): T {
  const s = typeof v === "string" ? v.trim().toLowerCase() : undefined;
  if (s !== undefined && (allowed as readonly string[]).includes(s)) return s as T;
  throw new ConfigError(`${source}: ${JSON.stringify(v)} is not one of ${allowed.join("|")}`);
}

function parseHttpUrl(v: string, source: string): string {
  let u: URL;
  try {
    u = new URL(v.trim());
  } catch {
    throw new ConfigError(`${source}: ${JSON.stringify(v)} is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new ConfigError(`${source}: ${JSON.stringify(v)} must be an http(s) URL`);
  return v.trim().replace(/\/+$/, "");
}
