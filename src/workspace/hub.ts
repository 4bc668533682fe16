/**
 * The skills hub: a GitHub repository whose `skills/<name>/SKILL.md` folders are installable
 * skills. The server contacts only the two configured base URLs (API and raw content), with a
 * timeout on every request, so tests use a local fake and an offline host gets a clear 502.
 * Listings are cached per owner/repo@ref for five minutes (successful ones only).
 */
import path from "node:path";
import { ApiError } from "../errors.ts";
import { parseFrontmatter } from "../formats/frontmatter.ts";
import { isPlainObject } from "../formats/jsonc.ts";
import { sha256Hex } from "../auth/hash.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { resolveInside } from "../fs/paths.ts";
import { LIMITS } from "../limits.ts";
import { plan, type Workspace, type WritePlan } from "../types.ts";
import type { ServerConfig } from "../context.ts";
import { commitFiles } from "../fs/journal.ts";
import { readTextIfExists, relPosix } from "./opencode-config.ts";
import { checkSkillName, isValidSkillName, localSkillsDir, skillTrigger } from "./skills.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";
import { deadline } from "../deadline.ts";

export interface HubRepo {
  owner: string;
  repo: string;
  ref: string;
}

export interface HubSkill {
  name: string;
  description: string;
  trigger?: string;
  source: { owner: string; repo: string; ref: string; path: string };
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,100}$/;
const REF_RE = /^[A-Za-z0-9._/-]{1,255}$/;

/** owner/repo/ref from a client (missing parts take the configured default); bad ones → 400 invalid_hub_repo. */
export function hubRepo(config: ServerConfig, given: { owner?: unknown; repo?: unknown; ref?: unknown } = {}): HubRepo {
  const pick = (v: unknown, dflt: string) => (typeof v === "string" && v.trim() !== "" ? v.trim() : dflt);
  const r = { owner: pick(given.owner, config.hub.repo.owner), repo: pick(given.repo, config.hub.repo.name), ref: pick(given.ref, config.hub.repo.ref) };
  const okName = (s: string) => NAME_RE.test(s) && s !== "." && s !== "..";
  const okRef = REF_RE.test(r.ref) && r.ref.split("/").every((seg) => seg !== "" && seg !== "." && seg !== "..");
  if (!okName(r.owner) || !okName(r.repo) || !okRef) throw new ApiError("invalid_hub_repo", "owner, repo or ref is not a valid GitHub name");
  return r;
}

/** 404 hub_disabled unless the hub is on. */
export function requireHub(config: ServerConfig): void {
  if (!config.hub.enabled) throw new ApiError("hub_disabled", "The skills hub is disabled on this server");
}

const enc = (r: HubRepo) => ({ owner: encodeURIComponent(r.owner), repo: encodeURIComponent(r.repo), ref: r.ref.split("/").map(encodeURIComponent).join("/") });

/**
 * One GET of the hub, its body read by `read` under the same timeout (a hub that sends its headers
 * and then stalls is unreachable like one that never answers): non-2xx → 502 hub_fetch_failed with
 * status and URL; network failure or timeout → 502 hub_unreachable.
 */
async function hubGet<T>(config: ServerConfig, url: string, kind: "api" | "raw", signal: AbortSignal | undefined, read: (res: Response) => Promise<T>): Promise<T> {
  const headers: Record<string, string> = { "user-agent": "openwork-server", accept: kind === "api" ? "application/vnd.github+json" : "text/plain" };
  // The token raises GitHub's rate limit; it goes to the API base only, never to raw content.
  if (kind === "api" && config.hub.githubToken) headers.authorization = `Bearer ${config.hub.githubToken}`;
  const limit = deadline(LIMITS.hubRequestTimeoutMs, signal);
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: limit.signal });
    } catch (err) {
      throw hubUnreachable(err);
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new ApiError("hub_fetch_failed", `The skills hub answered ${res.status}`, { status: res.status, url });
    }
    return await read(res);
  } finally {
    limit.done();
  }
}

function hubUnreachable(err: unknown): ApiError {
  const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
  return new ApiError("hub_unreachable", "The skills hub cannot be reached", { cause: e.name === "TimeoutError" || e.name === "AbortError" ? "timeout" : (e.cause?.code ?? e.cause?.message ?? e.message ?? "unknown") });
}

/**
 * A hub response body read with a byte cap (a huge file cannot fill our memory). A body that
 * drips past the request's timeout is unreachable like one that never comes (it was a 500).
 */
