/**
 * Shared pieces of the workspace configuration routes: the per-workspace state (watchers, cache,
 * events), cached loaders, and the post-write hook.
 */
import { sendJsonText as sendJsonTextReply } from "../http/reply.ts";
import { HANDLED, type Handled, type RouteContext } from "../http/route.ts";
import type { Workspace } from "../types.ts";
import { applyEdits, readWorkspaceConfig, realInside, relPosix, type FileEdit, type WorkspaceConfigFiles } from "../workspace/opencode-config.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { resolveInside } from "../fs/paths.ts";
import { scanProjectSkills, type SkillScan } from "../workspace/skills.ts";
import { listCommands, workspaceCommandsDir, type CommandRecord } from "../workspace/commands.ts";
import { pluginFiles, projectPluginsDir } from "../workspace/plugins.ts";
import { authorizedRootFor, workspaceConfigService, type ReloadReason, type ReloadTrigger, type WorkspaceState } from "../workspace/reload-events.ts";
import type { CacheKind } from "../workspace/cache.ts";

/** RouteDef options shared by the workspace configuration routes: reads, and collaborator writes. */
export const W = { auth: "client", workspace: true } as const;
export const WRITE = { auth: "client", workspace: true, write: true, scope: "collaborator" } as const;

export function ws(rc: RouteContext): Workspace {
  return rc.workspace!;
}

export function isViewer(rc: RouteContext): boolean {
  return rc.actor?.scope === "viewer";
}

export function wsState(rc: RouteContext): Promise<WorkspaceState> {
  return workspaceConfigService(rc.server).state(ws(rc));
}

export async function loadConfig(rc: RouteContext): Promise<WorkspaceConfigFiles> {
  const s = await wsState(rc);
  return s.cache.get("config", () => readWorkspaceConfig(ws(rc).path));
}

/** Project skills and their list answer (serialized once per cache generation). */
export interface CachedSkills {
  scan: SkillScan;
  body: Record<string, unknown>;
  json: Buffer;
}

export async function loadSkills(rc: RouteContext): Promise<CachedSkills> {
  const s = await wsState(rc);
  const w = ws(rc);
  return s.cache.get("skills", async () => {
    const scan = await scanProjectSkills(w.path, authorizedRootFor(w, rc.server.config.authorizedRoots), rc.server.config.homeDir);
    const body: Record<string, unknown> = { items: scan.records.map((r) => r.item) };
    if (scan.skipped.length > 0) body.skipped = scan.skipped;
    return { scan, body, json: Buffer.from(JSON.stringify(body)) };
  });
}

/** Workspace commands and their list answer (serialized once per cache generation). */
export interface CachedCommands {
  records: CommandRecord[];
  body: Record<string, unknown>;
  json: Buffer;
}

export async function loadCommands(rc: RouteContext): Promise<CachedCommands> {
  const s = await wsState(rc);
  return s.cache.get("commands", async () => {
    const dir = workspaceCommandsDir(ws(rc).path);
    // A commands folder that a symlink places outside the workspace is not read.
    const records = (await realInside(ws(rc).path, dir)) === false ? [] : await listCommands(dir, "workspace");
    const body = { items: records.map((r) => r.item) };
    return { records, body, json: Buffer.from(JSON.stringify(body)) };
  });
}

export async function loadPluginFiles(rc: RouteContext): Promise<string[]> {
  const s = await wsState(rc);
  return s.cache.get("plugins", async () => {
    const dir = projectPluginsDir(ws(rc).path);
    return (await realInside(ws(rc).path, dir)) === false ? [] : pluginFiles(dir);
  });
}

/**
 * Answers 200 with JSON text serialized earlier (cached lists: no JSON.stringify per request).
 * The same bytes json() would send; CORS headers were already set by the server.
 */
export function sendJsonText(rc: RouteContext, text: string | Buffer): Handled {
  sendJsonTextReply(rc.res, 200, text);
  return HANDLED;
}

/** Workspace-relative "/"-separated path. */
export function relPath(rc: RouteContext, abs: string): string {
  return relPosix(ws(rc).path, abs);
}

/**
 * Runs an applied write: the paths are first marked as the server's own (so the watcher's echo
 * is not reported again), then `write` runs, then the caches are dropped at once (not when the
 * watcher notices) and, on success, the reload events are recorded, once.
 */
export async function commitWrite<T>(
  rc: RouteContext,
  o: { kinds: CacheKind[]; events: { reason: ReloadReason; trigger: ReloadTrigger }[]; paths: string[] },
  write: () => Promise<T>,
): Promise<T> {
  const s = await wsState(rc);
  s.expectWrites(o.paths.map((p) => relPath(rc, p)));
  let ok = false;
  try {
    const out = await write();
    ok = true;
    return out;
  } finally {
    // Even a failed (rolled back) write may have touched files: never serve a stale cache.
    s.afterWrite(o.kinds, ok ? o.events : [], []);
  }
}

/**
 * Real-path containment of every edit target, checked before the plan is returned: a target that a
 * symlink places outside the workspace fails with 403 before any approval is asked (I5).
 */
export async function checkEditTargets(root: string, edits: FileEdit[]): Promise<void> {
  for (const e of edits) await resolveInside(root, relPosix(root, e.path), { create: true });
}

/** Applies `edits` to files inside `root` under their path locks, as one `commitWrite`. */
export function commitEdits(
  rc: RouteContext,
  root: string,
  edits: FileEdit[],
  o: { kinds: CacheKind[]; events: { reason: ReloadReason; trigger: ReloadTrigger }[] },
): Promise<void> {
  const paths = edits.map((e) => e.path);
  return commitWrite(rc, { ...o, paths }, () => withPathLocks(paths, () => applyEdits(root, edits)));
}
