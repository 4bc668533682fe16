/**
 * File sessions: short-lived handles through which one token mirrors a workspace.
 *
 * A session belongs to the sha256 of the token that created it; per-token and global caps answer
 * 429 and never evict anybody's session. Sessions expire lazily (on lookup) and by a periodic
 * sweep; they end at once when their token is revoked or their workspace removed.
 * The registry emits "workspace-idle" (workspaceId) when the last session of a workspace ends,
 * so the catalog can drop that workspace's index.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { SCOPE_RANK } from "../types.ts";
import type { Actor, Workspace } from "../types.ts";
import type { ServerContext } from "../context.ts";

export interface FileSession {
  id: string;
  workspaceId: string;
  /** sha256 hex of the owning token. */
  tokenHash: string;
  createdAt: number;
  expiresAt: number;
  ttlMs: number;
  canWrite: boolean;
}

/** The public shape of a session (never the token hash). */
export interface FileSessionView {
  id: string;
  workspaceId: string;
  createdAt: number;
  expiresAt: number;
  ttlMs: number;
  canWrite: boolean;
}

export function sessionView(s: FileSession): FileSessionView {
  return { id: s.id, workspaceId: s.workspaceId, createdAt: s.createdAt, expiresAt: s.expiresAt, ttlMs: s.ttlMs, canWrite: s.canWrite };
}

/** Validates and clamps `ttlSeconds` to [30 s, 24 h]; absent → 900 s. Non-numbers → 400 invalid_payload. */
export function ttlFromSeconds(value: unknown): number {
  if (value === undefined || value === null) return LIMITS.sessionTtlDefaultMs;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new ApiError("invalid_payload", "ttlSeconds must be a number");
  }
  const ms = Math.round(value * 1000);
  return Math.min(LIMITS.sessionTtlMaxMs, Math.max(LIMITS.sessionTtlMinMs, ms));
}

type EndReason = "closed" | "expired" | "revoked" | "workspace-removed" | "shutdown";

export interface SessionRegistryEvents {
  "session-ended": [session: FileSession, reason: EndReason];
  "workspace-idle": [workspaceId: string];
}

/** The per-server session registry (get it with getFileSessions). */
export class FileSessions extends EventEmitter<SessionRegistryEvents> {
  private readonly sessions = new Map<string, FileSession>();
  private readonly sweep: NodeJS.Timeout;
  private readonly onRevoked: (tokenHash: string) => void;
  private readonly onWorkspaceRemoved: (workspaceId: string) => void;

  constructor(private readonly server: Pick<ServerContext, "bus" | "config">, private readonly now: () => number = Date.now) {
    super();
    this.onRevoked = (tokenHash) => this.endWhere((s) => s.tokenHash === tokenHash, "revoked");
    this.onWorkspaceRemoved = (workspaceId) => this.endWhere((s) => s.workspaceId === workspaceId, "workspace-removed");
    server.bus.on("token.revoked", this.onRevoked);
    server.bus.on("workspace.removed", this.onWorkspaceRemoved);
    // Expired sessions are also ended lazily; the sweep only makes "workspace-idle" timely.
    this.sweep = setInterval(() => this.purgeExpired(), 5_000);
    this.sweep.unref();
  }