async function readCappedBytes(res: Response, max: number, tooLarge = () => new ApiError("hub_skill_too_large", "A hub skill file is too large", { maxBytes: max })): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > max) throw tooLarge();
      chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    await res.body?.cancel().catch(() => {});
    throw err instanceof ApiError ? err : hubUnreachable(err);
  }
  return Buffer.concat(chunks);
}

/**
 * A hub API answer (listing, tree) as JSON, or undefined when it is not JSON: read with a byte cap
 * and parsed with bounded nesting — `res.json()` buffered whatever a hub sent.
 */
async function readHubJson(res: Response): Promise<unknown> {
  const max = LIMITS.hubMaxApiBytes;
  const bytes = await readCappedBytes(res, max, () => new ApiError("hub_fetch_failed", `The skills hub answered more than ${max} bytes`, { maxBytes: max }));
  try {
    return parseJsonBounded(bytes.toString("utf8"), LIMITS.storedJsonMaxDepth);
  } catch {
    return undefined;
  }
}

/** Runs `fn` over items, at most `limit` at a time. */
async function each<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

/** The hub catalog with its five-minute cache (per server). */
export class HubCatalog {
  private readonly cache = new Map<string, { at: number; items: HubSkill[] }>();

  constructor(private readonly config: ServerConfig) {}

