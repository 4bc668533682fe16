/**
 * wrk (a C load generator) as the benchmarks' default: our Node generator saturates before a fast
 * server does and so hides gaps. wrk is a Debian package, installed by the benchmark when missing
 * and possible (`apt-get install wrk`), never a dependency. With `taskset`, wrk runs on the last
 * core and the servers under test on the first (startChildServer), so neither steals the other's CPU.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";

function has(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

let checked: boolean | undefined;

/** Whether wrk can be used (tries `apt-get install -y wrk` once as root). BENCH_NODE_LOADGEN=1 forces the Node generator. */
export function wrkAvailable(): boolean {
  if (checked !== undefined) return checked;
  if (process.env.BENCH_NODE_LOADGEN) return (checked = false);
  if (!has("wrk") && process.getuid?.() === 0 && has("apt-get")) {
    console.log("wrk not found: installing it with apt-get (a benchmark tool, not a dependency) …");
    try {
      execFileSync("sh", ["-c", "apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1"], { stdio: "ignore" });
    } catch {
      // reported below
    }
  }
  checked = has("wrk");
  if (!checked) console.log("NOTE: wrk is not installed (apt-get install wrk): falling back to the Node load generator, which saturates before a fast server does — ratios understate the server.");
  return checked;
}

/** CPU pinning: servers on core 0, the load generator on the last core (when taskset exists and there are ≥ 2 cores). */
export function pinPrefix(role: "server" | "loadgen"): string[] {
  if (process.env.BENCH_NO_PIN || cpus().length < 2 || !has("taskset")) return [];
  return ["taskset", "-c", role === "server" ? "0" : String(cpus().length - 1)];
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  requests: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

/** One wrk run (1 thread, `connections` keep-alive connections) of `durationMs`; method, headers and body through a Lua script. */
export async function runWrk(opts: { url: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; connections: number; durationMs: number }): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), "ow-wrk-"));
  try {
    const lines = [`wrk.method = ${JSON.stringify(opts.method ?? "GET")}`];
    for (const [k, v] of Object.entries(opts.headers ?? {})) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
    if (opts.body !== undefined) {
      writeFileSync(join(dir, "body"), opts.body);
      lines.push(`local f = io.open(${JSON.stringify(join(dir, "body"))}, "rb")`, "wrk.body = f:read(\"*a\")", "f:close()");
    }
    // Non-2xx answers count as errors (wrk's own report lists them as "Non-2xx").
    writeFileSync(join(dir, "script.lua"), lines.join("\n") + "\n");
    const seconds = Math.max(1, Math.round(opts.durationMs / 1000));
    const pin = pinPrefix("loadgen");
    const argv = [...pin, "wrk", "-t1", `-c${opts.connections}`, `-d${seconds}s`, "--latency", "-s", join(dir, "script.lua"), opts.url];
    const out = await new Promise<string>((resolve, reject) => {
      execFile(argv[0]!, argv.slice(1), { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
    return { rps, p50Ms: toMs(/\n\s+50%\s+(\S+)/.exec(out)?.[1] ?? ""), p99Ms: toMs(/\n\s+99%\s+(\S+)/.exec(out)?.[1] ?? ""), errors, requests };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
