/**
 * Shared shapes: actors, workspaces, audit entries and write plans.
 * Domain modules import from here, never from http/ or routes/.
 */
import type { ServerResponse } from "node:http";
export type Scope = "viewer" | "collaborator" | "owner";
export const SCOPES: readonly Scope[] = ["viewer", "collaborator", "owner"];
export const SCOPE_RANK: Record<Scope, number> = { viewer: 0, collaborator: 1, owner: 2 };

/** Who is calling. `tokenHash` is the sha256 hex of the presented secret. */
export interface Actor {
  type: "remote" | "host";
  scope: Scope;
  tokenHash: string;
  clientId?: string;
}

export interface Workspace {
  /** "ws_" + first 12 hex chars of sha256(absolute path). */
  id: string;
  name: string;
  /** Absolute, resolved path as configured. */
  path: string;
  workspaceType: "local" | "remote";
  baseUrl?: string;
  directory?: string;
  opencodeUsername?: string;
  opencodePassword?: string;
  /** False when the workspace lies outside every authorized root (its routes answer 403). */
  authorized: boolean;
}

/** One entry of the audit log as given by the writer (id, seq, prev, hash are added by the log). */
export interface AuditInput {
  action: string;
  target: string;
  summary: string;
  /**
   * Write-ahead records of an applied write: "intent" (appended before `apply`, with the paths and
   * what will be written) and "outcome" (after it, naming the intent). Absent: a one-line record
   * (approval outcomes, and every entry written before this existed).
   */
  phase?: "intent" | "outcome";
  /** On an outcome: the id of its intent. */
  intent?: string;
  /** On an outcome: applied, failed (nothing or not all of it landed), interrupted (found at startup). */
  result?: "applied" | "failed" | "interrupted";
  /** On an intent: the paths and the change shown to the host (bounded). */
  paths?: string[];
  change?: unknown;
  /** On a failed outcome: the error code. */
  error?: string;
}

export interface AuditEntry extends AuditInput {
  id: string;
  workspaceId: string;
  actor: Actor | { type: "system" };
  timestamp: number;
  seq?: number;
  prev?: string | null;
  hash?: string;
}

/** What a write produced once applied. */
/**
 * How a mutating route is gated. "approval": the host allows or denies each plan (every workspace
 * data write). "audit": the caller's own action — the host's, or one the spec applies without
 * asking (engine reload, a chat message) — applied at once and audited. "owner-or-approval":
 * approval for collaborators, audited for owner tokens and the host (the engine's own writes).
 */
export type Gate = "approval" | "audit" | "owner-or-approval";

export interface ApplyResult {
  status?: number;
  /** Writes the answer itself (a relayed engine response) instead of `status`/`body` as JSON. */
  send?: (res: ServerResponse) => void;
  /**
   * The answer. A function is called after the server has recorded the write's events and dropped
   * the caches it touched, so an answer read through the cache shows the write.
   */
  body: unknown | (() => Promise<unknown>);
  /** Audit entries for this write; default: one entry built from the plan's action/target/summary. */
  audit?: AuditInput[];
}

/**
 * A write handler does not write: it validates and returns a plan. The server runs
 * approval(plan) (when the route's gate says so) → apply() → events → audit → response, so no
 * write can skip the gate or the log. Events are derived from `paths`, never built by hand.
 */
export interface WritePlan {
  readonly kind: "plan";
  /** Workspace the write belongs to (null for server-level actions such as tokens). */
  workspaceId: string | null;
  action: string;
  summary: string;
  /** Absolute paths that will be written or removed (shown to the host; their changes become events). */
  paths: string[];
  /**
   * The order in which `paths` change, when some change together (both ends of a rename): events
   * are recorded step by step. Default: each path is its own step, in order.
   */
  steps?: string[][];
  /** Exactly what will be written (spec, MCP config, file names with bytes and sha256, …). */
  change: unknown;
  /** E.g. ["executes-code"]. */
  risk?: string[];
  /** Audit target (defaults to the first path or the action). */
  target?: string;
  /** A different gate than the route's, only for routes gated "owner-or-approval" (the engine proxy's audit-only requests). */
  gate?: Gate;
  apply(): Promise<ApplyResult>;
  /** Always called after the plan settles (allowed, denied, failed): drop staged temp files. */
  release?(): Promise<void>;
}

export function plan(p: Omit<WritePlan, "kind">): WritePlan {
  return { kind: "plan", ...p };
}

/** The final answer of a write route when nothing needs writing (no approval is asked then). */
export interface Answer {
  readonly kind: "json";
  status: number;
  body: unknown;
  /** `body` already serialized (cached answers, read-batch); sent as is when present. */
  text?: string | Buffer;
  headers?: Record<string, string>;
}

export function answer(body: unknown, status = 200): Answer {
  return { kind: "json", status, body };
}
