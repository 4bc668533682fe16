/**
 * Logging: "pretty" (one human line) or "json" (one OpenTelemetry-style object per line:
 * timeUnixNano, severityText, severityNumber, body, attributes, resource — plus time/level/msg).
 * Debug, info and warn lines go to stdout and only errors to stderr: the orchestrator labels every
 * stderr line ERROR. Secrets never reach a log line: attributes whose key looks like a credential
 * are masked and `path`/`url` attributes lose their query string.
 *
 * Writing costs nothing on the request path: lines are batched and written every 50 ms (or when
 * 64 KiB are waiting, or before an error line), in order; `flush()` writes what is left (the CLI
 * calls it on exit and on fatal errors, so the last lines are never lost).
 */
import { writeSync } from "node:fs";
import type { Logger } from "./context.ts";
import { LIMITS } from "./limits.ts";

export type LogFormat = "pretty" | "json";
type Level = "debug" | "info" | "warn" | "error";
const LEVEL_TAG: Record<Level, string> = { debug: "DEBUG", info: "INFO ", warn: "WARN ", error: "ERROR" };
const SEVERITY: Record<Level, number> = { debug: 5, info: 9, warn: 13, error: 17 };

export interface LoggerOptions {
  format: LogFormat;
  verbose: boolean;
  /** Where debug/info/warn lines go (default stdout). */
  stream?: NodeJS.WritableStream;
  /** Where error lines go (default stderr; `stream` when only that is given). */
  errorStream?: NodeJS.WritableStream;
  /** Batch lines (written every logFlushMs or logBufferBytes, at exit and before an error line); off: each line at once. */
  buffered?: boolean;
  /** `resource` of JSON lines (service.name is always openwork-server). */
  resource?: { version?: string; runId?: string };
}

/**
 * Lines waiting for one write. Batches keep their order across both streams only per stream;
 * an error line flushes the info lines first, so a crash report follows what led to it.
 */
class LineBuffer {
  private parts: string[] = [];
  private size = 0;
  private scheduled = false;

  constructor(private readonly stream: NodeJS.WritableStream, private readonly buffered: boolean) {}

  push(line: string): void {
    if (!this.buffered) return this.write(line);
    this.parts.push(line);
    this.size += line.length;
    if (this.size >= LIMITS.logBufferBytes) this.flush();
    else if (!this.scheduled) {
      // A write per event-loop turn was a syscall every one to three requests under load: lines
      // wait up to logFlushMs instead (exit and fatal errors flush at once, see cli.ts).
      this.scheduled = true;
      setTimeout(() => this.flush(), LIMITS.logFlushMs).unref();
    }
  }

  flush(sync = false): void {
    this.scheduled = false;
    if (this.parts.length === 0) return;
    const text = this.parts.join("");
    this.parts = [];
    this.size = 0;
    const fd = (this.stream as { fd?: unknown }).fd;
    // At exit the event loop is gone: the last lines are written synchronously.
    if (sync && typeof fd === "number") {
      try {
        writeSync(fd, text);
      } catch {
        // a closed pipe at exit: nothing left to tell
      }
    } else this.write(text);
  }

  private write(text: string): void {
    try {
      this.stream.write(text);
    } catch {
      // A closed log stream must never take the server down.
    }
  }
}

/** Keys whose values are never written to a log, whatever the caller passes. */
const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|credential|api[-_]?key/i;
/** Keys holding a URL or path: their query string may carry a token (`?token=`), so it is cut. */
const URLISH_KEY = /^(path|url|href|target|location)$/i;

function stripQuery(v: string): string {
  const i = v.search(/[?#]/);
  return i === -1 ? v : v.slice(0, i);
}

/** Per-key verdicts of the two key patterns (keys come from code, so the cache stays small). */
interface KeyKinds {
  secret: boolean;
  urlish: boolean;
}

function keyKinds(cache: Map<string, KeyKinds>, key: string): KeyKinds {
  let k = cache.get(key);
  if (k === undefined) {
    k = { secret: SECRET_KEY.test(key), urlish: URLISH_KEY.test(key) };
    if (cache.size < LIMITS.logKeyCacheMax) cache.set(key, k);
  }
  return k;
}

/** Makes one attribute value safe and JSON-friendly. */
function clean(cache: Map<string, KeyKinds>, key: string, value: unknown, depth = 0): unknown {
  const kinds = keyKinds(cache, key);
  if (kinds.secret && value !== undefined && value !== null && value !== "") return "[redacted]";
  if (typeof value === "string") return kinds.urlish ? stripQuery(value) : value;
  if (typeof value === "number" || typeof value === "boolean") return value;
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as NodeJS.ErrnoException).code;
    if (code !== undefined) out.code = code;
    if (value.stack) out.stack = value.stack;
    return out;
  }
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return value;
  if (depth >= 4) return "[object]";
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => clean(cache, "", v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== undefined) out[k] = clean(cache, k, v, depth + 1);
  }
  return out;
}

