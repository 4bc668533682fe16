/**
 * Host subcommands:
 *   openwork-server approvals list|allow ID|deny ID|watch  — talk to a running server
 *   openwork-server audit verify [--workspace ID]           — check the audit hash chains
 * Exit codes: 0 ok, 1 the operation failed (unreachable server, unknown id, broken chain),
 * 2 usage or configuration error.
 */
import { visible } from "./formats/visible-text.ts";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { auditFilePath, verifyAuditFile } from "./audit.ts";
import { ConfigError, describeParseArgsError, loadConfig } from "./config.ts";
import type { PendingApproval } from "./context.ts";

type Out = { write(s: string): unknown };

export interface HostCliIo {
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: Out;
  stderr: Out;
}

const HOST_USAGE = `Usage:
  openwork-server approvals list   [--url URL] [--host-token T] [--config PATH] [--json]
  openwork-server approvals allow ID [--url URL] [--host-token T] [--config PATH]
  openwork-server approvals deny ID  [--url URL] [--host-token T] [--config PATH]
  openwork-server approvals watch  [--url URL] [--host-token T] [--config PATH] [--json]
  openwork-server audit verify [--workspace ID] [--data-dir DIR] [--config PATH]

The server URL comes from --url, OPENWORK_URL, or http://127.0.0.1:<port of the config>;
the host token from --host-token, OPENWORK_HOST_TOKEN, or "hostToken" in server.json.
`;

const OPTIONS = {
  url: { type: "string" },
  "host-token": { type: "string" },
  config: { type: "string" },
  "data-dir": { type: "string" },
  port: { type: "string" },
  host: { type: "string" },
  workspace: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

class UsageError extends Error {}
class OperationError extends Error {}

/** Runs a host subcommand; resolves with the exit code. */
export async function runHostCommand(argv: string[], io: HostCliIo): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError(`command line: ${describeParseArgsError(err)}`);
    }
    const { values, positionals } = parsed;
    if (values.help) {
      io.stdout.write(HOST_USAGE);
      return 0;
    }
    const [group, verb, ...rest] = positionals;
    if (group === "audit") {
      if (verb !== "verify" || rest.length > 0) throw new UsageError(`usage: openwork-server audit verify [--workspace ID]`);
      return await auditVerify(values, io);
    }
    if (group === "approvals") {
      if (verb === "list" && rest.length === 0) return await approvalsList(values, io);
      if ((verb === "allow" || verb === "deny") && rest.length === 1) return await approvalsReply(values, io, rest[0]!, verb);
      if (verb === "watch" && rest.length === 0) return await approvalsWatch(values, io);
      throw new UsageError(`usage: openwork-server approvals list|allow ID|deny ID|watch`);
    }
    throw new UsageError(`unknown command ${JSON.stringify(group)}`);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    io.stderr.write(`openwork-server: ${msg}\n`);
    return err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
  }
}

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

/** The configuration as the server would see it, without checking workspace folders. */
async function hostConfig(values: Values, io: HostCliIo) {
  const argv: string[] = [];
  if (values.config !== undefined) argv.push("--config", values.config);
  if (values["data-dir"] !== undefined) argv.push("--data-dir", values["data-dir"]);
  if (values.port !== undefined) argv.push("--port", values.port);
  if (values.host !== undefined) argv.push("--host", values.host);
  if (values["host-token"] !== undefined) argv.push("--host-token", values["host-token"]);
  return loadConfig({ argv, env: io.env, cwd: io.cwd, lenient: true });
}

async function target(values: Values, io: HostCliIo): Promise<{ url: string; hostToken: string }> {
  const config = await hostConfig(values, io);
  const explicit = values.url ?? (io.env.OPENWORK_URL?.trim() || undefined);
  let url: string;
  if (explicit !== undefined) {
    try {
      const u = new URL(explicit);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http");
    } catch {
      throw new ConfigError(`${values.url !== undefined ? "--url" : "OPENWORK_URL"}: ${JSON.stringify(explicit)} is not an http(s) URL`);
    }
    url = explicit.replace(/\/+$/, "");
  } else {
    const host = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
    url = `${config.tls ? "https" : "http"}://${host}:${config.port}`;
  }
  if (config.tokenSource.host === "generated" || config.hostToken === "") {
    throw new ConfigError("no host token: pass --host-token, set OPENWORK_HOST_TOKEN, or put \"hostToken\" in server.json");
  }
  return { url, hostToken: config.hostToken };
}