  async list(repo: HubRepo): Promise<{ items: HubSkill[] }> {
    const key = `${repo.owner}/${repo.repo}@${repo.ref}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < LIMITS.hubCacheMs) return { items: hit.items };
    // The whole listing stays under the app's own 10 s timeout.
    const whole = deadline(LIMITS.hubListingTimeoutMs);
    try {
      return await this.fetchList(repo, key, whole.signal);
    } finally {
      whole.done();
    }
  }

  private async fetchList(repo: HubRepo, key: string, signal: AbortSignal): Promise<{ items: HubSkill[] }> {
    const e = enc(repo);
    const listing = await hubGet(this.config, `${this.config.hub.apiUrl}/repos/${e.owner}/${e.repo}/contents/skills?ref=${encodeURIComponent(repo.ref)}`, "api", signal, readHubJson);
    const names = (Array.isArray(listing) ? listing : []).filter((x) => isPlainObject(x) && x.type === "dir" && isValidSkillName(x.name)).map((x) => (x as { name: string }).name);
    const found = await each(names, LIMITS.hubConcurrency, async (name) => {
      try {
        const md = await hubGet(this.config, `${this.config.hub.rawUrl}/${e.owner}/${e.repo}/${e.ref}/skills/${name}/SKILL.md`, "raw", signal, (res) => readCappedBytes(res, LIMITS.configFileMaxBytes));
        return describe(name, md.toString("utf8"), repo);
      } catch {
        if (signal.aborted) throw new ApiError("hub_unreachable", "The skills hub did not answer in time", { cause: "timeout" });
        return undefined; // one broken skill never fails the list
      }
    });
    const items = found.filter((s): s is HubSkill => s !== undefined).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.cache.set(key, { at: Date.now(), items });
    return { items };
  }
}

function describe(name: string, text: string, repo: HubRepo): HubSkill | undefined {
  let fm;
  try {
    fm = parseFrontmatter(text);
  } catch {
    return undefined;
  }
  if (typeof fm.data.name === "string" && fm.data.name !== name) return undefined;
  const desc = typeof fm.data.description === "string" ? fm.data.description.replace(/\s+/g, " ").trim().slice(0, 1024) : "";
  const item: HubSkill = { name, description: desc, source: { owner: repo.owner, repo: repo.repo, ref: repo.ref, path: `skills/${name}` } };
  const trigger = skillTrigger(fm.data, fm.body);
  if (trigger) item.trigger = trigger;
  return item;
}

interface HubFile {
  rel: string;
  mode: string;
  data: Buffer;
  write: boolean;
}

/**
 * Installs `skills/<name>` of a hub repo into `.opencode/skills/<name>/`. Everything is fetched and
 * checked before the host is asked (the approval shows every file with its size, sha256 and
 * mode); existing files are skipped unless `overwrite`; other files in the folder are left alone.
 */
export async function planHubInstall(config: ServerConfig, ws: Workspace, rawName: unknown, body: Record<string, unknown>, signal: AbortSignal): Promise<WritePlan> {
  const name = checkSkillName(rawName);
  requireHub(config);
  if (body.overwrite !== undefined && typeof body.overwrite !== "boolean") throw new ApiError("invalid_payload", "overwrite must be a boolean");
  if (body.repo !== undefined && !isPlainObject(body.repo)) throw new ApiError("invalid_payload", "repo must be an object");
  const overwrite = body.overwrite === true;
  const repo = hubRepo(config, (body.repo ?? {}) as Record<string, unknown>);
  const e = enc(repo);
  const tree = await hubGet(config, `${config.hub.apiUrl}/repos/${e.owner}/${e.repo}/git/trees/${e.ref}?recursive=1`, "api", signal, readHubJson);
  const prefix = `skills/${name}/`;
  const entries = (isPlainObject(tree) && Array.isArray(tree.tree) ? tree.tree : [])
    .filter((t): t is { path: string; mode?: unknown; type: string } => isPlainObject(t) && t.type === "blob" && typeof t.path === "string" && t.path.startsWith(prefix))
    .map((t) => ({ rel: t.path.slice(prefix.length), mode: typeof t.mode === "string" ? t.mode : "100644" }))
    // No escapes and no symlinks (mode 120000): only plain files land in the workspace.
    .filter((t) => t.rel !== "" && !t.rel.startsWith("/") && !t.rel.split("/").includes("..") && t.mode !== "120000");
  if (entries.length === 0) throw new ApiError("hub_skill_not_found", `Skill ${name} is not in ${repo.owner}/${repo.repo}@${repo.ref}`);
  if (entries.length > LIMITS.hubMaxFiles) throw new ApiError("hub_skill_too_large", `A hub skill may have at most ${LIMITS.hubMaxFiles} files`, { maxFiles: LIMITS.hubMaxFiles });
  if (!entries.some((t) => t.rel === "SKILL.md")) throw new ApiError("hub_install_failed", `The hub's ${prefix} has no SKILL.md`);
  const dir = path.join(localSkillsDir(ws.path), name);
  const dirRel = relPosix(ws.path, dir);
  let total = 0;
  const files: HubFile[] = [];
  for (const t of entries) {
    const data = await hubGet(config, `${config.hub.rawUrl}/${e.owner}/${e.repo}/${e.ref}/${prefix}${t.rel.split("/").map(encodeURIComponent).join("/")}`, "raw", signal, (res) => readCappedBytes(res, LIMITS.sessionFileBytes));
    total += data.length;
    if (total > LIMITS.hubMaxTotalBytes) throw new ApiError("hub_skill_too_large", "The hub skill is too large", { maxBytes: LIMITS.hubMaxTotalBytes });
    // Real-path containment and portable names before anybody is asked.
    await resolveInside(ws.path, `${dirRel}/${t.rel}`, { create: true });
    const exists = (await readTextIfExists(path.join(dir, t.rel)).catch(() => "")) !== undefined;
    files.push({ rel: t.rel, mode: t.mode, data, write: overwrite || !exists });
  }
  const existed = (await readTextIfExists(path.join(dir, "SKILL.md")).catch(() => "")) !== undefined;
  const targets = files.filter((f) => f.write).map((f) => path.join(dir, f.rel));
  return plan({
    workspaceId: ws.id,
    action: "skills.install_hub",
    summary: `Install skill ${name} from ${repo.owner}/${repo.repo}@${repo.ref}`,
    paths: targets.length > 0 ? targets : [dir],
    change: { repo: `${repo.owner}/${repo.repo}`, ref: repo.ref, overwrite, path: dirRel, files: files.map((f) => ({ path: f.rel, bytes: f.data.length, sha256: sha256Hex(f.data), mode: f.mode, action: f.write ? "write" : "skip" })) },
    risk: files.some((f) => f.write && f.mode === "100755") ? ["executes-code"] : [],
    target: dirRel,
    apply: async () => {
      // All files or none, even across a crash; executables get their mode on the staged file.
      await withPathLocks(targets, () =>
        commitFiles(config.dataDir, ws.path, { writes: files.filter((f) => f.write).map((f) => ({ rel: `${dirRel}/${f.rel}`, data: f.data, ...(f.mode === "100755" ? { mode: 0o755 } : {}) })), removals: [] }),
      );
      const written = files.filter((f) => f.write).length;
      // A workspace-rooted path (see skills.ts): the app's "OpenWork" badge, never a host path.
      return { body: { ok: true, name, path: `/${dirRel}`, action: existed ? "updated" : "added", written, skipped: files.length - written } };
    },
  });
}
