/**
 * Shared shapes: actors, workspaces, route definitions and write plans.
 * Domain modules import from here, never from http/ or routes/.
 */
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
export interface ApplyResult {
  status?: number;
  body: unknown;
  /** Audit entries for this write; default: one entry built from the plan's action/target/summary. */
  audit?: AuditInput[];
}

/**
 * A write handler does not write: it validates and returns a plan. The router runs
 * approval(plan) → apply() → audit → response, so no write can skip the gate or the log.
 */
export interface WritePlan {
  readonly kind: "plan";
  /** Workspace the write belongs to (null for server-level actions such as tokens). */
  workspaceId: string | null;
  action: string;
  summary: string;
  /** Absolute paths that will be written or removed (shown to the host). */
  paths: string[];
  /** Exactly what will be written (spec, MCP config, file names with bytes and sha256, …). */
  change: unknown;
  /** E.g. ["executes-code"]. */
  risk?: string[];
  /** Audit target (defaults to the first path or the action). */
  target?: string;
  /**
   * Host-side actions (token mint/revoke, workspace delete/activate, engine reload) are taken by
   * the host itself or need no approval by spec; they set approval:false and are still read-only
   * gated and audited. Every workspace data write keeps the default (true).
   */
  approval?: boolean;
  apply(): Promise<ApplyResult>;
  /** Always called after the plan settles (allowed, denied, failed): drop staged temp files. */
  release?(): Promise<void>;
}

export function plan(p: Omit<WritePlan, "kind">): WritePlan {
  return { kind: "plan", ...p };
}
