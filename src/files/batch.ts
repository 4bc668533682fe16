/**
 * read-batch and write-batch of file sessions.
 *
 * write-batch validates everything and checks preconditions before asking for approval, then
 * re-checks them under the per-path lock right before each write, so two writers holding the same
 * ifMatchRevision cannot both win. Results come back in request order.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { plan } from "../types.ts";
import type { AuditInput, Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { handleFile, normalizeRelPath, openRegularForRead, verifyDirUnchanged } from "../fs/paths.ts";
import type { OpenedFile, PathResolver, ResolvedPath } from "../fs/paths.ts";
import { commitTempFile, stageFile, unlinkQuiet, withPathLock, withPathLocks } from "../fs/atomic.ts";
import { mtimeMsOf, revisionOf, statBig } from "../fs/revision.ts";
import { base64DecodedLength, batchArray, checkViewerMayRead, holdsConfigSecrets, decodeStrictBase64, fsError, itemError, mapLimit, realRel, riskFor, sha256Hex, workspaceResolver } from "./common.ts";
import type { ItemError, PlanOrReply } from "./common.ts";

// ---------------------------------------------------------------------------------------------
// read-batch

export type ReadItem =
  | { ok: true; path: string; kind: "file"; bytes: number; updatedAt: number; revision: string; contentBase64: string }
  | ItemError;

/** Reads 1..64 files. A malformed path fails the request (400 invalid_path); other failures are per item. */
export async function readBatch(server: ServerContext, ws: Workspace, body: Record<string, unknown>, options: { viewer: boolean }): Promise<{ items: ReadItem[] }> {
  const paths = batchArray(body.paths, "paths", LIMITS.batchItems);
  const rels = paths.map((p) => normalizeRelPath(p));
  const resolver = await workspaceResolver(server, ws);
  const items = await mapLimit(rels, LIMITS.batchItems, (rel) => readOne(resolver, rel, options.viewer));
  return { items };
}

async function readOne(resolver: PathResolver, rel: string, viewer: boolean): Promise<ReadItem> {
  try {
    // The fast path opens only symlink-free paths, so its `rel` is already the real one.
    let opened = await resolver.openForReadFast(rel);
    if (opened) {
      if (viewer && holdsConfigSecrets(opened.rel)) {
        await opened.file.close().catch(() => {});
        checkViewerMayRead(viewer, opened.rel);
      }
    } else {
      const r = await resolver.resolveNormalized(rel);
      if (r.missing > 0) throw new ApiError("file_not_found", "File not found");
      checkViewerMayRead(viewer, realRel(r));
      const { fh, stat } = await openRegularForRead(r.real);
      opened = { rel: r.rel, file: handleFile(fh, stat) };
    }
    const { file } = opened;
    try {
      const size = Number(file.stat.size);
      if (size > LIMITS.sessionFileBytes) {
        throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size });
      }
      const data = await readKnownSize(file, size);
      return {
        ok: true,
        path: opened.rel,
        kind: "file",
        bytes: data.length,
        updatedAt: mtimeMsOf(file.stat),
        revision: revisionOf(file.stat),
        contentBase64: data.toString("base64"),
      };
    } finally {
      await file.close().catch(() => {});
    }
  } catch (err) {
    return itemError(err, { path: rel });
  }
}

