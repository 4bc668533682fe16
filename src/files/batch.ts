/**
 * read-batch and write-batch of file sessions.
 *
 * write-batch validates everything and checks preconditions before asking for approval, then
 * re-checks them under the per-path lock right before each write, so two writers holding the same
 * ifMatchRevision cannot both win. Results come back in request order.
 */
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { answer, plan, type Answer, type WritePlan } from "../types.ts";
import type { AuditInput, Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";
import { normalizeRelPath } from "../fs/paths.ts";
import type { PathResolver, ResolvedPath } from "../fs/paths.ts";
import type { BigIntStats } from "node:fs";
import { openFileAt, readAll, readSmallFileSync, writeFileAt, type Dir } from "../fs/anchored.ts";
import { withPathLock, withPathLocks } from "../fs/atomic.ts";
import { mtimeMsOf, revisionOf, statBig } from "../fs/revision.ts";
import { checkViewerBytes, checkViewerName } from "./viewer-secrets.ts";
import type { PendingContent } from "./staging.ts";
import { LiftedString } from "../formats/lifted-json.ts";
import { base64DecodedLength, batchArray, decodeStrictBase64, fsError, itemError, mapLimit, realRel, riskFor, workspaceResolver } from "./common.ts";
import type { ItemError } from "./common.ts";

// ---------------------------------------------------------------------------------------------
// read-batch

export type ReadItem =
  | { ok: true; path: string; kind: "file"; bytes: number; updatedAt: number; revision: string; contentBase64: string }
  | ItemError;

/**
 * The read-batch answer as JSON text, written by hand: the base64 strings need no escaping, and
 * JSON.stringify scanning 64 × 4 KiB of them for characters to escape was a tenth of the request.
 */
const PLAIN_RE = /^[A-Za-z0-9._\/ -]*$/;

export async function readBatchText(server: ServerContext, ws: Workspace, body: Record<string, unknown>, options: { viewer: boolean }): Promise<Buffer> {
  const { items } = await readBatch(server, ws, body, options);
  // One buffer for the whole answer: the base64 strings are copied in as they are (no rope to
  // flatten, no UTF-8 pass over 350 KB of ASCII).
  // Revisions are plain ASCII (fs/revision.ts); paths need escaping only when not plain.
  const heads = items.map((i) => (i.ok ? `{"ok":true,"path":${PLAIN_RE.test(i.path) ? `"${i.path}"` : JSON.stringify(i.path)},"kind":"file","bytes":${i.bytes},"updatedAt":${i.updatedAt},"revision":"${i.revision}","contentBase64":"` : JSON.stringify(i)));
  let size = 12 + items.length; // {"items":[ … ]} and the commas
  for (let k = 0; k < items.length; k++) size += Buffer.byteLength(heads[k]!) + (items[k]!.ok ? (items[k] as { contentBase64: string }).contentBase64.length + 2 : 0);
  const out = Buffer.allocUnsafe(size);
  let off = out.write('{"items":[', 0, "latin1");
  items.forEach((item, k) => {
    if (k > 0) off += out.write(",", off, "latin1");
    off += out.write(heads[k]!, off, "utf8");
    if (item.ok) off += out.write(item.contentBase64, off, "latin1") + out.write('"}', off + item.contentBase64.length, "latin1");
  });
  off += out.write("]}", off, "latin1");
  return out.subarray(0, off);
}

/** Reads 1..64 files. A malformed path fails the request (400 invalid_path); other failures are per item. */
export async function readBatch(server: ServerContext, ws: Workspace, body: Record<string, unknown>, options: { viewer: boolean }): Promise<{ items: ReadItem[] }> {
  const paths = batchArray(body.paths, "paths", LIMITS.batchItems);
  const rels = paths.map((p) => normalizeRelPath(p));
  const resolver = await workspaceResolver(server, ws);
  try {
    const items: (ReadItem | undefined)[] = rels.map(() => undefined); // dense: holes would be skipped below
    // Fast path first: plain paths to small files, read synchronously through held folders
    // (each folder opened once per batch).
    const used = new Map<Dir, number[]>();
    const parents = new Map<string, Dir | undefined>();
    let budget = LIMITS.readBatchSyncBytes;
    let scratch: Buffer | undefined;
    for (let i = 0; i < rels.length; i++) {
      const rel = rels[i]!;
      const slash = rel.lastIndexOf("/");
      const parent = slash < 0 ? "" : rel.slice(0, slash);
      let dir = parents.get(parent);
      if (!parents.has(parent)) parents.set(parent, (dir = await resolver.plainDir(parent === "" ? [] : parent.split("/")).catch(() => undefined)));
      if (!dir || budget <= 0) continue;
      try {
        resolver.checkPlain(rel);
        // Read into one reused buffer: the bytes are encoded (readItem) before the next read.
        const read = readSmallFileSync(dir, rel.slice(slash + 1), Math.min(LIMITS.readBatchSyncFileBytes, budget), (scratch ??= Buffer.allocUnsafe(LIMITS.readBatchSyncFileBytes)));
        if (!read) continue;
        budget -= read.data.length;
        checkViewerName(options.viewer, rel);
        checkViewerBytes(options.viewer, read.stat, read.data);
        items[i] = readItem(rel, read.stat, read.data);
        const same = used.get(dir);
        if (same) same.push(i);
        else used.set(dir, [i]);
      } catch (err) {
        items[i] = itemError(err, { path: rel });
      }
    }
    // A folder moved out of the workspace meanwhile: its items go the careful way (and fail there).
    for (const [dir, indexes] of used) {
      if (!(await dir.verify().then(() => true, () => false))) for (const i of indexes) items[i] = undefined;
    }
    // Everything else (links, twins, large files, errors to report) the careful way, in parallel.
    const rest = items.flatMap((item, i) => (item === undefined ? [i] : []));
    await mapLimit(rest, LIMITS.batchItems, async (i) => {
      items[i] = await readOne(resolver, rels[i]!, options.viewer);
    });
    return { items: items as ReadItem[] };
  } finally {
    await resolver.close();
  }
}

function readItem(rel: string, stat: BigIntStats, data: Buffer): ReadItem {
  return { ok: true, path: rel, kind: "file", bytes: data.length, updatedAt: mtimeMsOf(stat), revision: revisionOf(stat), contentBase64: data.toString("base64") };
}

async function readOne(resolver: PathResolver, rel: string, viewer: boolean): Promise<ReadItem> {
  try {
    const r = await resolver.resolveNormalized(rel);
    if (r.missing > 0) throw new ApiError("file_not_found", "File not found");
    checkViewerName(viewer, r.rel, realRel(r));
    const file = await openFileAt(r.dir, r.below[0]!);
    try {
      const size = Number(file.stat.size);
      if (size > LIMITS.sessionFileBytes) {
        throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size });
      }
      const data = await readAll(file, size);
      checkViewerBytes(viewer, file.stat, data);
      return readItem(r.rel, file.stat, data);
    } finally {
      await file.close().catch(() => {});
    }
  } catch (err) {
    return itemError(err, { path: rel });
  }
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
  /** Decoded content, staged on disk when large (files/staging.ts). */
  content: PendingContent;
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
  // Long content arrives as a view of the request body's bytes (write-batch bodies are parsed with lifting).
  const b64 = w.contentBase64 instanceof LiftedString ? w.contentBase64.bytes : w.contentBase64;
  if (typeof b64 !== "string" && !Buffer.isBuffer(b64)) throw new ApiError("invalid_payload", "contentBase64 must be a base64 string");
  if (w.ifMatchRevision !== undefined && typeof w.ifMatchRevision !== "string") {
    throw new ApiError("invalid_payload", "ifMatchRevision must be a string");
  }
  if (w.ifNoneMatch !== undefined && w.ifNoneMatch !== "*") throw new ApiError("invalid_payload", 'ifNoneMatch must be "*"');
  if (w.force !== undefined && typeof w.force !== "boolean") throw new ApiError("invalid_payload", "force must be a boolean");
  // Size is judged before decoding so a huge string is never turned into a buffer.
  if (b64.length % 4 === 0 && base64DecodedLength(b64) > LIMITS.sessionFileBytes) {
    throw new ApiError("file_too_large", "File is too large", { maxBytes: LIMITS.sessionFileBytes, size: base64DecodedLength(b64) });
  }
  const data = decodeStrictBase64(b64);
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
 * Writes `data` to the resolved target through the resolver's held directories: missing parents
 * created one at a time, temp file + fsync + rename (or, for a create, link: a file another program
 * made meanwhile is never overwritten), the bytes that landed checked. Returns the new revision.
 */
