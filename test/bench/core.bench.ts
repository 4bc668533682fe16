/**
 * Core overhead, in one run, with wrk (wrk.ts) and the servers pinned apart from it:
 * - GET /health and authenticated GET /status against a bare node:http server answering the same
 *   bytes (targets ≥ 0.9× and ≥ 0.8×), and against a bare server sending our full head (CORS,
 *   nosniff: what the contract costs in Node itself — shown for reference);
 * - the request log's cost: /status with the default logging (to a file) vs `--no-log-requests`
 *   (target ≤ 5%);
 * - GET …/mcp and …/audit, and with BENCH_BASELINE_REF=<commit> every route also on that commit's
 *   build (targets: mcp and audit ≥ 1.5× the baseline; no route slower).
 */
import { buildRef } from "./baseline.ts";
import { bestOfRounds, benchDurationMs, formatRatio, formatResult, startTarget, type BenchCase, type ChildServer } from "./lib.ts";

interface CoreInfo {
  url: string;
  bareUrl: string;
  bareHeadUrl: string;
  token: string;
  workspaceId: string;
}

function routes(info: CoreInfo): Record<string, BenchCase> {
  const headers = { authorization: `Bearer ${info.token}` };
  return {
    health: { url: `${info.url}/health` },
    status: { url: `${info.url}/status`, headers },
    mcp: { url: `${info.url}/workspace/${info.workspaceId}/mcp`, headers },
    audit: { url: `${info.url}/workspace/${info.workspaceId}/audit?limit=50`, headers },
  };
}

export default async function run(): Promise<void> {
  const durationMs = benchDurationMs(3000);
  const rounds = 3;
  const concurrency = 32;
  const ref = process.env.BENCH_BASELINE_REF;
  const baselineBuild = ref ? buildRef(ref) : undefined;
  const targets: ChildServer[] = [];
  try {
    const logged = await startTarget("core");
    targets.push(logged);
    const quiet = await startTarget("core", ["--no-log-requests"]);
    targets.push(quiet);
    const old = baselineBuild ? await startTarget("core", [], { BENCH_DIST: baselineBuild.dist }) : undefined;
    if (old) targets.push(old);
    const info = logged.info as unknown as CoreInfo;
    const ours = routes(info);
    const quietStatus = routes(quiet.info as unknown as CoreInfo).status;
    const before = old ? routes(old.info as unknown as CoreInfo) : undefined;
    console.log(`concurrency ${concurrency}, keep-alive, ${rounds} alternating rounds of ${durationMs} ms; best round shown${ref ? `; baseline build: ${ref}` : ""}`);
    const cases: Record<string, BenchCase> = {
      bareHealth: { url: `${info.bareUrl}/health` },
      bareStatus: { url: `${info.bareUrl}/status` },
      headHealth: { url: `${info.bareHeadUrl}/health` },
      ...Object.fromEntries(Object.entries(ours).map(([k, v]) => [k, v])),
      quietStatus,
      ...(before ? Object.fromEntries(Object.entries(before).map(([k, v]) => [`old_${k}`, v])) : {}),
    };
    const best = await bestOfRounds(cases, { rounds, concurrency, durationMs });
    console.log(formatResult("bare node:http  GET /health", best.bareHealth!));
    console.log(formatResult("bare + our head GET /health", best.headHealth!));
    console.log(formatResult("bare node:http  GET /status", best.bareStatus!));
    for (const k of Object.keys(ours)) console.log(formatResult(`openwork-server ${k}`, best[k]!));
    console.log(formatResult("openwork-server status, no req log", best.quietStatus!));
    if (before) for (const k of Object.keys(before)) console.log(formatResult(`baseline build   ${k}`, best[`old_${k}`]!));
    console.log(formatRatio("GET /health vs bare", best.health!, best.bareHealth!, 0.9));
    console.log(formatRatio("GET /status (auth) vs bare", best.status!, best.bareStatus!, 0.8));
    console.log(formatRatio("GET /health vs bare + our head", best.health!, best.headHealth!));
    const cost = 1 - best.status!.rps / best.quietStatus!.rps;
    console.log(`${"request log cost on /status".padEnd(34)} ${(cost * 100).toFixed(1)}%  (target ≤ 5%: ${cost <= 0.05 ? "met" : "NOT met"})`);
    if (before) {
      for (const k of Object.keys(before)) {
        console.log(formatRatio(`${k} vs baseline build`, best[k]!, best[`old_${k}`]!, k === "mcp" || k === "audit" ? 1.5 : 1));
      }
    }
  } finally {
    for (const t of targets) await t.stop();
    baselineBuild?.remove();
  }
}
