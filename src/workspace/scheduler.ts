/**
 * Scheduled jobs of the opencode-scheduler plugin: job files in the host user's home
 * (`~/.config/opencode/jobs/<slug>.json`, `~/.config/opencode/scheduler/scopes/<scope>/jobs/<slug>.json`)
 * and their systemd user timers (Linux) or launchd agents (macOS). Written by the plugin; we list
 * a workspace's jobs and delete them (unloading their units through the service manager).
 */
import { readRegularFile } from "../fs/regular-file.ts";
import { execFile } from "node:child_process";
import { lstat, readdir, realpath, rm } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { isPlainObject } from "../formats/jsonc.ts";
import { LIMITS } from "../limits.ts";
import { plan, type Workspace, type WritePlan } from "../types.ts";
import type { ServerConfig } from "../context.ts";
import { globalOpencodeDir } from "./opencode-config.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";

/** A job as loaded (every field of the file passed through, plus where it came from). */
export interface Job {
  job: Record<string, unknown> & { slug: string; name: string; schedule: string; scopeId?: string };
  file: string;
}

// Slugs and scope ids become file and unit names: a conservative alphabet, never "." or "..".
const SAFE = /^[A-Za-z0-9._-]+$/;
const safe = (s: unknown): s is string => typeof s === "string" && SAFE.test(s) && s !== "." && s !== "..";

function supported(): "linux" | "darwin" {
  if (process.platform !== "linux" && process.platform !== "darwin") throw new ApiError("scheduler_unsupported", "Scheduled jobs are supported on macOS and Linux only");
  return process.platform;
}

async function jsonFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && e.name.endsWith(".json")).map((e) => path.join(dir, e.name));
}

async function loadJob(file: string, scopeFromFolder?: string): Promise<Job | undefined> {
  try {
    const data: unknown = parseJsonBounded(await readRegularFile(file), LIMITS.storedJsonMaxDepth);
    if (!isPlainObject(data) || typeof data.name !== "string" || typeof data.schedule !== "string" || !safe(data.slug)) return undefined;
    const scopeId = data.scopeId ?? scopeFromFolder;
    if (scopeId !== undefined && !safe(scopeId)) return undefined;
    return { job: { ...data, slug: data.slug, name: data.name, schedule: data.schedule, ...(scopeId !== undefined ? { scopeId } : {}) }, file };
  } catch {
    return undefined; // unparsable or vanished: skipped silently
  }
}

/** Scoped jobs, then legacy ones, of the workspace (by `workdir`, also by real path), sorted by lower-cased name. */
export async function listJobs(config: ServerConfig, ws: Workspace): Promise<Job[]> {
  supported();
  const base = globalOpencodeDir(config.homeDir);
  const scopesDir = path.join(base, "scheduler", "scopes");
  const jobs: Job[] = [];
  for (const scope of (await readdir(scopesDir, { withFileTypes: true }).catch(() => [])).filter((d) => d.isDirectory())) {
    for (const f of await jsonFiles(path.join(scopesDir, scope.name, "jobs"))) jobs.push(...[await loadJob(f, scope.name)].filter((j): j is Job => j !== undefined));
  }
  for (const f of await jsonFiles(path.join(base, "jobs"))) jobs.push(...[await loadJob(f)].filter((j): j is Job => j !== undefined));
  const wsReal = await realpath(ws.path).catch(() => ws.path);
  const mine: Job[] = [];
  for (const j of jobs) {
    if (typeof j.job.workdir !== "string" || j.job.workdir.trim() === "") continue;
    const dir = path.resolve(j.job.workdir.replace(/[\\/]+$/, "") || "/");
    if (dir === ws.path || (await realpath(dir).catch(() => dir)) === wsReal) mine.push(j);
  }
  return mine.sort((a, b) => a.job.name.toLowerCase().localeCompare(b.job.name.toLowerCase()));
}

const slugify = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");

/**
 * The job a name means, by ordered passes (the first pass with a hit wins; the app sends the exact
 * slug): slug, slugified name, slug ending with it, name, and last a name that contains it — where
 * more than one hit is 409 job_ambiguous rather than a guess.
 */
