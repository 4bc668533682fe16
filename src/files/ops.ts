/**
 * File-session ops: mkdir, delete, rename.
 *
 * Before approval every op is checked statically (known type, paths normalized, contained, not
 * protected, creatable names). Existence-dependent conditions (missing source, existing target,
 * non-empty directory, ifMatchRevision) are checked at apply time, in request order and under the
 * per-path lock, because earlier ops of the same batch change them (mkdir a; rename x → a/x).
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { answer, plan, type Answer, type WritePlan } from "../types.ts";
import type { AuditInput, Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { isInsideOrSame, normalizeRelPath } from "../fs/paths.ts";
import { mkdirAt, removeAt, renameAt } from "../fs/anchored.ts";
import type { PathResolver, ResolvedPath } from "../fs/paths.ts";
import { withPathLock, withPathLocks } from "../fs/atomic.ts";
import { currentRevision } from "../fs/revision.ts";
import { batchArray, fsError, itemError, realRel, riskFor, workspaceResolver } from "./common.ts";
import type { ItemError } from "./common.ts";

type Op =
  | { index: number; type: "mkdir"; path: string }
  | { index: number; type: "delete"; path: string; recursive: boolean; ifMatchRevision?: string }
  | { index: number; type: "rename"; from: string; to: string; overwrite: boolean; ifMatchRevision?: string };

export type OpItem = ({ ok: true; type: string } & Record<string, unknown>) | (ItemError & { type: string });

function optBool(o: Record<string, unknown>, key: string): boolean {
  const v = o[key];
  if (v !== undefined && typeof v !== "boolean") throw new ApiError("invalid_operation", `${key} must be a boolean`);
  return v === true;
}

function optRevision(o: Record<string, unknown>): string | undefined {
  const v = o.ifMatchRevision;
  if (v !== undefined && typeof v !== "string") throw new ApiError("invalid_operation", "ifMatchRevision must be a string");
  return v as string | undefined;
}

/** Parses one op; a malformed path fails the whole request (400 invalid_path), a bad shape fails the item. */
function parseOp(raw: unknown, index: number): Op {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new ApiError("invalid_operation", "Operation must be an object");
  const o = raw as Record<string, unknown>;
  switch (o.type) {
    case "mkdir":
      return { index, type: "mkdir", path: normalizeRelPath(o.path) };
    case "delete": {
      const op: Op = { index, type: "delete", path: normalizeRelPath(o.path), recursive: optBool(o, "recursive") };
      const rev = optRevision(o);
      if (rev !== undefined) op.ifMatchRevision = rev;
      return op;
    }
    case "rename": {
      const op: Op = { index, type: "rename", from: normalizeRelPath(o.from), to: normalizeRelPath(o.to), overwrite: optBool(o, "overwrite") };
      const rev = optRevision(o);
      if (rev !== undefined) op.ifMatchRevision = rev;
      return op;
    }
    default:
      throw new ApiError("invalid_operation", "Unknown operation type");
  }
}

function typeOf(raw: unknown): string {
  const t = raw && typeof raw === "object" ? (raw as Record<string, unknown>).type : undefined;
  return typeof t === "string" ? t : "unknown";
}