async function call(t: { url: string; hostToken: string }, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(t.url + path, {
      method,
      headers: {
        "X-OpenWork-Host-Token": t.hostToken,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new OperationError(`cannot reach the server at ${t.url} (${cause?.code ?? cause?.message ?? String(err)})`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status === 401) throw new OperationError(`the server refused the host token (401)`);
  return { status: res.status, json };
}

function describe(a: PendingApproval, now: number): string {
  const left = Math.max(0, Math.round((a.expiresAt - now) / 1000));
  const risk = a.risk && a.risk.length ? `  risk: ${a.risk.join(",")}` : "";
  // Everything here is client-supplied text: escaped so that it cannot move the cursor, fake a
  // line or reverse itself on the host's terminal.
  return visible(`${a.id}  ${a.workspaceId ?? "-"}  ${a.action}  ${JSON.stringify(a.summary)}  (${left}s left)${risk}`);
}

async function approvalsList(values: Values, io: HostCliIo): Promise<number> {
  const t = await target(values, io);
  const { status, json } = await call(t, "GET", "/approvals");
  if (status !== 200) throw new OperationError(`GET /approvals answered ${status}`);
  const items = ((json as { items?: PendingApproval[] })?.items ?? []) as PendingApproval[];
  if (values.json) {
    io.stdout.write(JSON.stringify(items) + "\n");
    return 0;
  }
  if (items.length === 0) io.stdout.write("No pending approvals.\n");
  const now = Date.now();
  for (const a of items) {
    io.stdout.write(describe(a, now) + "\n");
    for (const p of a.paths ?? []) io.stdout.write(`    ${visible(p)}\n`);
  }
  return 0;
}

async function approvalsReply(values: Values, io: HostCliIo, id: string, verb: "allow" | "deny"): Promise<number> {
  const t = await target(values, io);
  const { status } = await call(t, "POST", `/approvals/${encodeURIComponent(id)}`, { reply: verb });
  if (status === 404) throw new OperationError(`approval ${id} not found (unknown or already resolved)`);
  if (status !== 200) throw new OperationError(`POST /approvals/${id} answered ${status}`);
  io.stdout.write(`${verb === "allow" ? "Allowed" : "Denied"} ${id}\n`);
  return 0;
}

/** Follows GET /approvals/events (SSE) and prints each event until the stream ends or Ctrl-C. */
async function approvalsWatch(values: Values, io: HostCliIo): Promise<number> {
  const t = await target(values, io);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    let res: Response;
    try {
      res = await fetch(t.url + "/approvals/events", {
        headers: { "X-OpenWork-Host-Token": t.hostToken, Accept: "text/event-stream" },
        signal: ac.signal,
      });
    } catch (err) {
      if (ac.signal.aborted) return 0;
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new OperationError(`cannot reach the server at ${t.url} (${cause?.code ?? String(err)})`);
    }
    if (res.status === 401) throw new OperationError("the server refused the host token (401)");
    if (res.status !== 200 || !res.body) throw new OperationError(`GET /approvals/events answered ${res.status}`);
    io.stdout.write(`Watching approvals at ${t.url} (Ctrl-C to stop)\n`);
    const decoder = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let sep: RegExpExecArray | null;
        while ((sep = /\r?\n\r?\n/.exec(buf))) {
          const block = buf.slice(0, sep.index);
          buf = buf.slice(sep.index + sep[0].length);
          printEvent(block, values.json === true, io);
        }
      }
    } catch (err) {
      if (ac.signal.aborted) return 0;
      throw new OperationError(`event stream failed: ${String(err)}`);
    }
    if (ac.signal.aborted) return 0;
    io.stderr.write("openwork-server: the server closed the event stream\n");
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function printEvent(block: string, asJson: boolean, io: HostCliIo): void {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i === -1 ? line : line.slice(0, i);
    const value = i === -1 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return;
  const raw = data.join("\n");
  if (asJson) {
    io.stdout.write(JSON.stringify({ event, data: safeParse(raw) }) + "\n");
    return;
  }
  const payload = safeParse(raw) as Record<string, unknown> | undefined;
  if (event === "approval.requested" && payload && typeof payload === "object") {
    io.stdout.write(`requested  ${describe(payload as unknown as PendingApproval, Date.now())}\n`);
  } else if (event === "approval.resolved" && payload && typeof payload === "object") {
    io.stdout.write(visible(`resolved   ${String(payload.id)}  ${String(payload.result)}`) + "\n");
  } else {
    io.stdout.write(`${event}  ${raw}\n`);
  }
}

function safeParse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

/** Verifies every `<dataDir>/audit/*.jsonl` (or one workspace's); exit 1 on any broken chain. */
async function auditVerify(values: Values, io: HostCliIo): Promise<number> {
  const config = await hostConfig(values, io);
  const dir = join(config.dataDir, "audit");
  let files: string[];
  if (values.workspace !== undefined) {
    let file: string;
    try {
      file = auditFilePath(config.dataDir, values.workspace);
    } catch {
      throw new UsageError(`--workspace: ${JSON.stringify(values.workspace)} is not a workspace id`);
    }
    files = [file];
  } else {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        io.stdout.write(`No audit logs in ${dir}\n`);
        return 0;
      }
      throw err;
    }
    files = names.filter((n) => n.endsWith(".jsonl")).sort().map((n) => join(dir, n));
    if (files.length === 0) io.stdout.write(`No audit logs in ${dir}\n`);
  }
  let failed = 0;
  for (const file of files) {
    let result;
    try {
      result = await verifyAuditFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      io.stdout.write(`${file}: FAILED: ${code === "ENOENT" ? "no audit log" : String(err)}\n`);
      failed += 1;
      continue;
    }
    if (result.ok) io.stdout.write(`${file}: ok (${result.entries} entries${result.openIntents > 0 ? `, ${result.openIntents} write(s) interrupted and not yet recovered` : ""})\n`);
    else {
      failed += 1;
      io.stdout.write(`${file}: FAILED at line ${result.firstBadLine}: ${result.reason}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}