/** Reads `size` bytes (the size from our fstat, so the revision matches the bytes) — one read for small files. */
async function readKnownSize(file: OpenedFile, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = await file.read(buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return off === size ? buf : buf.subarray(0, off);
}

// ---------------------------------------------------------------------------------------------
// write-batch

interface WriteRequest {
  index: number;
  rel: string;
  contentBase64: unknown;
  ifMatchRevision: unknown;
  ifNoneMatch: unknown;
  force: unknown;
}

interface PreparedWrite {
  index: number;
  rel: string;
  data: Buffer;
  sha256: string;
  ifMatchRevision?: string;
  ifNoneMatch: boolean;
  force: boolean;
  resolved: ResolvedPath;
  op: "create" | "overwrite";
}

export type WriteItem =
  | { ok: true; path: string; bytes: number; updatedAt: number; revision: string; previousRevision: string | null }
  | ItemError;

/** Validates the item fields (strict base64, types) and decodes the content. */
function validateWrite(w: WriteRequest): { data: Buffer; ifMatchRevision?: string; ifNoneMatch: boolean; force: boolean } {
  if (typeof w.contentBase64 !== "string") throw new ApiError("invalid_payload", "contentBase64 must be a base64 string");
  if (w.ifMatchRevision !== undefined && typeof w.ifMatchRevision !== "string") {
    throw new ApiError("invalid_payload", "ifMatchRevision must be a string");
  }
  if (w.ifNoneMatch !== undefined && w.ifNoneMatch !== "*") throw new ApiError("invalid_payload", 'ifNoneMatch must be "*"');
  if (w.force !== undefined && typeof w.force !== "boolean") throw new ApiError("invalid_payload", "force must be a boolean");
  // Size is judged before decoding so a huge string is never turned into a buffer.
  if (w.contentBase64.length % 4 === 0 && base64DecodedLength(w.contentBase64) > LIMITS.sessionFileBytes) {
    throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size: base64DecodedLength(w.contentBase64) });
  }
  const data = decodeStrictBase64(w.contentBase64);
  if (!data) throw new ApiError("invalid_payload", "contentBase64 is not valid base64");
  const out: { data: Buffer; ifMatchRevision?: string; ifNoneMatch: boolean; force: boolean } = {
    data,
    ifNoneMatch: w.ifNoneMatch === "*",
    force: w.force === true,
  };
  if (typeof w.ifMatchRevision === "string") out.ifMatchRevision = w.ifMatchRevision;
  return out;
}

/**
 * Checks the preconditions against the current state of the target; returns the previous
 * revision (null when missing). Throws 409 conflict (with expected/current revisions) or
 * 409 not_a_file for a directory.
 */
export async function checkWritePreconditions(
  real: string,
  pre: { ifMatchRevision?: string; ifNoneMatch?: boolean; force?: boolean; baseUpdatedAt?: number },
): Promise<{ previousRevision: string | null }> {
  let st;
  try {
    st = await statBig(real);
  } catch (err) {
    throw fsError(err);
  }
  const current = st ? revisionOf(st) : null;
  if (st && !st.isFile()) throw new ApiError("not_a_file", "Path is not a regular file", { currentRevision: current });
  if (pre.ifNoneMatch && st) {
    throw new ApiError("conflict", "File already exists", { expectedRevision: null, currentRevision: current });
  }
  // The app's stale-save check: the mtime it loaded (integer ms; sub-ms digits of a reference-style float ignored).
  if (pre.baseUpdatedAt !== undefined && st && !pre.force && Math.floor(pre.baseUpdatedAt) !== mtimeMsOf(st)) {
    throw new ApiError("conflict", "File changed since it was loaded", { baseUpdatedAt: pre.baseUpdatedAt, currentUpdatedAt: mtimeMsOf(st), currentRevision: current });
  }
  if (pre.ifMatchRevision !== undefined && !pre.force && pre.ifMatchRevision !== current) {
    throw new ApiError("conflict", "File changed since the expected revision", {
      expectedRevision: pre.ifMatchRevision,
      currentRevision: current,
    });
  }
  return { previousRevision: current };
}

/**
 * Writes `data` to the resolved target: parents created, temp file in the verified directory,
 * fsync, re-verification of the directory, rename. Returns the new revision and mtime.
 */
