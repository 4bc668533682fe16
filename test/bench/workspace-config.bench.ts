/**
 * Workspace configuration lists served from the in-memory cache: GET …/skills (200 skills),
 * …/config (30-key opencode.jsonc) and …/commands (50 commands), each as a ratio to GET /health
 * of the same server, measured in the same run (alternating rounds, best round of each).
 * Target: each ≥ 0.5× /health.
 */
import { bestOfRounds, benchDurationMs, formatRatio, formatResult, startTarget } from "./lib.ts";

export default async function run(): Promise<void> {
  const target = await startTarget("workspace-config");
  const { url, token, workspaceId } = target.info as { url: string; token: string; workspaceId: string };
  const durationMs = benchDurationMs(1500);
  const rounds = 3;
  const concurrency = 16;
  const auth = { authorization: `Bearer ${token}` };
  try {
    console.log(`200 skills, 50 commands, 30-key opencode.jsonc; concurrency ${concurrency}, ${rounds} alternating rounds of ${durationMs} ms; best round shown`);
    const { health, skills, config, commands } = await bestOfRounds(
      {
        health: { url: `${url}/health` },
        skills: { url: `${url}/workspace/${workspaceId}/skills`, headers: auth },
        config: { url: `${url}/workspace/${workspaceId}/config`, headers: auth },
        commands: { url: `${url}/workspace/${workspaceId}/commands`, headers: auth },
      },
      { rounds, concurrency, durationMs },
    );
    console.log(formatResult("GET /health", health));
    console.log(formatResult("GET …/skills (200)", skills));
    console.log(formatResult("GET …/config (30 keys)", config));
    console.log(formatResult("GET …/commands (50)", commands));
    console.log(formatRatio("GET …/skills", skills, health, 0.5));
    console.log(formatRatio("GET …/config", config, health, 0.5));
    console.log(formatRatio("GET …/commands", commands, health, 0.5));
  } finally {
    await target.stop();
  }
}
