/**
 * Zero-dependency load generator for the benchmarks: a fixed number of concurrent workers on a
 * keep-alive http.Agent, each sending the next request as soon as the previous one finished.
 * Reports requests/s and p50/p99 latency. Also helpers to run a server in a child process (so
 * the load generator does not share an event loop with the server it measures) and to print
 * comparisons against a baseline measured in the same run.
 */
import { Agent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pinPrefix, runWrk, wrkAvailable } from "./wrk.ts";

/** One request shape of a benchmark: what `loadTest` sends, minus the load settings. */
export interface BenchCase {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface LoadTestOptions extends BenchCase {
  /** Requests in flight at all times. */
  concurrency: number;
  /** Measured time (after the warm-up). */
  durationMs: number;
  /** Unmeasured warm-up (JIT, connection setup). Default 300 ms. */
  warmupMs?: number;
  /** Which statuses count as success. Default: 2xx. */
  okStatus?: (status: number) => boolean;
}

export interface LoadTestResult {
  /** Successful responses per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed requests: network errors and unexpected statuses. */
  errors: number;
  requests: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * Runs a load test against one URL: with wrk when available (wrk.ts; `concurrency` connections,
 * warm-up run first), else the closed-loop Node generator below.
 */
export async function loadTest(opts: LoadTestOptions): Promise<LoadTestResult> {
  if (wrkAvailable() && !opts.url.startsWith("https:")) {
    const c = { url: opts.url, connections: opts.concurrency, ...(opts.method ? { method: opts.method } : {}), ...(opts.headers ? { headers: opts.headers } : {}), ...(opts.body !== undefined ? { body: opts.body } : {}) };
    await runWrk({ ...c, durationMs: opts.warmupMs ?? 1000 });
    return runWrk({ ...c, durationMs: opts.durationMs });
  }
  return nodeLoadTest(opts);
}

/** The closed-loop Node load generator (fallback when wrk is missing). */
async function nodeLoadTest(opts: LoadTestOptions): Promise<LoadTestResult> {
  const url = new URL(opts.url);
  const https = url.protocol === "https:";
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: opts.concurrency, rejectUnauthorized: false })
    : new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const send = https ? httpsRequest : httpRequest;
  const ok = opts.okStatus ?? ((s: number) => s >= 200 && s < 300);
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (body) headers["content-length"] = String(body.length);

  const one = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = send(url, { method: opts.method ?? "GET", headers, agent }, (res) => {
        res.on("data", () => {});
        res.on("end", () => resolve(ok(res.statusCode ?? 0)));
        res.on("error", () => resolve(false));
      });
      req.on("error", () => resolve(false));
      req.end(body);
    });

  const latencies: number[] = [];
  let errors = 0;
  const warmupMs = opts.warmupMs ?? 300;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + opts.durationMs;

  const worker = async (): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const success = await one();
      const t1 = performance.now();
      if (t0 >= measureFrom && t1 <= end) {
        if (success) latencies.push(t1 - t0);
        else errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    rps: latencies.length / (opts.durationMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors,
    requests: latencies.length + errors,
  };
}

/**
 * Runs every case in turn, `rounds` times (alternating), and keeps each case's best round: other
 * load on a shared machine hits all cases alike, and the best round of each is its capacity when
 * least disturbed. Throws on any failed request.
 */
export async function bestOfRounds<K extends string>(
  cases: Record<K, BenchCase>,
  opts: { rounds: number; concurrency: number; durationMs: number },
): Promise<Record<K, LoadTestResult>> {
  const best = {} as Record<K, LoadTestResult>;
  const entries = Object.entries(cases) as [K, BenchCase][];
  for (let round = 0; round < opts.rounds; round++) {
    // Each round starts one case later. On this machine position matters: two identical servers
    // measured one after the other differed by 4–5%, the later one faster, in either order — a
    // fixed order turned that into a bias against whatever came first (the logged server).
    for (let i = 0; i < entries.length; i++) {
      const [name, c] = entries[(i + round) % entries.length]!;
      const r = await loadTest({ ...c, concurrency: opts.concurrency, durationMs: opts.durationMs, warmupMs: 300 });
      if (r.errors > 0) throw new Error(`${name}: ${r.errors} failed requests`);
      const prev = best[name];
      if (!prev || r.rps > prev.rps) best[name] = r;
    }
  }
  return best;
}

/** One formatted line: `label  12345 req/s  p50 0.82 ms  p99 2.10 ms  errors 0`. */
export function formatResult(label: string, r: LoadTestResult): string {
  return `${label.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50Ms.toFixed(2).padStart(6)} ms   p99 ${r.p99Ms.toFixed(2).padStart(6)} ms   errors ${r.errors}`;
}

/** `ours / baseline` as `0.87×`, with a verdict when a target is given. */
export function formatRatio(label: string, ours: LoadTestResult, baseline: LoadTestResult, target?: number): string {
  const ratio = ours.rps / baseline.rps;
  const verdict = target === undefined ? "" : ratio >= target ? `  (target ≥ ${target.toFixed(2)}×: met)` : `  (target ≥ ${target.toFixed(2)}×: NOT met)`;
  return `${label.padEnd(34)} ${ratio.toFixed(2)}× baseline req/s${verdict}`;
}

export interface ChildServer {
  /** The JSON object the child printed on its first stdout line. */
  info: Record<string, unknown>;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `node --import tsx <script>` and waits for its first stdout line, a JSON object
 * describing what it started (e.g. URLs and tokens). Its log goes to a file in the temp folder
 * (the terminal with BENCH_VERBOSE); it is pinned to core 0 (wrk.ts). `stop()` sends SIGTERM and waits.
 */
export async function startChildServer(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<ChildServer> {
  // The server's log (request lines on by default) goes to a real file, as in production: a log
  // sent to /dev/null would hide its cost.
  const logFile = join(tmpdir(), `openwork-bench-${process.pid}.log`);
  const log = process.env.BENCH_VERBOSE ? "inherit" : openSync(logFile, "a");
  const [cmd, ...pin] = [...pinPrefix("server"), process.execPath];
  const child = spawn(cmd!, [...pin, "--import", import.meta.resolve("tsx"), script, ...args], {
    env: { ...process.env, ...env },
    // fd 3 carries the one JSON line the child reports (stdout and stderr are its log).
    stdio: ["ignore", log, log, "pipe"],
  });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`${script} did not report within 30 s`)), 30_000);
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding("utf8").on("data", (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl !== -1) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        } catch (err) {
          reject(err);
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before reporting`));
    });
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    info,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts the child server `test/bench/targets/<name>.ts` (see startChildServer). */
export function startTarget(name: string, args: string[] = [], env: Record<string, string> = {}): Promise<ChildServer> {
  return startChildServer(fileURLToPath(new URL(`./targets/${name}.ts`, import.meta.url)), args, env);
}

/** Benchmark durations: BENCH_DURATION_MS overrides the default (e.g. for a quick smoke run). */
export function benchDurationMs(dflt: number): number {
  const v = Number(process.env.BENCH_DURATION_MS);
  return Number.isFinite(v) && v > 0 ? v : dflt;
}
