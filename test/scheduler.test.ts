// Scheduled jobs: the scheduler plugin's job files in a temp HOME, and a recording `systemctl`
// first on PATH (the real service manager is never touched).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, firstApproval, readAuditLog, type TestServer } from "./helpers/server.ts";

async function jobFile(home: string, rel: string, job: unknown): Promise<string> {
  const file = join(home, ".config/opencode", rel);
  await mkdir(join(file, ".."), { recursive: true });
  await writeFile(file, typeof job === "string" ? job : JSON.stringify(job));
  return file;
}

/** A fake `systemctl` that appends its arguments to a log file. */
async function recordingSystemctl(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const log = join(dir, "calls.log");
  await writeFile(join(dir, "systemctl"), `#!/bin/sh\necho "$@" >> "${log}"\n`);
  await chmod(join(dir, "systemctl"), 0o755);
  return log;
}

async function withJobs(fn: (s: TestServer, log: string) => Promise<void>, approval: "auto" | "manual" = "auto") {
  const bin = await mkdtemp(join(tmpdir(), "ow-bin-"));
  const log = await recordingSystemctl(bin);
  // The server looks service-manager commands up on the PATH it was configured with.
  const s = await startServer({ approval, env: { PATH: `${bin}:${process.env.PATH}` } });
  try {
    await fn(s, log);
  } finally {
    await s.close();
    await rm(bin, { recursive: true, force: true });
  }
}

test("list: scoped then legacy jobs of this workspace only, sorted by name; broken and unsafe files skipped", async () => {
  const s = await startServer({});
  try {
    const ws = s.workspace;
    await jobFile(s.home, "scheduler/scopes/sc1/jobs/nightly.json", { slug: "nightly", name: "Nightly", schedule: "0 3 * * *", workdir: ws + "/", prompt: "p", run: { agent: "x" } });
    await jobFile(s.home, "jobs/alpha.json", { slug: "alpha", name: "alpha", schedule: "* * * * *", workdir: ws });
    await jobFile(s.home, "jobs/other.json", { slug: "other", name: "Other", schedule: "* * * * *", workdir: "/somewhere/else" });
    await jobFile(s.home, "jobs/noworkdir.json", { slug: "noworkdir", name: "N", schedule: "x" });
    await jobFile(s.home, "jobs/bad.json", "{nope");
    await jobFile(s.home, "jobs/unsafe.json", { slug: "../x", name: "U", schedule: "x", workdir: ws });
    await jobFile(s.home, "jobs/noname.json", { slug: "noname", schedule: "x", workdir: ws });
    const res = await s.request("GET", `/workspace/${s.workspaceId}/scheduler/jobs`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.items.map((j: any) => [j.slug, j.scopeId]), [["alpha", undefined], ["nightly", "sc1"]]);
    assert.deepEqual(res.json.items[1].run, { agent: "x" });
    const viewer = await s.mintToken("viewer");
    assert.equal((await s.request("GET", `/w/${s.workspaceId}/workspace/${s.workspaceId}/scheduler/jobs`, { token: viewer })).json.items.length, 2);
  } finally {
    await s.close();
  }
});

test("delete: units stopped, disabled and removed through the service manager, job files removed, audited; answer is the job", async () => {
  await withJobs(async (s, log) => {
    const file = await jobFile(s.home, "scheduler/scopes/sc1/jobs/nightly.json", { slug: "nightly", name: "RC Nightly", schedule: "0 3 * * *", workdir: s.workspace });
    const legacy = await jobFile(s.home, "jobs/nightly.json", { slug: "nightly", name: "RC Nightly", schedule: "0 3 * * *", workdir: s.workspace });
    const units = join(s.home, ".config/systemd/user");
    await mkdir(units, { recursive: true });
    await writeFile(join(units, "opencode-job-sc1-nightly.timer"), "[Timer]\n");
    await writeFile(join(units, "opencode-job-sc1-nightly.service"), "[Service]\n");
    const pending = s.request("DELETE", `/workspace/${s.workspaceId}/scheduler/jobs/${encodeURIComponent("rc nightly")}`);
    const approval = await firstApproval(s);
    assert.equal(approval.action, "scheduler.delete");
    assert.ok(approval.paths.includes(file));
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.job.slug, "nightly");
    assert.equal(res.json.job.scopeId, "sc1");
    for (const f of [file, legacy, join(units, "opencode-job-sc1-nightly.timer"), join(units, "opencode-job-sc1-nightly.service")]) await assert.rejects(stat(f), f);
    const calls = (await readFile(log, "utf8")).trim().split("\n");
    assert.deepEqual(calls, [
      "--user stop opencode-job-sc1-nightly.timer",
      "--user disable opencode-job-sc1-nightly.timer",
      "--user stop opencode-job-nightly.timer",
      "--user disable opencode-job-nightly.timer",
      "--user daemon-reload",
    ]);
    assert.equal((await readAuditLog(s)).at(-1)!.action, "scheduler.delete");
  }, "manual");
});

test("delete refusals: blank name, unknown, ambiguous (409 with candidates), viewer, read-only, denied", async () => {
  await withJobs(async (s) => {
    await jobFile(s.home, "jobs/a.json", { slug: "report-daily", name: "Report daily", schedule: "x", workdir: s.workspace });
    await jobFile(s.home, "jobs/b.json", { slug: "report-weekly", name: "Report weekly", schedule: "x", workdir: s.workspace });
    const del = (n: string, token?: string) => s.request("DELETE", `/workspace/${s.workspaceId}/scheduler/jobs/${encodeURIComponent(n)}`, token ? { token } : {});
    assert.equal((await del(" ")).json.code, "job_name_required");
    assert.equal((await del("nothing")).json.code, "job_not_found");
    const amb = await del("report");
    assert.equal(amb.status, 409);
    assert.equal(amb.json.code, "job_ambiguous");
    assert.deepEqual(amb.json.details.candidates.sort(), ["report-daily", "report-weekly"]);
    assert.equal((await del("report-daily", await s.mintToken("viewer"))).status, 403);
    const denied = del("weekly");
    await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await denied).json.code, "write_denied");
    assert.equal((await stat(join(s.home, ".config/opencode/jobs/b.json"))).isFile(), true);
  }, "manual");
  const ro = await startServer({ readOnly: true });
  try {
    assert.equal((await ro.request("DELETE", `/workspace/${ro.workspaceId}/scheduler/jobs/x`)).json.code, "read_only");
  } finally {
    await ro.close();
  }
});
