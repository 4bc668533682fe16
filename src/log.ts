/**
 * Logging: "pretty" (one human line) or "json" (one object per line with time, level, msg and
 * attributes). Logs go to stderr by default so stdout carries only the startup banner.
 * Secrets never reach a log line: attributes whose key looks like a credential are masked and
 * `path`/`url` attributes lose their query string.
 */
import type { Logger } from "./context.ts";

export type LogFormat = "pretty" | "json";
type Level = "debug" | "info" | "warn" | "error";

export interface LoggerOptions {
  format: LogFormat;
  verbose: boolean;
  stream?: NodeJS.WritableStream;
}

/** Keys whose values are never written to a log, whatever the caller passes. */
const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|credential|api[-_]?key/i;
/** Keys holding a URL or path: their query string may carry a token (`?token=`), so it is cut. */
const URLISH_KEY = /^(path|url|href|target|location)$/i;

function stripQuery(v: string): string {
  const i = v.search(/[?#]/);
  return i === -1 ? v : v.slice(0, i);
}

/** Makes one attribute value safe and JSON-friendly. */
function clean(key: string, value: unknown, depth = 0): unknown {
  if (SECRET_KEY.test(key) && value !== undefined && value !== null && value !== "") return "[redacted]";
  if (typeof value === "string") return URLISH_KEY.test(key) ? stripQuery(value) : value;
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
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => clean("", v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== undefined) out[k] = clean(k, v, depth + 1);
  }
  return out;
}

function cleanAttrs(attrs: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!attrs) return out;
  for (const [k, v] of Object.entries(attrs)) {
    // time/level/msg are ours; a caller's attribute cannot overwrite them.
    if (v === undefined || k === "time" || k === "level" || k === "msg") continue;
    out[k] = clean(k, v);
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

function hhmmss(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Creates a logger. `debug` lines are written only when `verbose`. */
export function createLogger(opts: LoggerOptions): Logger {
  const stream = opts.stream ?? process.stderr;
  const write = (level: Level, msg: string, attrs?: Record<string, unknown>): void => {
    if (level === "debug" && !opts.verbose) return;
    const now = new Date();
    const a = cleanAttrs(attrs);
    let line: string;
    if (opts.format === "json") {
      line = JSON.stringify({ time: now.toISOString(), level, msg, ...a });
    } else if (msg === "request" && "method" in a && "path" in a) {
      // The request log: "GET /status 200 3ms".
      const { method, path, status, durationMs, ...rest } = a;
      const extra = Object.entries(rest).map(([k, v]) => ` ${k}=${prettyValue(v)}`).join("");
      const ms = typeof durationMs === "number" ? ` ${Math.round(durationMs * 10) / 10}ms` : "";
      line = `${hhmmss(now)} ${level.toUpperCase().padEnd(5)} ${String(method)} ${String(path)} ${String(status ?? "-")}${ms}${extra}`;
    } else {
      const extra = Object.entries(a).map(([k, v]) => ` ${k}=${prettyValue(v)}`).join("");
      line = `${hhmmss(now)} ${level.toUpperCase().padEnd(5)} ${msg}${extra}`;
    }
    try {
      stream.write(line + "\n");
    } catch {
      // A closed log stream must never take the server down.
    }
  };
  return {
    debug: (msg, attrs) => write("debug", msg, attrs),
    info: (msg, attrs) => write("info", msg, attrs),
    warn: (msg, attrs) => write("warn", msg, attrs),
    error: (msg, attrs) => write("error", msg, attrs),
  };
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  const noop = (): void => {};
  return { debug: noop, info: noop, warn: noop, error: noop };
}
