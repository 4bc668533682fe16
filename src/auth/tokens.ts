/**
 * The scoped token store, in the reference's file format so existing stores keep working:
 * `{"schemaVersion":1,"updatedAt":ms,"tokens":[{"id","hash","scope","createdAt","label"?,"expiresAt"?}]}`.
 * Only hashes are stored. Written atomically with mode 0600. A store that exists but cannot be
 * parsed is a startup error — never silently emptied.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { readRegularFile } from "../fs/regular-file.ts";
import { dirname } from "node:path";
import { sha256Hex } from "./hash.ts";
import { writeFileAtomic } from "../fs/atomic.ts";
import { StartupError } from "../startup-error.ts";
import { SCOPES, type Scope } from "../types.ts";
import type { TokenRecord, TokenStore } from "../context.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";
import { LIMITS } from "../limits.ts";

export class FileTokenStore implements TokenStore {
  /** hash → record: lookups hash the presented secret, so no secret is ever compared directly. */
  private readonly byHash = new Map<string, TokenRecord>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, records: TokenRecord[], private readonly now: () => number) {
    for (const r of records) this.byHash.set(r.hash, r);
  }

  static async open(path: string, now: () => number = Date.now): Promise<FileTokenStore> {
    let text: string;
    try {
      text = await readRegularFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new FileTokenStore(path, [], now);
      throw new StartupError(`Token store ${path} cannot be read: ${(err as Error).message}`);
    }
    return new FileTokenStore(path, parseStore(path, text), now);
  }

  list(): TokenRecord[] {
    return [...this.byHash.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Bumped by every change of the set of tokens (cached authentications compare it). */
  revision = 0;

  lookupHash(hash: string): TokenRecord | undefined {
    const record = this.byHash.get(hash);
    if (!record) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt <= this.now()) return undefined;
    return record;
  }

  async mint(input: { scope: Scope; label?: string; ttlSeconds?: number }): Promise<{ record: TokenRecord; token: string }> {
    const token = "owt_" + randomBytes(16).toString("hex");
    const createdAt = this.now();
    const record: TokenRecord = { id: randomUUID(), hash: sha256Hex(token), scope: input.scope, createdAt };
    if (input.label !== undefined) record.label = input.label;
    if (input.ttlSeconds !== undefined) record.expiresAt = createdAt + Math.round(input.ttlSeconds * 1000);
    await this.persist(() => this.byHash.set(record.hash, record), () => this.byHash.delete(record.hash));
    return { record, token };
  }

  async revoke(id: string): Promise<TokenRecord | undefined> {
    const record = [...this.byHash.values()].find((r) => r.id === id);
    if (!record) return undefined;
    await this.persist(() => this.byHash.delete(record.hash), () => this.byHash.set(record.hash, record));
    return record;
  }

  /** Applies a change in memory, writes the store; on a failed write the change is undone. */
  private persist(change: () => void, undo: () => void): Promise<void> {
    const run = async () => {
      change();
      this.revision++;
      try {
        await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
        const body = { schemaVersion: 1, updatedAt: this.now(), tokens: this.list() };
        await writeFileAtomic(this.path, JSON.stringify(body, null, 2) + "\n", { mode: 0o600 });
      } catch (err) {
        undo();
        this.revision++;
        throw err;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function parseStore(path: string, text: string): TokenRecord[] {
  let data: unknown;
  try {
    data = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch (err) {
    throw new StartupError(`Token store ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const tokens = (data as { tokens?: unknown } | null)?.tokens;
  if (data === null || typeof data !== "object" || !Array.isArray(tokens)) {
    throw new StartupError(`Token store ${path} has no "tokens" array`);
  }
  return tokens.map((t, i) => {
    const r = t as Partial<TokenRecord> | null;
    if (
      !r || typeof r !== "object" || typeof r.id !== "string" || typeof r.hash !== "string" ||
      !/^[0-9a-f]{64}$/.test(r.hash) || !SCOPES.includes(r.scope as Scope) || typeof r.createdAt !== "number"
    ) {
      throw new StartupError(`Token store ${path}: entry ${i} is malformed`);
    }
    const record: TokenRecord = { id: r.id, hash: r.hash, scope: r.scope as Scope, createdAt: r.createdAt };
    if (typeof r.label === "string") record.label = r.label;
    if (typeof r.expiresAt === "number") record.expiresAt = r.expiresAt;
    return record;
  });
}
