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

/** Puts a hostile entry of `kind` at `p` (replacing whatever is there); `scratch` is a folder outside. */
async function plant(p: string, kind: string, scratch: string): Promise<void> {
  await mkdir(path.dirname(p), { recursive: true });
  await rm(p, { recursive: true, force: true });
  if (kind === "fifo") execFileSync("mkfifo", [p]);
  else if (kind === "sparse") {
    await writeFile(p, "");
    await truncate(p, 600 * 1024 * 1024);
  } else if (kind === "dir") await mkdir(p);
  else if (kind === "dangling") await symlink(path.join(scratch, "nope"), p);
  else if (kind === "loop") await symlink(p, p);
  else if (kind === "devzero") await symlink("/dev/zero", p);
  else if (kind === "deep") await writeFile(p, '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000));
}

test(`every config place holding a FIFO, a sparse 600 MiB file, a folder, a dangling link, a link loop or a link to /dev/zero: every read route answers within 5 s, never a 5xx; a write beside it works`, { timeout: 600_000 }, async () => {
  const findings: string[] = [];
  for (const place of PLACES) for (const kind of KINDS) {
    const s = await startServer({ approval: "auto" });
    try {
      await plant(path.join(s.workspace, place), kind, s.parent);
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

const HOME_PLACES = [".config/opencode/opencode.json", ".config/opencode/opencode.jsonc", ".config/opencode/skills/foo/SKILL.md", ".config/opencode/skills", ".config/opencode/commands/hi.md", ".config/opencode/commands", ".config/opencode/plugins/p.js", ".config/opencode/plugins", ".config/opencode/jobs/j.json", ".config/opencode/jobs", ".openwork/opencode-router/opencode-router.json", ".claude/skills/bar/SKILL.md", ".agents/skills", ".config/opencode"];
const HOME_KINDS = [...KINDS, "deep"];

test("the same in HOME (global config, skills, commands, plugins, job files, the router's config; plus JSON nested 50,000 deep): every route answers within 5 s, never a 5xx beyond the spec's router codes", { timeout: 600_000 }, async () => {
  const findings: string[] = [];
  for (const place of HOME_PLACES) for (const kind of HOME_KINDS) {
    const s = await startServer({ approval: "auto" });
    const owner = await s.mintToken("owner");
    try {
      await plant(path.join(s.home, place), kind, s.parent);
      const w = `/workspace/${s.workspaceId}`;
      const reads = [`${w}/config`, `${w}/mcp`, `${w}/plugins?includeGlobal=true`, `${w}/skills?includeGlobal=true`, `${w}/skills/foo`, `${w}/commands?scope=global`, `${w}/commands`, `${w}/export`, `${w}/scheduler/jobs`, `${w}/opencode-router/telegram`, `${w}/opencode-router/identities/telegram`, `${w}/opencode-router/bindings`, "/status", "/opencode-router/health"];
      for (const r of reads) {
        const res = await Promise.race([s.request("GET", r, { token: owner }), new Promise<"stuck">((ok) => setTimeout(ok, 5000, "stuck").unref())]);
        if (res === "stuck") { findings.push(`${place} ${kind} ${r}: stuck`); continue; }

        if (res.status >= 500 && !(res.status === 500 && res.json?.code === "opencode_router_config_read_failed") && !(res.status >= 502 && /unreachable/.test(res.json?.code ?? ""))) findings.push(`${place} ${kind} ${r}: ${res.status} ${res.text.slice(0, 120)}`);
      }
      const writes = [["POST", `${w}/opencode-router/telegram-token`, { token: "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi" }], ["POST", `${w}/commands?scope=global`, { name: "zz", template: "t" }], ["PATCH", `${w}/config`, { opencode: { share: "manual" } }]] as const;
      for (const [m, r, json] of writes) {
        const res = await Promise.race([s.request(m, r, { token: owner, json }), new Promise<"stuck">((ok) => setTimeout(ok, 5000, "stuck").unref())]);
        if (res === "stuck") findings.push(`${place} ${kind} ${m} ${r}: stuck`);
        else if (res.status >= 500 && !(res.json?.code === "opencode_router_config_read_failed") && !/unreachable/.test(res.json?.code ?? "")) findings.push(`${place} ${kind} ${m} ${r}: ${res.status} ${res.text.slice(0, 120)}`);
      }
    } finally {
      await Promise.race([s.close(), new Promise((ok) => setTimeout(ok, 5000).unref())]);
    }
  }
  assert.deepEqual(findings, []);
});

test("the workspace folder itself replaced at run time by a file, a FIFO, or removed: files and config routes answer 404/409, never a 5xx", async () => {
  for (const kind of ["file", "fifo", "missing"]) {
    const s = await startServer({ approval: "auto" });
    try {
      const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id as string;
      await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["a.txt"] } }); // the held root is cached
      await rm(s.workspace, { recursive: true, force: true });
      if (kind === "file") await writeFile(s.workspace, "x");
      if (kind === "fifo") execFileSync("mkfifo", [s.workspace]);
      const w = `/workspace/${s.workspaceId}`;
      const calls: Array<[string, string, unknown?]> = [["GET", `${w}/files/content?path=a.txt`], ["POST", `/files/sessions/${sid}/read-batch`, { paths: ["a.txt"] }], ["POST", `/files/sessions/${sid}/write-batch`, { writes: [{ path: "b.txt", contentBase64: "eA==" }] }], ["GET", `/files/sessions/${sid}/catalog/snapshot`], ["GET", `${w}/config`], ["PATCH", `${w}/config`, { opencode: { share: "manual" } }], ["POST", `${w}/skills`, { name: "foo", content: "---\nname: foo\ndescription: d\n---\nx" }], ["GET", `${w}/inbox`], ["GET", `${w}/export`]];
      for (const [method, route, json] of calls) {
        const res = await s.request(method, route, json === undefined ? {} : { json });
        assert.ok(res.status < 500, `${kind}: ${method} ${route} → ${res.status} ${res.text.slice(0, 120)}`);
      }
    } finally {
      await s.close();
    }
  }
});