/** Validates an ops request; returns the final answer when nothing can run, else a WritePlan. */
export async function planOps(server: ServerContext, ws: Workspace, body: Record<string, unknown>): Promise<WritePlan | Answer> {
  const raw = batchArray(body.operations, "operations", LIMITS.batchItems);
  const resolver = await workspaceResolver(server, ws);
  const results: (OpItem | undefined)[] = new Array(raw.length);
  const ops: Op[] = [];
  const realTargets: string[] = [];
  let repositories = 0;
  for (let i = 0; i < raw.length; i++) {
    let op: Op;
    try {
      op = parseOp(raw[i], i);
    } catch (err) {
      if (err instanceof ApiError && err.code === "invalid_path") throw err;
      results[i] = (itemError(err, { type: typeOf(raw[i]) }) as OpItem);
      continue;
    }
    try {
      if (op.type === "mkdir") realTargets.push(realRel(await resolver.resolveNormalized(op.path, { create: true })));
      else if (op.type === "delete") repositories += await holdsRepository(resolver, await entryOf(resolver, op.path));
      else {
        if (op.to.startsWith(op.from + "/")) {
          throw new ApiError("invalid_operation", "Cannot move a folder into itself");
        }
        repositories += await holdsRepository(resolver, await entryOf(resolver, op.from));
        realTargets.push(realRel(await resolver.resolveNormalized(op.to, { create: true })));
      }
      ops.push(op);
    } catch (err) {
      results[i] = (itemError(err, { type: op.type, ...describe(op) }) as OpItem);
    }
  }
  if (ops.length === 0) {
    await resolver.close();
    return answer({ items: results, cursor: server.catalogs.cursor(ws.id) });
  }
  const touched = ops.flatMap((op) => (op.type === "rename" ? [op.from, op.to] : [op.path]));
  // Where a rename or mkdir really lands counts too (a symlinked folder onto .opencode/plugins).
  const risk = [...(riskFor([...touched, ...realTargets]) ?? []), ...(repositories > 0 ? ["git-repository"] : [])];
  return plan({
    workspaceId: ws.id,
    action: "workspace.files.session.ops",
    summary: ops.length === 1 ? summaryOf(ops[0]!) : `${ops.length} file operations`,
    paths: touched.map((rel) => path.join(ws.path, rel)),
    steps: ops.map((op) => (op.type === "rename" ? [op.from, op.to] : [op.path]).map((rel) => path.join(ws.path, rel))),
    target: touched[0]!,
    change: { operations: ops.map(({ index: _i, ...rest }) => rest) },
    ...(risk.length > 0 ? { risk } : {}),
    apply: () => applyOps(server, ws, resolver, ops, results),
    release: () => resolver.close(),
  });
}

function describe(op: Op): Record<string, unknown> {
  return op.type === "rename" ? { from: op.from, to: op.to } : { path: op.path };
}

function summaryOf(op: Op): string {
  if (op.type === "mkdir") return `Create folder ${op.path}`;
  if (op.type === "delete") return `Delete ${op.path}`;
  return `Rename ${op.from} to ${op.to}`;
}

function checkRevision(expected: string | undefined, current: string | null): void {
  if (expected !== undefined && expected !== current) {
    throw new ApiError("conflict", "Path changed since the expected revision", { expectedRevision: expected, currentRevision: current });
  }
}

async function applyOps(
  server: ServerContext,
  ws: Workspace,
  resolver: PathResolver,
  ops: Op[],
  results: (OpItem | undefined)[],
): Promise<{ body: unknown; audit: AuditInput[] }> {
  const catalogs = server.catalogs;
  const audit: AuditInput[] = [];
  // In request order: later ops may depend on earlier ones.
  for (const op of ops) {
    try {
      if (op.type === "mkdir") {
        const created = await doMkdir(resolver, op.path);
        results[op.index] = { ok: true, type: "mkdir", path: op.path, created: created.length > 0 };
        if (created.length > 0) audit.push({ action: "workspace.files.session.ops", target: op.path, summary: `Created folder ${op.path}` });
      } else if (op.type === "delete") {
        const rel = await doDelete(resolver, op);
        results[op.index] = { ok: true, type: "delete", path: rel };
        audit.push({ action: "workspace.files.session.ops", target: rel, summary: `Deleted ${rel}` });
      } else {
        const r = await doRename(resolver, op);
        results[op.index] = { ok: true, type: "rename", from: r.from, to: r.to, revision: r.revision };
        audit.push({ action: "workspace.files.session.ops", target: r.from, summary: `Renamed ${r.from} to ${r.to}` });
      }
    } catch (err) {
      results[op.index] = (itemError(fsError(err), { type: op.type, ...describe(op) }) as OpItem);
    }
  }
  // The cursor is read after the server recorded this batch's events (the body is lazy).
  return { body: async () => ({ items: results, cursor: catalogs.cursor(ws.id) }), audit };
}

