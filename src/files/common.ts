/** Small helpers shared by the file modules: item errors, strict base64, risk flags, resolvers. */
import { ApiError, apiErrorOf } from "../errors.ts";
import { access } from "node:fs/promises";
import { PathResolver, serverProtectedPaths } from "../fs/paths.ts";
import type { ProtectedPaths, ResolvedPath } from "../fs/paths.ts";
import path from "node:path";
import type { ServerContext } from "../context.ts";
import type { Workspace } from "../types.ts";

/** A failed batch item: `{ok:false, path?, code, message, ...details}`. */
export type ItemError = { ok: false; code: string; message: string; [k: string]: unknown };

/** Turns an error into a per-item failure (ApiError details that are plain objects are spread in). */
export function itemError(err0: unknown, extra: Record<string, unknown> = {}): ItemError {
  // Unexpected fs conditions of one item (EIO, ELOOP, …) fail that item, not the whole batch.
  const err = apiErrorOf(err0);
  const details = err.details && typeof err.details === "object" && !Array.isArray(err.details) ? (err.details as Record<string, unknown>) : {};
  return { ok: false, ...extra, code: err.code, message: err.message, ...details };
}

export { apiErrorOf as fsError } from "../errors.ts";

const B64_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".charCodeAt(i)] = i;

/**
 * Decodes strict RFC 4648 base64 (padding required, no whitespace, no url alphabet, canonical
 * final bits); undefined when invalid. One linear pass over the characters (a regular expression
 * over a multi-megabyte string overflowed the stack), then Node's decoder. Accepts the raw ASCII
 * bytes of a lifted string too.
 */
export function decodeStrictBase64(input: string | Buffer): Buffer | undefined {
  const n = input.length;
  if (n % 4 !== 0) return undefined;
  const at = typeof input === "string" ? (i: number) => input.charCodeAt(i) : (i: number) => input[i]!;
  const pad = n > 0 && at(n - 1) === 0x3d ? (at(n - 2) === 0x3d ? 2 : 1) : 0;
  for (let i = 0; i < n - pad; i++) {
    const c = at(i);
    if (c >= 128 || B64_VALUE[c]! < 0) return undefined;
  }
  // The bits after the last byte must be zero: one spelling per content.
  if (pad === 1 && (B64_VALUE[at(n - 2)]! & 0x03) !== 0) return undefined;
  if (pad === 2 && (B64_VALUE[at(n - 3)]! & 0x0f) !== 0) return undefined;
  return Buffer.from(typeof input === "string" ? input : input.toString("latin1"), "base64");
}

/** Decoded byte length of a strict base64 string or its bytes (before decoding it). */
export function base64DecodedLength(s: string | Buffer): number {
  const last = (back: number) => (typeof s === "string" ? s.charCodeAt(s.length - back) : s[s.length - back]);
  const pad = last(1) === 0x3d ? (last(2) === 0x3d ? 2 : 1) : 0;
  return (s.length / 4) * 3 - pad;
}

export { sha256Hex } from "../auth/hash.ts";

/** "executes-code" for writes that let the agent run code on the host (plugins, opencode config, git hooks). */
export function riskFor(rels: string[]): string[] | undefined {
  const risky = rels.some((rel) => {
    const lower = rel.toLowerCase();
    const base = lower.split("/").pop() ?? "";
    return (
      // OpenCode loads plugins and custom tools from these folders (singular forms are its legacy names).
      /^\.opencode\/(plugins?|tools?)(\/|$)/.test(lower) ||
      base === "opencode.json" ||
      base === "opencode.jsonc" ||
      lower === ".git" ||
      lower.startsWith(".git/") ||
      lower.includes("/.git/")
    );
  });
  return risky ? ["executes-code"] : undefined;
}

/** Root-relative "/"-path of where a resolved path really lands (symlinks followed), for risk flags. */
export function realRel(r: ResolvedPath): string {
  return path.relative(r.rootReal, r.real).split(path.sep).join("/");
}

/**
 * The server's protected paths, computed once per server (two realpath calls); recomputed — at
 * most once a second — while the data dir or the token store does not exist yet, since their real
 * form may still change.
 */
export class ProtectedPathsCache {
  private value: Promise<ProtectedPaths> | undefined;
  private settled = false;
  private at = 0;

  constructor(private readonly config: { dataDir: string; tokenStorePath: string; configPath: string }) {}

  async get(): Promise<ProtectedPaths> {
    if (this.value && (this.settled || Date.now() - this.at < 1_000)) return this.value;
    const value = serverProtectedPaths(this.config);
    this.value = value;
    this.at = Date.now();
    const { dataDir, tokenStorePath, configPath } = this.config;
    const present = await Promise.all([dataDir, tokenStorePath, configPath].map((p) => access(p).then(() => true, () => false)));
    this.settled = present.every(Boolean);
    return value;
  }
}

/** A resolver for a workspace with the server's protected paths. */
export async function workspaceResolver(server: ServerContext, ws: Workspace): Promise<PathResolver> {
  return PathResolver.create(ws.path, await server.protectedPaths(), server.roots);
}


/** Validates a batch array: 1..64 entries (400 invalid_payload). */
export function batchArray(value: unknown, key: string, max: number): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw new ApiError("invalid_payload", `${key} must be a non-empty array`);
  if (value.length > max) throw new ApiError("invalid_payload", `At most ${max} ${key} per request`, { max });
  return value;
}

/** Runs `fn` over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