  /** Creates a session for `actor` on `ws`. 429 too_many_sessions when a cap is reached. */
  create(ws: Workspace, actor: Actor, input: { ttlSeconds?: unknown; write?: unknown }): FileSession {
    const ttlMs = ttlFromSeconds(input.ttlSeconds);
    if (input.write !== undefined && typeof input.write !== "boolean") {
      throw new ApiError("invalid_payload", "write must be a boolean");
    }
    this.purgeExpired();
    let mine = 0;
    for (const s of this.sessions.values()) if (s.tokenHash === actor.tokenHash) mine++;
    // Caps refuse the newcomer; evicting would let one client kill another's mirror.
    if (mine >= LIMITS.sessionsPerToken) {
      throw new ApiError("too_many_sessions", "Too many file sessions for this token", { limit: LIMITS.sessionsPerToken });
    }
    if (this.sessions.size >= LIMITS.sessionsTotal) {
      throw new ApiError("too_many_sessions", "Too many file sessions", { limit: LIMITS.sessionsTotal });
    }
    const now = this.now();
    // A viewer or a read-only server silently gets a read session (as the reference does).
    const canWrite = input.write !== false && SCOPE_RANK[actor.scope] >= SCOPE_RANK.collaborator && !this.server.config.readOnly;
    const session: FileSession = {
      id: randomUUID(),
      workspaceId: ws.id,
      tokenHash: actor.tokenHash,
      createdAt: now,
      expiresAt: now + ttlMs,
      ttlMs,
      canWrite,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /**
   * The live session `id` owned by `actor`: 404 file_session_not_found when unknown or expired,
   * 403 forbidden when it belongs to another token.
   */
  require(id: string, actor: Actor | null): FileSession {
    const s = this.sessions.get(id);
    if (!s) throw new ApiError("file_session_not_found", "File session not found");
    if (s.expiresAt <= this.now()) {
      this.end(s, "expired");
      throw new ApiError("file_session_not_found", "File session not found");
    }
    if (!actor || actor.tokenHash !== s.tokenHash) {
      throw new ApiError("forbidden", "File session does not belong to this token");
    }
    return s;
  }

  /** New expiry = now + TTL. */
  renew(id: string, actor: Actor | null, ttlSeconds: unknown): FileSession {
    const ttlMs = ttlFromSeconds(ttlSeconds);
    const s = this.require(id, actor);
    s.ttlMs = ttlMs;
    s.expiresAt = this.now() + ttlMs;
    return s;
  }

  /** Ends the session (owner only). */
  close(id: string, actor: Actor | null): void;
  /** Service close: ends every session. */
  close(): void;
  close(id?: string, actor?: Actor | null): void {
    if (id === undefined) {
      clearInterval(this.sweep);
      this.server.bus.off("token.revoked", this.onRevoked);
      this.server.bus.off("workspace.removed", this.onWorkspaceRemoved);
      this.endWhere(() => true, "shutdown");
      return;
    }
    this.end(this.require(id, actor ?? null), "closed");
  }

  /** Live sessions of a workspace. */
  countForWorkspace(workspaceId: string): number {
    const now = this.now();
    let n = 0;
    for (const s of this.sessions.values()) if (s.workspaceId === workspaceId && s.expiresAt > now) n++;
    return n;
  }

  /** Live sessions in all (for status and tests). */
  get size(): number {
    return this.sessions.size;
  }

  /** Ends every expired session. */
  purgeExpired(): void {
    const now = this.now();
    this.endWhere((s) => s.expiresAt <= now, "expired");
  }

  private endWhere(pred: (s: FileSession) => boolean, reason: EndReason): void {
    for (const s of [...this.sessions.values()]) if (pred(s)) this.end(s, reason);
  }

  private end(s: FileSession, reason: EndReason): void {
    if (!this.sessions.delete(s.id)) return;
    this.emit("session-ended", s, reason);
    let left = false;
    for (const o of this.sessions.values()) {
      if (o.workspaceId === s.workspaceId) {
        left = true;
        break;
      }
    }
    if (!left) this.emit("workspace-idle", s.workspaceId);
  }
}

/**
 * For routes keyed by `:sessionId`: the caller's live session, or 404 file_session_not_found /
 * 403 forbidden "File session does not belong to this token". Also proves the workspace still
 * exists and is authorized.
 */
export function requireSession(server: ServerContext, sessionId: string, actor: Actor | null, mount?: Workspace): FileSession {
  const s = server.sessions.require(sessionId, actor);
  // Under a mounted base URL the session must belong to that workspace (unknown and foreign sessions keep their codes above).
  if (mount && mount.id !== s.workspaceId) throw new ApiError("file_session_not_found", "File session not found");
  server.workspaces.resolve(s.workspaceId);
  return s;
}

/** requireSession plus the write permission of the session (403 forbidden otherwise). */
export function requireWritableSession(server: ServerContext, sessionId: string, actor: Actor | null, mount?: Workspace): FileSession {
  const s = requireSession(server, sessionId, actor, mount);
  if (!s.canWrite) throw new ApiError("forbidden", "File session is read-only");
  return s;
}