/** Recursive, idempotent mkdir, one held folder at a time. Returns the relative paths of the folders it created (top first). */
async function doMkdir(resolver: PathResolver, rel0: string): Promise<string[]> {
  const first = await resolver.resolveNormalized(rel0, { create: true });
  return withPathLock(first.real, async () => {
    const r = await resolver.resolveNormalized(rel0, { create: true });
    if (r.missing === 0) {
      if (r.lstat?.isDirectory()) return [];
      throw new ApiError("not_a_directory", "A file already exists at this path");
    }
    const { dir, name } = await resolver.parentFor(r);
    await mkdirAt(dir, name).then((d) => d.close());
    const segs = r.rel.split("/");
    const out: string[] = [];
    for (let k = segs.length - r.missing + 1; k <= segs.length; k++) out.push(segs.slice(0, k).join("/"));
    return out;
  });
}

/**
 * The entry a delete or rename acts on: a symlink itself, never its target (S06) — but only when
 * where it leads is inside the root too (a link out of the workspace is refused for every operation).
 */
/**
 * Checks a delete/rename source (403 protected_path) and counts 1 when it is or holds a git
 * repository (a `.git` entry at any depth): deleting or moving one loses history and hooks, so
 * the host sees the risk flag "git-repository". Symlinks are not followed; past the walk's limit
 * the folder is assumed to hold one.
 */
async function holdsRepository(resolver: PathResolver, r: ResolvedPath): Promise<number> {
  resolver.checkHoldsNoProtected(r);
  if (!r.lstat?.isDirectory()) return 0;
  const queue = [r.entry];
  for (let seen = 0; queue.length > 0; seen++) {
    if (seen >= LIMITS.cleanupMaxDirs) return 1;
    const dir = queue.shift()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.name === ".git") return 1;
      if (e.isDirectory()) queue.push(path.join(dir, e.name));
    }
  }
  return 0;
}

async function entryOf(resolver: PathResolver, rel: string, opts: { create?: boolean } = {}) {
  await resolver.resolveNormalized(rel, opts);
  return resolver.resolveNormalized(rel, { ...opts, follow: false });
}

async function doDelete(resolver: PathResolver, op: Extract<Op, { type: "delete" }>): Promise<string> {
  const first = await entryOf(resolver, op.path);
  return withPathLock(first.entry, async () => {
    const r = await entryOf(resolver, op.path);
    resolver.checkHoldsNoProtected(r);
    if (!r.lstat) throw new ApiError("file_not_found", "File not found");
    checkRevision(op.ifMatchRevision, await currentRevision(r.entry, false));
    // Through held folders, never following a symlink at any depth.
    await removeAt(r.dir, r.below[0]!, { recursive: op.recursive });
    return r.rel;
  });
}

async function doRename(resolver: PathResolver, op: Extract<Op, { type: "rename" }>): Promise<{ from: string; to: string; revision: string | null }> {
  const a = await entryOf(resolver, op.from);
  const b = await entryOf(resolver, op.to, { create: true });
  return withPathLocks([a.entry, b.entry], async () => {
    const from = await entryOf(resolver, op.from);
    resolver.checkHoldsNoProtected(from);
    const to = await entryOf(resolver, op.to, { create: true });
    if (!from.lstat) throw new ApiError("file_not_found", "File not found");
    checkRevision(op.ifMatchRevision, await currentRevision(from.entry, false));
    if (from.entry === to.entry) return { from: from.rel, to: to.rel, revision: await currentRevision(to.entry, false) };
    if (from.lstat.isDirectory() && isInsideOrSame(from.entry, to.entry)) {
      throw new ApiError("invalid_operation", "Cannot move a folder into itself");
    }
    if (to.missing === 0 && !op.overwrite) {
      throw new ApiError("conflict", "Target already exists; pass overwrite: true", { currentRevision: await currentRevision(to.entry, false) });
    }
    const target = await resolver.parentFor(to);
    await renameAt(from.dir, from.below[0]!, target.dir, target.name);
    return { from: from.rel, to: to.rel, revision: await currentRevision(to.entry, false) };
  });
}
