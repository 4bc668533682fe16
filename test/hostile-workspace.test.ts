// Hostile local files at every place the server reads by itself (config, skills, commands,
// plugins, Agent Lab, inbox/outbox): a FIFO must not block a thread, a huge sparse file must not
// be read into the heap, links must not be followed out or loop forever.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, rm, symlink, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { startServer } from "./helpers/server.ts";

const PLACES = ["opencode.json", "opencode.jsonc", ".opencode/openwork.json", ".opencode/skills/foo/SKILL.md", ".opencode/skills/foo", ".opencode/skills", ".opencode/commands/hi.md", ".opencode/commands", ".opencode/plugins/p.js", ".opencode/plugins", ".opencode/openwork/agentlab/automations.json", ".opencode/openwork/agentlab/logs/a1.log", ".opencode/openwork/agentlab/logs", ".opencode/openwork/inbox/x.txt", ".opencode/openwork/outbox/x.txt", ".opencode/openwork/inbox", ".opencode/openwork/outbox", "AGENTS.md", ".opencode"];
const KINDS = ["fifo", "sparse", "dir", "dangling", "loop", "devzero"];

test(`every config place holding a FIFO, a sparse 600 MiB file, a folder, a dangling link, a link loop or a link to /dev/zero: every read route answers within 5 s, never a 5xx; a write beside it works`, { timeout: 600_000 }, async () => {
  const findings: string[] = [];
  for (const place of PLACES) for (const kind of KINDS) {
    const s = await startServer({ approval: "auto" });
    try {
      const p = path.join(s.workspace, place);
      await mkdir(path.dirname(p), { recursive: true });
      await rm(p, { recursive: true, force: true });
      if (kind === "fifo") execFileSync("mkfifo", [p]);
      else if (kind === "sparse") { await writeFile(p, ""); await truncate(p, 600 * 1024 * 1024); }
      else if (kind === "dir") await mkdir(p);
      else if (kind === "dangling") await symlink(path.join(s.parent, "nope"), p);
      else if (kind === "loop") await symlink(p, p);
      else if (kind === "devzero") await symlink("/dev/zero", p);
      const w = `/workspace/${s.workspaceId}`;
      const routes = [`${w}/config`, `${w}/mcp`, `${w}/plugins`, `${w}/skills`, `${w}/skills/foo`, `${w}/commands`, `${w}/export`, `${w}/inbox`, `${w}/artifacts`, `${w}/agentlab/automations`, `${w}/agentlab/automations/logs`, `${w}/agentlab/automations/logs/a1`, `${w}/audit`, `/workspaces`, `/status`, `${w}/files/content?path=${encodeURIComponent(place)}`, `${w}/scheduler/jobs`, "/capabilities"];
      for (const r of routes) {
        const res = await Promise.race([s.request("GET", r), new Promise<"stuck">((ok) => setTimeout(ok, 5000, "stuck").unref())]);
        if (res === "stuck") { findings.push(`${place} ${kind} ${r}: no answer in 5 s`); break; }
        if (res.status >= 500) findings.push(`${place} ${kind} ${r}: ${res.status} ${res.text.slice(0, 120)}`);
      }
      // A write beside the hostile entry still works (or is refused cleanly).
      const wr = await Promise.race([s.request("POST", `${w}/skills`, { json: { name: "bar", content: "---\nname: bar\ndescription: d\n---\nx" } }), new Promise<"stuck">((ok) => setTimeout(ok, 5000, "stuck").unref())]);
      if (wr === "stuck") findings.push(`${place} ${kind} skill upsert: stuck`);
      else if (wr.status >= 500) findings.push(`${place} ${kind} skill upsert: ${wr.status} ${wr.text.slice(0, 120)}`);
    } finally {
      await Promise.race([s.close(), new Promise((ok) => setTimeout(ok, 5000).unref())]);
    }
  }
  assert.deepEqual(findings, []);
});
