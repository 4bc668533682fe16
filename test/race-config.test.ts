// Containment of the workspace's own config places against a racing local process: a child
// process swaps a folder (or opencode.json) and a link to the outside in a tight loop while
// clients read commands, skills, the OpenCode config and Agent Lab run logs. No answer may carry
// outside bytes, and none may be a 5xx. Trial counts come from RACE_TRIALS (default 150).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { startSwapper } from "./helpers/swapper.ts";

const TRIALS = Number(process.env.RACE_TRIALS ?? 150);
const MARK = "OUTSIDE-BYTES";

interface Case {
  name: string;
  /** Creates the inside and outside versions; returns the swapped path and the routes to read. */
  setup(s: TestServer, outside: string): Promise<{ target: string; routes: string[] }>;
}

const cases: Case[] = [
  {
    name: "workspace commands (.opencode/commands swapped)",
    async setup(s, outside) {
      const dir = path.join(s.workspace, ".opencode/commands");
      await mkdir(dir, { recursive: true });
      await mkdir(outside);
      await writeFile(path.join(dir, "hello.md"), "---\ndescription: inside\n---\ninside");
      await writeFile(path.join(outside, "hello.md"), `---\ndescription: ${MARK}\n---\n${MARK}`);
      await writeFile(path.join(outside, "notes.md"), `private notes ${MARK}`);
      return { target: dir, routes: [`/workspace/${s.workspaceId}/commands`] };
    },
  },
  {
    name: "a skill folder (.opencode/skills/foo swapped)",
    async setup(s, outside) {
      const dir = path.join(s.workspace, ".opencode/skills/foo");
      await mkdir(dir, { recursive: true });
      await mkdir(outside);
      await writeFile(path.join(dir, "SKILL.md"), "---\nname: foo\ndescription: inside\n---\ninside");
      await writeFile(path.join(outside, "SKILL.md"), `---\nname: foo\ndescription: ${MARK}\n---\n${MARK}`);
      return { target: dir, routes: [`/workspace/${s.workspaceId}/skills/foo`, `/workspace/${s.workspaceId}/skills`] };
    },
  },
  {
    name: "opencode.json (the file swapped for a link to an outside JSON file)",
    async setup(s, outside) {
      const file = path.join(s.workspace, "opencode.json");
      await writeFile(file, JSON.stringify({ share: "manual" }));
      await writeFile(outside, JSON.stringify({ share: MARK, provider: { x: { options: { apiKey: MARK } } } }));
      return { target: file, routes: [`/workspace/${s.workspaceId}/config`, `/workspace/${s.workspaceId}/mcp`, `/workspace/${s.workspaceId}/export`] };
    },
  },
  {
    name: "Agent Lab run logs (.opencode/openwork/agentlab/logs swapped)",
    async setup(s, outside) {
      const dir = path.join(s.workspace, ".opencode/openwork/agentlab/logs");
      await mkdir(dir, { recursive: true });
      await mkdir(outside);
      await writeFile(path.join(dir, "a1.log"), "inside");
      await writeFile(path.join(outside, "a1.log"), MARK);
      await writeFile(path.join(outside, `${MARK}.log`), MARK);
      const base = `/workspace/${s.workspaceId}/agentlab/automations/logs`;
      return { target: dir, routes: [base, `${base}/a1`] };
    },
  },
];

for (const c of cases) {
  test(`racing config places: ${c.name} — ${TRIALS} reads of each route, 0 outside bytes, no 5xx`, async () => {
    const s = await startServer({ approval: "auto" });
    const { target, routes } = await c.setup(s, path.join(s.parent, "outside"));
    const lnk = `${target}-lnk`;
    await symlink(path.join(s.parent, "outside"), lnk);
    const swapper = startSwapper(target, lnk);
    const swapperGone = new Promise((r) => swapper.once("exit", r));
    const statuses = new Map<string, number>();
    let leaks = 0;
    try {
      for (let i = 0; i < TRIALS; i++) {
        for (const route of routes) {
          const r = await s.request("GET", route);
          const key = `${route.slice(route.lastIndexOf("/"))} ${r.status}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          assert.ok(r.status < 500, `${route}: ${r.status} ${r.text}`);
          if (r.text.includes(MARK)) leaks++;
        }
      }
    } finally {
      swapper.kill("SIGKILL");
      await swapperGone;
      await s.close();
    }
    assert.equal(leaks, 0, `answers carrying outside bytes (statuses: ${JSON.stringify([...statuses])})`);
    assert.ok([...statuses.keys()].some((k) => k.endsWith(" 200")), "some reads succeeded while racing");
  });
}