export async function writeResolved(resolver: PathResolver, r: ResolvedPath, data: Buffer, o: { createOnly?: boolean } = {}): Promise<{ revision: string; updatedAt: number }> {
  try {
    const { dir, name } = await resolver.parentFor(r);
    const { stat } = await writeFileAt(dir, name, data, { createOnly: o.createOnly === true });
    return { revision: revisionOf(stat), updatedAt: mtimeMsOf(stat) };
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
export async function planWriteBatch(server: ServerContext, ws: Workspace, body: Record<string, unknown>): Promise<WritePlan | Answer> {
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
  const reals = new Map<string, string>();
  try {
    for (const w of requests) {
      try {
        const { data, ...v } = validateWrite(w);
        w.contentBase64 = undefined; // the string may be large: let it go before the next item is decoded
        const resolved = await resolver.resolveNormalized(w.rel, { create: true });
        const { previousRevision } = await checkWritePreconditions(resolved.real, v);
        prepared.push({ index: w.index, rel: resolved.rel, content: await server.staging.hold(data), resolved, op: previousRevision === null ? "create" : "overwrite", ...v });
      } catch (err) {
        results[w.index] = itemError(err, { path: w.rel });
      }
    }
    // One file named twice through a symlink would let one precondition cover two writes.
    for (const p of prepared) {
      const other = reals.get(p.resolved.real);
      if (other !== undefined) throw new ApiError("invalid_payload", "Two paths of the batch name the same file", { path: p.rel, sameAs: other });
      reals.set(p.resolved.real, p.rel);
    }
    if (atomic && results.some((r) => r !== undefined && !r.ok)) {
      throw new ApiError("conflict", "Batch not applied: some items failed", { items: indexFailures(results) });
    }
  } catch (err) {
    await releaseAll(resolver, prepared);
    throw err;
  }
  if (prepared.length === 0) {
    await resolver.close();
    return answer({ items: results, cursor: server.catalogs.cursor(ws.id) });
  }
  const rels = prepared.map((p) => p.rel);
  // Judged on where the bytes really land too: `plug/x.js` through `plug -> .opencode/plugins` runs code.
  const risk = riskFor([...rels, ...prepared.map((p) => realRel(p.resolved))]);
  return plan({
    workspaceId: ws.id,
    action: "workspace.files.session.write",
    summary: writeSummary(prepared.length, rels),
    paths: prepared.map((p) => p.resolved.abs),
    target: rels[0]!,
    change: {
      atomic,
      writes: prepared.map((p) => ({ path: p.rel, ...(realRel(p.resolved) !== p.rel ? { resolvesTo: realRel(p.resolved) } : {}), bytes: p.content.bytes, sha256: p.content.sha256, op: p.op })),
    },
    ...(risk ? { risk } : {}),
    apply: () => applyWrites(server, ws, resolver, prepared, results, atomic),
    release: () => releaseAll(resolver, prepared),
  });
}

async function releaseAll(resolver: PathResolver, prepared: PreparedWrite[]): Promise<void> {
  await Promise.all(prepared.map((p) => p.content.drop()));
  await resolver.close();
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
    results[p.index] = { ok: true, path: p.rel, bytes: p.content.bytes, updatedAt: out.updatedAt, revision: out.revision, previousRevision };
    audit[p.index] = { action: "workspace.files.session.write", target: p.rel, summary: `${p.op === "create" ? "Created" : "Wrote"} ${p.rel} (${p.content.bytes} bytes)` };
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
          const out = await writeResolved(resolver, f.r, await f.p.content.load(), { createOnly: f.p.op === "create" || f.p.ifNoneMatch });
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
          const out = await writeResolved(resolver, r, await p.content.load(), { createOnly: p.op === "create" || p.ifNoneMatch });
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
