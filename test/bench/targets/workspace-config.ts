/**
 * Child process for workspace-config.bench.ts: our server on a temp workspace with 200 skills,
 * 50 commands and a 30-key opencode.jsonc. Prints one JSON line (url, token, workspace id) once
 * the lists were fetched once (watchers attached, cache warm), then serves until SIGTERM.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { workspaceId } from "../../../src/workspaces.ts";
import { benchRoot, reportAndServe, startBenchServer } from "../target.ts";

const { root, workspace } = await benchRoot("ow-bench-wscfg-");
for (let i = 0; i < 200; i++) {
  const name = `skill-${String(i).padStart(3, "0")}`;
  await mkdir(join(workspace, ".opencode/skills", name), { recursive: true });
  await writeFile(
    join(workspace, ".opencode/skills", name, "SKILL.md"),
    `---\nname: ${name}\ndescription: Skill number ${i}, used by the benchmark to measure list performance.\nlicense: MIT\nmetadata:\n  tags: [bench, "n${i}"]\n---\n# ${name}\n\n## When to use\n- When benchmark ${i} runs\n\n${"Body text. ".repeat(40)}\n`,
  );
}
await mkdir(join(workspace, ".opencode/commands"), { recursive: true });
for (let i = 0; i < 50; i++) {
  await writeFile(join(workspace, ".opencode/commands", `cmd-${i}.md`), `---\nname: cmd-${i}\ndescription: Command ${i}\nagent: build\nsubtask: false\n---\n\nRun step ${i} with $ARGUMENTS\n`);
}
const keys: string[] = [];
for (let i = 0; i < 30; i++) keys.push(`  // key ${i}\n  "key${i}": ${i % 3 === 0 ? `{ "nested": [${i}, "v${i}"], "flag": true }` : `"value ${i}"`},`);
await writeFile(join(workspace, "opencode.jsonc"), `{\n${keys.join("\n")}\n}\n`);

const { server, url, token } = await startBenchServer(root, workspace, ["--approval", "auto"]);
const id = workspaceId(workspace);
for (const p of ["skills", "config", "commands"]) {
  const res = await fetch(`${url}/workspace/${id}/${p}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`${p} answered ${res.status}`);
  await res.arrayBuffer();
}
reportAndServe({ url, token, workspaceId: id }, { server, root });
