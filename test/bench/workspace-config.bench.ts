/**
 * Workspace configuration lists served from the in-memory cache: GET …/skills (200 skills),
 * …/config (30-key opencode.jsonc) and …/commands (50 commands), each as a ratio to GET /health
 * of the same server, measured in the same run (alternating rounds, best round of each).
 * Target: each ≥ 0.5× /health.
 */
import { fileURLToPath } from "node:url";
import { benchDurationMs, formatRatio, formatResult, loadTest, startChildServer, type LoadTestResult } from "./lib.ts";

export default async function run(): Promise<void> {
  const target = await startChildServer(fileURLToPath(new URL("./targets/workspace-config.ts", import.meta.url)));
  const { url, token, workspaceId } = target.info as { url: string; token: string; workspaceId: string };
  const durationMs = benchDurationMs(1500);
  const rounds = 3;
  const concurrency = 16;
  const auth = { authorization: `Bearer ${token}` };
  try {
    console.log(`200 skills, 50 commands, 30-key opencode.jsonc; concurrency ${concurrency}, ${rounds} alternating rounds of ${durationMs} ms; best round shown`);
    const cases = {
      health: { url: `${url}/health`, headers: {} },
      skills: { url: `${url}/workspace/${workspaceId}/skills`, headers: auth },
      config: { url: `${url}/workspace/${workspaceId}/config`, headers: auth },
      commands: { url: `${url}/workspace/${workspaceId}/commands`, headers: auth },
    } as const;
    type Name = keyof typeof cases;
    const best = new Map<Name, LoadTestResult>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, c] of Object.entries(cases) as [Name, (typeof cases)[Name]][]) {
        const r = await loadTest({ url: c.url, headers: c.headers, concurrency, durationMs, warmupMs: 300 });
        if (r.errors > 0) throw new Error(`${name}: ${r.errors} failed requests`);
        const prev = best.get(name);
        if (!prev || r.rps > prev.rps) best.set(name, r);
      }
    }
    const get = (k: Name) => best.get(k)!;
    console.log(formatResult("GET /health", get("health")));
    console.log(formatResult("GET …/skills (200)", get("skills")));
    console.log(formatResult("GET …/config (30 keys)", get("config")));
    console.log(formatResult("GET …/commands (50)", get("commands")));
    console.log(formatRatio("GET …/skills", get("skills"), get("health"), 0.5));
    console.log(formatRatio("GET …/config", get("config"), get("health"), 0.5));
    console.log(formatRatio("GET …/commands", get("commands"), get("health"), 0.5));
  } finally {
    await target.stop();
  }
}