export function findJob(jobs: Job[], raw: string): Job {
  const name = raw.trim();
  if (name === "") throw new ApiError("job_name_required", "Job name is required");
  const s = slugify(name);
  const lower = name.toLowerCase();
  const passes: ((j: Job) => boolean)[] = [
    (j) => j.job.slug === name,
    (j) => s !== "" && j.job.slug === s,
    (j) => s !== "" && j.job.slug.endsWith(`-${s}`),
    (j) => j.job.name.toLowerCase() === lower,
  ];
  for (const pass of passes) {
    const hit = jobs.find(pass);
    if (hit) return hit;
  }
  const contains = jobs.filter((j) => j.job.name.toLowerCase().includes(lower));
  if (contains.length > 1) throw new ApiError("job_ambiguous", `More than one job matches ${JSON.stringify(name)}`, { candidates: contains.map((j) => j.job.slug) });
  if (contains.length === 1) return contains[0]!;
  throw new ApiError("job_not_found", `Job not found: ${name}`);
}

/** Files of the job's units: systemd user units on Linux, launchd agents on macOS (whether they exist or not). */
function unitFiles(config: ServerConfig, platform: "linux" | "darwin", j: Job): { timers: string[]; files: string[] } {
  const { slug, scopeId } = j.job;
  if (platform === "linux") {
    const names = [...(scopeId ? [`opencode-job-${scopeId}-${slug}`] : []), `opencode-job-${slug}`];
    const dir = path.join(config.homeDir, ".config", "systemd", "user");
    return { timers: names.map((n) => `${n}.timer`), files: names.flatMap((n) => [`${n}.service`, `${n}.timer`].map((f) => path.join(dir, f))) };
  }
  const dir = path.join(config.homeDir, "Library", "LaunchAgents");
  return { timers: [], files: [...(scopeId ? [`com.opencode.job.${scopeId}.${slug}.plist`] : []), `com.opencode.job.${slug}.plist`].map((f) => path.join(dir, f)) };
}

/** Runs a service-manager command: argument array (never a shell), 10 s timeout, failure and a missing binary ignored. */
function run(config: ServerConfig, cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: LIMITS.schedulerCommandTimeoutMs, env: { ...process.env, ...(config.searchPath ? { PATH: config.searchPath } : {}) } }, () => resolve());
  });
}

const exists = (p: string) => lstat(p).then(() => true, () => false);

/** Deletes a job: its units unloaded and removed, then its file (and a legacy/scoped duplicate). */
export async function planJobDelete(config: ServerConfig, ws: Workspace, rawName: string): Promise<WritePlan> {
  const platform = supported();
  const j = findJob(await listJobs(config, ws), rawName);
  const { slug, scopeId } = j.job;
  const base = globalOpencodeDir(config.homeDir);
  const jobFiles = [...new Set([j.file, path.join(base, "jobs", `${slug}.json`), ...(scopeId ? [path.join(base, "scheduler", "scopes", scopeId, "jobs", `${slug}.json`)] : [])])];
  const units = unitFiles(config, platform, j);
  return plan({
    workspaceId: ws.id,
    action: "scheduler.delete",
    summary: `Delete scheduled job ${j.job.name}`,
    paths: [j.file, ...units.files],
    change: { slug, name: j.job.name, schedule: j.job.schedule, ...(scopeId ? { scopeId } : {}), units: units.files.map((f) => path.basename(f)) },
    risk: [],
    target: j.file,
    apply: async () => {
      if (platform === "linux") {
        for (const timer of units.timers) {
          await run(config, "systemctl", ["--user", "stop", timer]);
          await run(config, "systemctl", ["--user", "disable", timer]);
        }
        for (const f of units.files) if (await exists(f)) await rm(f, { force: true });
        await run(config, "systemctl", ["--user", "daemon-reload"]);
      } else {
        for (const f of units.files) {
          if (!(await exists(f))) continue;
          await run(config, "launchctl", ["unload", f]);
          await rm(f, { force: true });
        }
      }
      for (const f of jobFiles) await rm(f, { force: true });
      return { body: { job: j.job } };
    },
  });
}
