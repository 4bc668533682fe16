/**
 * The audit log: one JSON object per line in `<dataDir>/audit/<workspaceId>.jsonl`,
 * hash-chained so that editing, inserting or removing a line is detectable.
 *
 * Chain rule (what `verifyAuditFile` checks and what `append` writes):
 *   - `seq` counts from 1 per file, `prev` is the previous entry's `hash` (null for seq 1);
 *   - `hash` = sha256 hex of the UTF-8 bytes of `canonicalJson(entry without "hash")`, where
 *     canonicalJson is JSON.stringify with every object's keys sorted (JS default string sort,
 *     i.e. by UTF-16 code units), recursively, no whitespace, keys with `undefined` omitted.
 *     Sorting makes the hash independent of the key order of the stored line.
 *   - Lines written by the reference (no seq/prev/hash) are accepted only before the first
 *     chained entry; a chain that follows them starts at seq 1 with prev null.
 *
 * Appends are serialized per workspace and fsync'ed before `append` resolves, so the entry is
 * on disk before the HTTP response is sent. Readers (`tail`, `lastTimestamp`) read only the
 * end of the file, backwards in chunks, and ignore a trailing partial line.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, mkdir, open, readdir, stat, type FileHandle } from "node:fs/promises";
import { basename, join } from "node:path";
import type { AuditLog, Logger } from "./context.ts";
import type { Actor, AuditEntry, AuditInput } from "./types.ts";
import { LIMITS } from "./limits.ts";
import { parseJsonBounded } from "./formats/json-nesting.ts";
import { fsyncDirectory } from "./fs/anchored.ts";
import { revisionSync } from "./fs/revision.ts";

/** Workspace ids become file names: only this alphabet, so no path can be smuggled in. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Canonical JSON used for the hash: sorted keys, recursively, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    const s = JSON.stringify(value);
    return s === undefined ? "null" : s;
  }
  if (Array.isArray(value)) {
    return "[" + value.map((v) => (v === undefined ? "null" : canonicalJson(v))).join(",") + "]";
  }
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    const v = obj[key];
    if (v === undefined || typeof v === "function") continue;
    parts.push(JSON.stringify(key) + ":" + canonicalJson(v));
  }
  return "{" + parts.join(",") + "}";
}

/** sha256 hex of the canonical form of an entry, ignoring its `hash` field. */
export function hashEntry(entry: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = entry;
  return createHash("sha256").update(canonicalJson(rest), "utf8").digest("hex");
}

/** Path of a workspace's audit file; throws on an id that is not a safe file name. */
export function auditFilePath(dataDir: string, workspaceId: string): string {
  if (!SAFE_ID.test(workspaceId)) throw new Error(`Invalid audit workspace id: ${JSON.stringify(workspaceId)}`);
  return join(dataDir, "audit", `${workspaceId}.jsonl`);
}

/** The write-ahead fields of an input, only the known ones (an oversized change is kept as its digest). */
function walFields(input: AuditInput): Partial<AuditInput> {
  const out: Partial<AuditInput> = {};
  if (input.phase) out.phase = input.phase;
  if (input.intent) out.intent = String(input.intent);
  if (input.result) out.result = input.result;
  if (input.error) out.error = String(input.error);
  if (input.paths) out.paths = input.paths.map(String);
  if (input.change !== undefined) {
    const text = JSON.stringify(input.change) ?? "null";
    out.change = text.length <= LIMITS.auditChangeMaxChars ? input.change : { sha256: createHash("sha256").update(text).digest("hex"), chars: text.length };
  }
  return out;
}

/** Only the known actor fields are stored: nothing else (never a secret) can leak into the log. */
function cleanActor(actor: Actor | { type: "system" }): Actor | { type: "system" } {
  if (actor.type === "system") return { type: "system" };
  const a = actor as Actor;
  const out: Actor = { type: a.type, scope: a.scope, tokenHash: a.tokenHash };
  if (typeof a.clientId === "string") out.clientId = a.clientId;
  return out;
}

