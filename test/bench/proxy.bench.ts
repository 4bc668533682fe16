/**
 * OpenCode proxy overhead: GET /opencode/config through our server versus GET /config directly
 * against the same upstream (a bare node:http stand-in for OpenCode), measured in the same run.
 * Upstream and proxy each run in their own child process, as OpenCode and openwork-server do.
 * Our own GET /status on the same server is shown as context (the server's floor without a hop).
 */
import { bestOfRounds, benchDurationMs, formatRatio, formatResult, startTarget } from "./lib.ts";

export default async function run(): Promise<void> {
  const upstream = await startTarget("proxy-upstream");
  const upstreamUrl = (upstream.info as { url: string }).url;
  const proxy = await startTarget("proxy", [upstreamUrl]);
  const { url, token } = proxy.info as { url: string; token: string };
  const durationMs = benchDurationMs(2000);
  const rounds = 3;
  const concurrency = 16;
  try {
    console.log(`concurrency ${concurrency}, keep-alive, ${rounds} alternating rounds of ${durationMs} ms; best round shown`);
    const { direct, proxied, ownStatus } = await bestOfRounds(
      {
        direct: { url: `${upstreamUrl}/config` },
        proxied: { url: `${url}/opencode/config`, headers: { authorization: `Bearer ${token}` } },
        // Context: the same server answering a route of its own (no upstream hop).
        ownStatus: { url: `${url}/status`, headers: { authorization: `Bearer ${token}` } },
      },
      { rounds, concurrency, durationMs },
    );
    console.log(formatResult("direct   GET /config", direct));
    console.log(formatResult("proxied  GET /opencode/config", proxied));
    console.log(formatResult("ours     GET /status (no upstream)", ownStatus));
    console.log(formatRatio("proxy / direct", proxied, direct));
    console.log(formatRatio("proxy / our own /status", proxied, ownStatus));
    console.log(`${"added p50 latency".padEnd(34)} ${(proxied.p50Ms - direct.p50Ms).toFixed(2)} ms`);
  } finally {
    await proxy.stop();
    await upstream.stop();
  }
}
