/**
 * Starts a real server on port 0 with a temp workspace, a temp HOME and known tokens.
 * Everything goes through the real config loader, as a user's flags and env would.
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { loadConfig } from "../../src/config.ts";
import { createServer, type OpenworkServer } from "../../src/server.ts";
import { workspaceId } from "../../src/workspaces.ts";
import type { RouteDef } from "../../src/http/route.ts";
import type { Logger, ServerContext } from "../../src/context.ts";
import { readResponse } from "./response.ts";
import { waitFor } from "./wait.ts";

export interface StartOptions {
  approval?: "auto" | "manual";
  approvalTimeoutMs?: number;
  readOnly?: boolean;
  env?: Record<string, string>;
  argv?: string[];
  /** Relative path → content, created in the workspace before start. */
  files?: Record<string, string>;
  extraRoutes?: RouteDef[];
  headersTimeoutMs?: number;
  sseHeartbeatMs?: number;
  bodyIdleMs?: number;
  catalogMaxEntries?: number;
  catalogMaxWatchers?: number;
  proxyHeadersTimeoutMs?: number;
  pendingBodyBytes?: number;
  /** Do not pass --workspace (the workspaces come from argv/env/server.json instead). */
  noDefaultWorkspace?: boolean;
}

export interface LogLine {
  level: string;
  msg: string;
  attrs?: Record<string, unknown>;
}

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  text: string;
}

export interface RequestOptions {
  /** Default: the client token; null sends no Authorization header. */
  token?: string | null;
  /** Send the host token header. */
  host?: boolean;
  json?: unknown;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

export interface TestServer {
  url: string;
  clientToken: string;
  hostToken: string;
  workspace: string;
  workspaceId: string;
  home: string;
  dataDir: string;
  /** The folder that holds the workspace (and nothing else): list it to prove nothing leaked. */
  parent: string;
  context: ServerContext;
  server: OpenworkServer;
  logs: LogLine[];
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  mintToken(scope: "viewer" | "collaborator" | "owner", extra?: { label?: string; ttlSeconds?: number }): Promise<string>;
  close(): Promise<void>;
}

function captureLogger(lines: LogLine[]): Logger {
  const push = (level: string) => (msg: string, attrs?: Record<string, unknown>) => {
    lines.push(attrs ? { level, msg, attrs } : { level, msg });
  };
  return { debug: push("debug"), info: push("info"), warn: push("warn"), error: push("error") };
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const parent = await mkdtemp(join(tmpdir(), "ow-ws-"));
  const workspace = join(parent, "workspace");
  await mkdir(workspace);
  const home = await mkdtemp(join(tmpdir(), "ow-home-"));
  for (const [rel, content] of Object.entries(options.files ?? {})) {
    const file = join(workspace, rel);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  const clientToken = "client-" + randomBytes(12).toString("hex");
  const hostToken = "host-" + randomBytes(12).toString("hex");
  const argv = [
    ...(options.noDefaultWorkspace ? [] : ["--workspace", workspace]),
    "--host", "127.0.0.1",
    "--port", "0",
    "--token", clientToken,
    "--host-token", hostToken,
    "--approval", options.approval ?? "auto",
    ...(options.approvalTimeoutMs !== undefined ? ["--approval-timeout", String(options.approvalTimeoutMs)] : []),
    ...(options.readOnly ? ["--read-only"] : []),
    ...(options.argv ?? []),
  ];
  const env: Record<string, string> = { HOME: home, ...(options.env ?? {}) };
  const config = await loadConfig({ argv, env, cwd: parent });
  const logs: LogLine[] = [];
  const server = await createServer(config, { log: captureLogger(logs), extraRoutes: options.extraRoutes ?? [], ...(options.headersTimeoutMs ? { headersTimeoutMs: options.headersTimeoutMs } : {}), ...(options.sseHeartbeatMs ? { sseHeartbeatMs: options.sseHeartbeatMs } : {}), ...(options.bodyIdleMs ? { bodyIdleMs: options.bodyIdleMs } : {}), ...(options.pendingBodyBytes ? { pendingBodyBytes: options.pendingBodyBytes } : {}), ...(options.catalogMaxEntries ? { catalogMaxEntries: options.catalogMaxEntries } : {}), ...(options.catalogMaxWatchers ? { catalogMaxWatchers: options.catalogMaxWatchers } : {}), ...(options.proxyHeadersTimeoutMs ? { proxyHeadersTimeoutMs: options.proxyHeadersTimeoutMs } : {}) });
  const url = await server.listen();

  const request = (method: string, path: string, opts: RequestOptions = {}): Promise<TestResponse> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const token = opts.token === undefined ? clientToken : opts.token;
      if (token !== null && headers.authorization === undefined && headers.Authorization === undefined) {
        headers.authorization = `Bearer ${token}`;
      }
      if (opts.host) headers["x-openwork-host-token"] = hostToken;
      let body: Buffer | undefined;
      if (opts.json !== undefined) {
        body = Buffer.from(JSON.stringify(opts.json));
        headers["content-type"] ??= "application/json";
      } else if (opts.body !== undefined) {
        body = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
      }
      if (body) headers["content-length"] = String(body.length);
      const req = httpRequest(new URL(path, url), { method, headers, agent: false }, (res) => {
        readResponse(res).then(({ json, text }) => resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text }), reject);
      });
      req.on("error", reject);
      req.end(body);
    });

  const ts: TestServer = {
    url,
    clientToken,
    hostToken,
    workspace,
    workspaceId: workspaceId(workspace),
    home,
    dataDir: config.dataDir,
    parent,
    context: server.context,
    server,
    logs,
    request,
    async mintToken(scope, extra = {}) {
      const res = await request("POST", "/tokens", { token: null, host: true, json: { scope, ...extra } });
      if (res.status !== 201) throw new Error(`mint failed: ${res.status} ${res.text}`);
      return res.json.token as string;
    },
    async close() {
      await server.close();
      await rm(parent, { recursive: true, force: true });
      await rm(home, { recursive: true, force: true });
    },
  };
  return ts;
}

export interface AuditLine {
  action: string;
  target: string;
  summary: string;
  [key: string]: unknown;
}

/**
 * A workspace's audit log as written on disk (one JSON object a line), one entry per event: the
 * write-ahead intents and failed outcomes are left out unless `all`; [] before its first entry.
 */
export async function readAuditLog(s: TestServer, id = s.workspaceId, all = false): Promise<AuditLine[]> {
  let text: string;
  try {
    text = await readFile(join(s.dataDir, "audit", `${id}.jsonl`), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
  return all ? lines : lines.filter((l) => l.phase !== "intent" && l.result !== "failed");
}

/** The host's list of pending approvals (GET /approvals with the host token). */
export async function pendingApprovals(s: TestServer): Promise<TestResponse["json"][]> {
  const res = await s.request("GET", "/approvals", { token: null, host: true });
  if (res.status !== 200) throw new Error(`GET /approvals: ${res.status} ${res.text}`);
  return res.json.items;
}

/** Waits for the first pending approval (of a write request still in flight). */
export function firstApproval(s: TestServer): Promise<TestResponse["json"]> {
  return waitFor(async () => (await pendingApprovals(s))[0], { what: "approval" });
}