export async function writeResolved(r: ResolvedPath, data: Buffer): Promise<{ revision: string; updatedAt: number }> {
  const dir = path.dirname(r.real);
  try {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" || code === "ENOTDIR") throw new ApiError("conflict", "A parent of the path is a file, not a folder");
      throw err;
    }
    await verifyDirUnchanged(dir, r.rootReal);
    const tmp = await stageFile(r.real, data);
    try {
      // A directory swapped for a symlink after the check would redirect the rename: re-verify first.
      await verifyDirUnchanged(dir, r.rootReal);
    } catch (err) {
      await unlinkQuiet(tmp);
      throw err;
    }
    await commitTempFile(tmp, r.real);
    try {
      await verifyDirUnchanged(dir, r.rootReal);
    } catch (err) {
      // The folder was swapped for a symlink during the rename (Node has no renameat with a held
      // directory fd): the file may have landed outside, so take it back out and fail the write.
      await unlinkQuiet(r.real);
      throw err;
    }
    const st = await statBig(r.real, false);
    if (!st) throw new ApiError("conflict", "File vanished right after the write");
    return { revision: revisionOf(st), updatedAt: mtimeMsOf(st) };
  } catch (err) {
    throw fsError(err);
  }
}

function writeSummary(count: number, rels: string[]): string {
  return count === 1 ? `Write ${rels[0]}` : `Write ${count} files`;
}

/**
 * Validates a write-batch and returns either the final answer (nothing to write: every item
 * failed) or a WritePlan for the approval gate.
 */
export async function planWriteBatch(
  server: ServerContext,
  ws: Workspace,
  body: Record<string, unknown>,
): Promise<PlanOrReply> {
  const raw = batchArray(body.writes, "writes", LIMITS.batchItems);
  if (body.atomic !== undefined && typeof body.atomic !== "boolean") throw new ApiError("invalid_payload", "atomic must be a boolean");
  const atomic = body.atomic === true;
  const requests: WriteRequest[] = raw.map((w, index) => {
    if (!w || typeof w !== "object" || Array.isArray(w)) throw new ApiError("invalid_payload", "Each write must be an object");
    const o = w as Record<string, unknown>;
    return { index, rel: normalizeRelPath(o.path), contentBase64: o.contentBase64, ifMatchRevision: o.ifMatchRevision, ifNoneMatch: o.ifNoneMatch, force: o.force };
  });
  // The same path twice in one batch has no well-defined result (J14).
  const seen = new Set<string>();
  for (const r of requests) {
    if (seen.has(r.rel)) throw new ApiError("invalid_payload", "The same path appears twice in the batch", { path: r.rel });
    seen.add(r.rel);
  }
  const resolver = await workspaceResolver(server, ws);
  const results: (WriteItem | undefined)[] = new Array(requests.length);
  const prepared: PreparedWrite[] = [];
  for (const w of requests) {
    try {
      const v = validateWrite(w);
      const resolved = await resolver.resolveNormalized(w.rel, { create: true });
      const { previousRevision } = await checkWritePreconditions(resolved.real, v);
      prepared.push({ index: w.index, rel: resolved.rel, sha256: sha256Hex(v.data), resolved, op: previousRevision === null ? "create" : "overwrite", ...v });
    } catch (err) {
      results[w.index] = itemError(err, { path: w.rel });
    }
  }
  const failures = results.filter((r): r is ItemError => r !== undefined && !r.ok);
  if (atomic && failures.length > 0) {
    throw new ApiError("conflict", "Batch not applied: some items failed", { items: indexFailures(results) });
  }
  if (prepared.length === 0) {
    return { reply: { status: 200, body: { items: results, cursor: server.catalogs.cursor(ws.id) } } };
  }
  const rels = prepared.map((p) => p.rel);
  // Judged on where the bytes really land too: `plug/x.js` through `plug -> .opencode/plugins` runs code.
  const risk = riskFor([...rels, ...prepared.map((p) => realRel(p.resolved))]);
  const writePlan = plan({
    workspaceId: ws.id,
    action: "workspace.files.session.write",
    summary: writeSummary(prepared.length, rels),
    paths: prepared.map((p) => p.resolved.abs),
    target: rels[0]!,
    change: {
      atomic,
      writes: prepared.map((p) => ({ path: p.rel, ...(realRel(p.resolved) !== p.rel ? { resolvesTo: realRel(p.resolved) } : {}), bytes: p.data.length, sha256: p.sha256, op: p.op })),
    },
    ...(risk ? { risk } : {}),
    apply: () => applyWrites(server, ws, resolver, prepared, results, atomic),
  });
  return { plan: writePlan };
}