function isEntry(v: unknown): v is AuditEntry {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Reads complete lines backwards from the end of an open file, in growing chunks, until
 * `want` lines are found or the start is reached. Returns them newest first. A trailing
 * partial line (an append in progress, or a torn write) is skipped. Reads only what it needs.
 */
async function readTailLines(fh: FileHandle, size: number, want: number): Promise<string[]> {
  if (size === 0 || want <= 0) return [];
  const chunks: Buffer[] = [];
  let pos = size;
  let chunkSize = LIMITS.auditTailFirstChunk;
  let newlines = 0;
  while (pos > 0) {
    const len = Math.min(chunkSize, pos);
    pos -= len;
    const buf = Buffer.allocUnsafe(len);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await fh.read(buf, off, len - off, pos + off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    const chunk = buf.subarray(0, off);
    chunks.unshift(chunk);
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) newlines += 1;
    // Complete lines fully read: each "\n" ends one, minus the first one seen (its line may
    // start before `pos`) unless we reached the start of the file.
    const complete = pos === 0 ? newlines : newlines - 1;
    if (complete >= want) break;
    chunkSize = Math.min(chunkSize * 2, LIMITS.auditTailMaxChunk);
  }
  const data = Buffer.concat(chunks);
  const lastNl = data.lastIndexOf(0x0a);
  if (lastNl === -1) return [];
  const parts = data.subarray(0, lastNl).toString("utf8").split("\n");
  if (pos > 0) parts.shift(); // its beginning lies before what we read
  return parts.filter((l) => l.length > 0).reverse().slice(0, want);
}

function parseLines(lines: string[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of lines) {
    try {
      // Bounded: a line another process wrote 50,000 levels deep must not overflow the list's JSON.stringify.
      const v = parseJsonBounded(line, LIMITS.storedJsonMaxDepth);
      if (isEntry(v)) out.push(v);
    } catch {
      // A corrupt line is reported by `audit verify`; readers skip it.
    }
  }
  return out;
}

interface ChainState {
  fh: FileHandle;
  seq: number;
  hash: string | null;
}

/** Creates the audit log of a server. `close()` waits for pending appends and closes files. */
export function createAuditLog(dataDir: string, log: Logger): AuditLog & { close(): Promise<void>; recover(ids?: string[]): Promise<number> } {
  const auditDir = join(dataDir, "audit");
  const states = new Map<string, Promise<ChainState>>();
  const queues = new Map<string, Promise<unknown>>();
  /** Last entry's timestamp per workspace, with the file version it was read at (see lastTimestamp). */
  const lastTs = new Map<string, { version: string; ts: number | null }>();
  let dirReady: Promise<void> | undefined;
  let closed = false;

  function ensureDir(): Promise<void> {
    dirReady ??= (async () => {
      // 0700: audit entries name actors and paths; other local users have no business here.
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      await mkdir(auditDir, { recursive: true, mode: 0o700 });
      await chmod(auditDir, 0o700);
    })();
    dirReady.catch(() => {
      dirReady = undefined;
    });
    return dirReady;
  }

  async function openState(workspaceId: string): Promise<ChainState> {
    await ensureDir();
    const file = auditFilePath(dataDir, workspaceId);
    // 0600 on create, and enforced on existing files too (entries hold token hashes).
    const fh = await open(file, "a+", 0o600);
    try {
      await fh.chmod(0o600);
      const { size } = await fh.stat();
      if (size === 0) {
        // New file: make its directory entry durable.
        await fsyncDirectory(auditDir).catch(() => {});
        return { fh, seq: 0, hash: null };
      }
      // Complete the file with a newline if the last append was torn, so the next entry
      // starts on its own line (`audit verify` names the torn line).
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        log.warn("audit log ends with an incomplete line", { workspaceId });
        await fh.write("\n");
      }
      const [line] = await readTailLines(fh, size + (last[0] !== 0x0a ? 1 : 0), 1);
      if (line === undefined) return { fh, seq: 0, hash: null };
      let entry: Record<string, unknown> | undefined;
      try {
        const v = parseJsonBounded(line, LIMITS.storedJsonMaxDepth);
        if (isEntry(v)) entry = v as unknown as Record<string, unknown>;
      } catch {
        entry = undefined;
      }
      if (!entry) {
        log.warn("audit log's last line is not valid JSON; starting a new chain", { workspaceId });
        return { fh, seq: 0, hash: null };
      }
      if (typeof entry.hash === "string" && typeof entry.seq === "number") {
        return { fh, seq: entry.seq, hash: entry.hash };
      }
      // Reference-format tail (no chain yet): the chain starts here.
      return { fh, seq: 0, hash: null };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  function state(workspaceId: string): Promise<ChainState> {
    let s = states.get(workspaceId);
    if (!s) {
      s = openState(workspaceId);
      states.set(workspaceId, s);
      s.catch(() => states.delete(workspaceId));
    }
    return s;
  }

  /** Runs `fn` after every earlier operation on the same workspace has settled. */
  function serialize<T>(workspaceId: string, fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(workspaceId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.then(
      () => {},
      () => {},
    );
    queues.set(workspaceId, settled);
    void settled.then(() => {
      if (queues.get(workspaceId) === settled) queues.delete(workspaceId);
    });
    return next;
  }

  async function append(workspaceId: string, actor: Actor | { type: "system" }, input: AuditInput): Promise<AuditEntry> {
    if (closed) throw new Error("Audit log is closed");
    auditFilePath(dataDir, workspaceId); // validate before queueing
    return serialize(workspaceId, async () => {
      const st = await state(workspaceId);
      const entry: AuditEntry = {
        id: randomUUID(),
        workspaceId,
        actor: cleanActor(actor),
        action: String(input.action),
        target: String(input.target),
        summary: String(input.summary),
        ...walFields(input),
        timestamp: Date.now(),
        seq: st.seq + 1,
        prev: st.hash,
      };
      entry.hash = hashEntry(entry as unknown as Record<string, unknown>);
      // One write call per line, then fsync: the entry is durable before the response.
      await st.fh.write(JSON.stringify(entry) + "\n");
      await st.fh.sync();
      st.seq = entry.seq!;
      st.hash = entry.hash;
      lastTs.delete(workspaceId);
      return entry;
    });
  }

  async function tail(workspaceId: string, limit: number): Promise<AuditEntry[]> {
    const file = auditFilePath(dataDir, workspaceId);
    const want = Math.max(0, Math.floor(limit));
    if (want === 0) return [];
    let fh: FileHandle;
    try {
      fh = await open(file, "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    try {
      const { size } = await fh.stat();
      const lines = await readTailLines(fh, size, want);
      return parseLines(lines).slice(0, want);
    } finally {
      await fh.close();
    }
  }

  /**
   * Reused while the file's version (one stat) is unchanged: a workspace with no audit file yet
   * re-read its missing tail on every `GET …/config` (a thread-pool round trip each), and an
   * append by another server sharing the data dir is seen too.
   */
  async function lastTimestamp(workspaceId: string): Promise<number | null> {
    const now = version(workspaceId);
    const cached = lastTs.get(workspaceId);
    if (cached !== undefined && cached.version === now) return cached.ts;
    const [entry] = await tail(workspaceId, 1);
    const ts = entry && typeof entry.timestamp === "number" ? entry.timestamp : null;
    lastTs.set(workspaceId, { version: now, ts });
    return ts;
  }

  async function close(): Promise<void> {
    closed = true;
    await Promise.allSettled([...queues.values()]);
    const all = await Promise.allSettled([...states.values()]);
    states.clear();
    for (const r of all) {
      if (r.status === "fulfilled") await r.value.fh.close().catch(() => {});
    }
  }

  /**
   * After a crash: every intent near the end of a log that has no outcome gets an "interrupted"
   * outcome, so an applied write always has its record and an interrupted one is visible.
   */
  /**
   * Closes intents left open by a crash. `ids`: only these logs (the workspaces this server
   * serves): another server sharing the data dir may have a write in progress in its own.
   */
  async function recover(ids?: string[]): Promise<number> {
    let names: string[];
    try {
      names = (await readdir(auditDir)).filter((n) => n.endsWith(".jsonl") && (!ids || ids.includes(n.slice(0, -".jsonl".length))));
    } catch {
      return 0;
    }
    let recovered = 0;
    for (const name of names) {
      const workspaceId = name.slice(0, -".jsonl".length);
      if (!SAFE_ID.test(workspaceId)) continue;
      const recent = await tail(workspaceId, LIMITS.auditRecoverEntries);
      const closed = new Set(recent.filter((e) => e.phase === "outcome" && e.intent).map((e) => e.intent));
      for (const e of recent.reverse()) {
        if (e.phase !== "intent" || closed.has(e.id)) continue;
        await append(workspaceId, { type: "system" }, { action: e.action, target: e.target, summary: e.summary, phase: "outcome", intent: e.id, result: "interrupted" });
        recovered++;
      }
    }
    return recovered;
  }

  function version(workspaceId: string): string {
    return revisionSync(auditFilePath(dataDir, workspaceId));
  }

  return { append, tail, lastTimestamp, version, close, recover };
}

export interface VerifyResult {
  ok: boolean;
  /** Number of entries (lines) checked. */
  entries: number;
  /** Write intents without an outcome (a write that was running when the server stopped, not yet recovered). */
  openIntents: number;
  /** 1-based line number of the first bad line. */
  firstBadLine?: number;
  reason?: string;
}

/**
 * Verifies one audit file: every line is a JSON object, reference-format lines only precede
 * the chain, `seq` increments by one from 1, `prev` links to the previous hash, `hash`
 * matches the canonical hash, and `workspaceId` matches the file name. Streams the file.
 */
export async function verifyAuditFile(path: string): Promise<VerifyResult> {
  const expectedWs = basename(path).endsWith(".jsonl") ? basename(path).slice(0, -".jsonl".length) : undefined;
  await stat(path); // ENOENT surfaces as a thrown error
  let lineNo = 0;
  let entries = 0;
  let chainStarted = false;
  let seq = 0;
  let prevHash: string | null = null;
  let bad: { line: number; reason: string } | undefined;
  const intents = new Set<string>();

  const check = (line: string): void => {
    lineNo += 1;
    if (line.length === 0) {
      bad = { line: lineNo, reason: "empty line" };
      return;
    }
    let v: unknown;
    try {
      v = parseJsonBounded(line, LIMITS.storedJsonMaxDepth);
    } catch {
      bad = { line: lineNo, reason: "not valid JSON" };
      return;
    }
    if (!isEntry(v)) {
      bad = { line: lineNo, reason: "not a JSON object" };
      return;
    }
    const e = v as unknown as Record<string, unknown>;
    entries += 1;
    if (expectedWs !== undefined && e.workspaceId !== expectedWs) {
      bad = { line: lineNo, reason: `workspaceId ${JSON.stringify(e.workspaceId)} does not match the file name` };
      return;
    }
    const chained = "hash" in e || "seq" in e || "prev" in e;
    if (!chained) {
      if (chainStarted) bad = { line: lineNo, reason: "entry without seq/prev/hash inside the hash chain" };
      return;
    }
    if (typeof e.hash !== "string" || typeof e.seq !== "number" || !(e.prev === null || typeof e.prev === "string")) {
      bad = { line: lineNo, reason: "malformed seq/prev/hash fields" };
      return;
    }
    if (e.seq !== seq + 1) {
      bad = { line: lineNo, reason: `seq is ${e.seq}, expected ${seq + 1}` };
      return;
    }
    if (e.prev !== prevHash) {
      bad = { line: lineNo, reason: "prev does not match the previous entry's hash" };
      return;
    }
    if (hashEntry(e) !== e.hash) {
      bad = { line: lineNo, reason: "hash does not match the entry's content" };
      return;
    }
    chainStarted = true;
    seq = e.seq;
    prevHash = e.hash;
    if (e.phase === "intent") intents.add(e.id as string);
    else if (e.phase === "outcome") {
      if (typeof e.intent !== "string" || !intents.delete(e.intent)) {
        bad = { line: lineNo, reason: "outcome without a preceding open intent" };
      }
    }
  };

  const stream = createReadStream(path);
  let pending: Buffer = Buffer.alloc(0);
  try {
    for await (const chunk of stream) {
      const data = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
      let start = 0;
      let nl = data.indexOf(0x0a, start);
      while (nl !== -1 && !bad) {
        check(data.subarray(start, nl).toString("utf8"));
        start = nl + 1;
        nl = data.indexOf(0x0a, start);
      }
      if (bad) break;
      pending = Buffer.from(data.subarray(start));
    }
  } finally {
    stream.destroy();
  }
  if (!bad && pending.length > 0) {
    lineNo += 1;
    bad = { line: lineNo, reason: "incomplete last line (no trailing newline)" };
  }
  if (bad) return { ok: false, entries, openIntents: intents.size, firstBadLine: bad.line, reason: bad.reason };
  return { ok: true, entries, openIntents: intents.size };
}
