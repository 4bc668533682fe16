/**
 * OpenCode proxy overhead: GET /opencode/config through our server versus GET /config directly
 * against the same upstream (a bare node:http stand-in for OpenCode), measured in the same run.
 * Upstream and proxy each run in their own child process, as OpenCode and openwork-server do.
 * Our own GET /status on the same server is shown as context (the server's floor without a hop).
 */
import { fileURLToPath } from "node:url";
import { benchDurationMs, formatRatio, formatResult, loadTest, startChildServer, type LoadTestResult } from "./lib.ts";

export default async function run(): Promise<void> {
  const upstream = await startChildServer(fileURLToPath(new URL("./targets/proxy-upstream.ts", import.meta.url)));
  const upstreamUrl = (upstream.info as { url: string }).url;
  const proxy = await startChildServer(fileURLToPath(new URL("./targets/proxy.ts", import.meta.url)), [upstreamUrl]);
  const { url, token } = proxy.info as { url: string; token: string };
  const durationMs = benchDurationMs(2000);
  const rounds = 3;
  const concurrency = 16;
  try {
    console.log(`concurrency ${concurrency}, keep-alive, ${rounds} alternating rounds of ${durationMs} ms; best round shown`);
    const cases = {
      direct: { url: `${upstreamUrl}/config`, headers: {} },
      proxied: { url: `${url}/opencode/config`, headers: { authorization: `Bearer ${token}` } },
      // Context: the same server answering a route of its own (no upstream hop).
      ownStatus: { url: `${url}/status`, headers: { authorization: `Bearer ${token}` } },
    } as const;
    const best = new Map<keyof typeof cases, LoadTestResult>();
    // Alternating rounds so background load on a shared machine hits both alike.
    for (let round = 0; round < rounds; round++) {
      for (const [name, c] of Object.entries(cases) as [keyof typeof cases, (typeof cases)[keyof typeof cases]][]) {
        const r = await loadTest({ url: c.url, headers: c.headers, concurrency, durationMs, warmupMs: 300 });
        if (r.errors > 0) throw new Error(`${name}: ${r.errors} failed requests`);
        const prev = best.get(name);
        if (!prev || r.rps > prev.rps) best.set(name, r);
      }
    }
    const direct = best.get("direct")!;
    const proxied = best.get("proxied")!;
    console.log(formatResult("direct   GET /config", direct));
    console.log(formatResult("proxied  GET /opencode/config", proxied));
    console.log(formatResult("ours     GET /status (no upstream)", best.get("ownStatus")!));
    console.log(formatRatio("proxy / direct", proxied, direct));
    console.log(formatRatio("proxy / our own /status", proxied, best.get("ownStatus")!));
    console.log(`${"added p50 latency".padEnd(34)} ${(proxied.p50Ms - direct.p50Ms).toFixed(2)} ms`);
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
}