function indexFailures(results: (WriteItem | undefined)[]): unknown[] {
  const out: unknown[] = [];
  results.forEach((r, index) => {
    if (r && !r.ok) out.push({ index, ...r });
  });
  return out;
}

async function applyWrites(
  server: ServerContext,
  ws: Workspace,
  resolver: PathResolver,
  prepared: PreparedWrite[],
  results: (WriteItem | undefined)[],
  atomic: boolean,
): Promise<{ status?: number; body: unknown; audit: AuditInput[] }> {
  const catalogs = server.catalogs;
  // Indexed by request position: parallel writes finish in any order, audit and events keep request order.
  const audit: (AuditInput | undefined)[] = [];
  const applied: (string | undefined)[] = [];
  const record = (p: PreparedWrite, out: { revision: string; updatedAt: number }, previousRevision: string | null) => {
    results[p.index] = { ok: true, path: p.rel, bytes: p.data.length, updatedAt: out.updatedAt, revision: out.revision, previousRevision };
    audit[p.index] = { action: "workspace.files.session.write", target: p.rel, summary: `${p.op === "create" ? "Created" : "Wrote"} ${p.rel} (${p.data.length} bytes)` };
    applied[p.index] = p.rel;
  };

  if (atomic) {
    let midway: ApiError | undefined;
    // All-or-nothing: every target is locked, every precondition re-checked, then every write lands.
    await withPathLocks(prepared.map((p) => p.resolved.real), async () => {
      const fresh: { p: PreparedWrite; r: ResolvedPath; prev: string | null }[] = [];
      const failed: (WriteItem | undefined)[] = [...results];
      for (const p of prepared) {
        try {
          const r = await resolver.resolveNormalized(p.rel, { create: true });
          const { previousRevision } = await checkWritePreconditions(r.real, p);
          fresh.push({ p, r, prev: previousRevision });
        } catch (err) {
          failed[p.index] = itemError(err, { path: p.rel });
        }
      }
      if (fresh.length !== prepared.length) {
        throw new ApiError("conflict", "Batch not applied: some items failed", { items: indexFailures(failed) });
      }
      for (const f of fresh) {
        try {
          const out = await writeResolved(f.r, f.p.data);
          record(f.p, out, f.prev);
        } catch (err) {
          // An I/O error after earlier renames: those files changed, so they must still be audited (below).
          midway = fsError(err);
          results[f.p.index] = itemError(midway, { path: f.p.rel });
          if (applied.length === 0) throw midway;
          break;
        }
      }
    });
    if (midway) {
      const stopped = midway;
      const relAt = new Map(prepared.map((p) => [p.index, p.rel]));
      const items = results.map((r, index) => ({ index, ...(r ?? { ok: false, path: relAt.get(index), code: stopped.code, message: "Not written: the batch stopped at an earlier item" }) }));
      return {
        status: midway.status,
        body: { code: midway.code, message: `${midway.message} (batch failed midway; items with ok:true were written)`, details: { items } },
        audit: audit.filter((a): a is AuditInput => a !== undefined),
      };
    }
  } else {
    await mapLimit(prepared, 8, async (p) => {
      try {
        await withPathLock(p.resolved.real, async () => {
          // Re-resolve and re-check under the lock: the state may have changed while the host was deciding.
          const r = await resolver.resolveNormalized(p.rel, { create: true });
          const { previousRevision } = await checkWritePreconditions(r.real, p);
          const out = await writeResolved(r, p.data);
          record(p, out, previousRevision);
        });
      } catch (err) {
        results[p.index] = itemError(fsError(err), { path: p.rel });
      }
    });
  }
  // The cursor is read after the server recorded this write's events (the body is lazy).
  return { body: async () => ({ items: results, cursor: catalogs.cursor(ws.id) }), audit: audit.filter((a): a is AuditInput => a !== undefined) };
}