function cleanAttrs(cache: Map<string, KeyKinds>, attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!attrs) return out;
  for (const k in attrs) {
    if (!Object.hasOwn(attrs, k)) continue;
    const v = attrs[k];
    // time/level/msg are ours; a caller's attribute cannot overwrite them.
    if (v === undefined || k === "time" || k === "level" || k === "msg") continue;
    out[k] = clean(cache, k, v);
  }
  return out;
}

function prettyValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v && typeof v === "object" && "message" in v && "name" in v && "stack" in v) {
    return String((v as { stack: unknown }).stack);
  }
  return JSON.stringify(v) ?? String(v);
}

const pad2 = (n: number) => (n < 10 ? "0" + n : String(n));
const pad3 = (n: number) => (n < 10 ? "00" + n : n < 100 ? "0" + n : String(n));

/**
 * Timestamps for log lines. The part up to the second is formatted once per second: the
 * request log runs on every request, and Date formatting is a measurable share of it.
 */
function clock() {
  let sec = -1;
  let local = "";
  let iso = "";
  const refresh = (now: number) => {
    const s = Math.floor(now / 1000);
    if (s !== sec) {
      sec = s;
      const d = new Date(s * 1000);
      local = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.`;
      iso = d.toISOString().slice(0, 20); // "YYYY-MM-DDTHH:MM:SS."
    }
    return now - s * 1000;
  };
  return {
    /** Local HH:MM:SS.mmm for pretty lines. */
    local(now: number): string {
      const ms = refresh(now);
      return local + pad3(ms);
    },
    /** ISO 8601 UTC for JSON lines. */
    iso(now: number): string {
      const ms = refresh(now);
      return iso + pad3(ms) + "Z";
    },
  };
}

/** Creates a logger. `debug` lines are written only when `verbose`. */
export function createLogger(opts: LoggerOptions): Logger & { flush(sync?: boolean): void } {
  const out = new LineBuffer(opts.stream ?? process.stdout, opts.buffered === true);
  const err = opts.errorStream ? new LineBuffer(opts.errorStream, opts.buffered === true) : opts.stream ? out : new LineBuffer(process.stderr, opts.buffered === true);
  const keys = new Map<string, KeyKinds>();
  const time = clock();
  const resource: Record<string, string> = { "service.name": "openwork-server" };
  if (opts.resource?.version) resource["service.version"] = opts.resource.version;
  if (opts.resource?.runId) resource["service.instance.id"] = opts.resource.runId;
  const write = (level: Level, msg: string, attrs?: Record<string, unknown>): void => {
    if (level === "debug" && !opts.verbose) return;
    const now = Date.now();
    const a = cleanAttrs(keys, attrs);
    let line: string;
    if (opts.format === "json") {
      line = JSON.stringify({
        timeUnixNano: `${now}000000`,
        severityText: level.toUpperCase(),
        severityNumber: SEVERITY[level],
        body: msg,
        attributes: a,
        resource,
        time: time.iso(now),
        level,
        msg,
      });
    } else if (msg === "request" && "method" in a && "path" in a) {
      // The request log: "GET /status 200 3ms".
      const { method, path, status, durationMs, ...rest } = a;
      const extra = Object.entries(rest).map(([k, v]) => ` ${k}=${prettyValue(v)}`).join("");
      const ms = typeof durationMs === "number" ? ` ${Math.round(durationMs * 10) / 10}ms` : "";
      line = `${time.local(now)} ${LEVEL_TAG[level]} ${String(method)} ${String(path)} ${String(status ?? "-")}${ms}${extra}`;
    } else {
      const extra = Object.entries(a).map(([k, v]) => ` ${k}=${prettyValue(v)}`).join("");
      line = `${time.local(now)} ${LEVEL_TAG[level]} ${msg}${extra}`;
    }
    if (level === "error") {
      if (err !== out) out.flush();
      err.push(line + "\n");
      err.flush();
    } else out.push(line + "\n");
  };
  // The request line runs on every request: no attributes object, no key checks (the path has no
  // query string — the caller passes the path only — and method/status/duration hold no secret).
  const resourceJson = JSON.stringify(resource);
  const request = (method: string, path: string, status: number, durationMs: number): void => {
    const now = Date.now();
    if (opts.format === "json") {
      const attrs = `{"method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status},"durationMs":${durationMs}}`;
      out.push(`{"timeUnixNano":"${now}000000","severityText":"INFO","severityNumber":9,"body":"request","attributes":${attrs},"resource":${resourceJson},"time":"${time.iso(now)}","level":"info","msg":"request"}\n`);
    } else {
      out.push(`${time.local(now)} INFO  ${method} ${path} ${status} ${durationMs}ms\n`);
    }
  };
  return {
    request,
    debug: (msg, attrs) => write("debug", msg, attrs),
    info: (msg, attrs) => write("info", msg, attrs),
    warn: (msg, attrs) => write("warn", msg, attrs),
    error: (msg, attrs) => write("error", msg, attrs),
    flush: (sync = false) => {
      out.flush(sync);
      if (err !== out) err.flush(sync);
    },
  };
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  const noop = (): void => {};
  return { debug: noop, info: noop, warn: noop, error: noop };
}
