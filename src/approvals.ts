/**
 * The approval gate: every workspace write waits here until the host allows or denies it,
 * the timeout passes, or the requesting client goes away. Approvals are bounded per
 * workspace and pushed to subscribers (SSE) as they are requested and resolved.
 */
import { randomUUID } from "node:crypto";
import { ApiError } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import type { ApprovalGate, ApprovalResult, PendingApproval } from "./context.ts";
import type { Actor, WritePlan } from "./types.ts";

type GateEvent =
  | { type: "approval.requested"; item: PendingApproval }
  | { type: "approval.resolved"; id: string; result: ApprovalResult };

interface Waiter {
  item: PendingApproval;
  settle(result: ApprovalResult, reason?: string): void;
}

export class Approvals implements ApprovalGate {
  private readonly pending = new Map<string, Waiter>();
  private readonly listeners = new Set<(event: GateEvent) => void>();

  constructor(private readonly settings: { mode: "manual" | "auto"; timeoutMs: number }) {}

  request(plan: WritePlan, actor: Actor, signal: AbortSignal): Promise<{ id: string; result: ApprovalResult; reason?: string }> {
    const id = randomUUID();
    if (this.settings.mode === "auto") return Promise.resolve({ id, result: "allowed" });
    if (signal.aborted) return Promise.resolve({ id, result: "cancelled", reason: "cancelled" });
    const sameWorkspace = [...this.pending.values()].filter((w) => w.item.workspaceId === plan.workspaceId).length;
    if (sameWorkspace >= LIMITS.pendingApprovalsPerWorkspace) {
      throw new ApiError("too_many_pending_approvals", "Too many writes are waiting for approval", {
        max: LIMITS.pendingApprovalsPerWorkspace,
      });
    }
    const createdAt = Date.now();
    const item: PendingApproval = {
      id,
      workspaceId: plan.workspaceId,
      action: plan.action,
      summary: plan.summary,
      paths: plan.paths,
      createdAt,
      expiresAt: createdAt + this.settings.timeoutMs,
      actor,
      change: plan.change,
      risk: plan.risk ?? [],
    };
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle("timeout", "timeout"), this.settings.timeoutMs);
      const onAbort = () => settle("cancelled", "cancelled");
      const settle = (result: ApprovalResult, reason?: string) => {
        if (!this.pending.delete(id)) return;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.emit({ type: "approval.resolved", id, result });
        resolve(reason === undefined ? { id, result } : { id, result, reason });
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, { item, settle });
      this.emit({ type: "approval.requested", item });
    });
  }

  list(): PendingApproval[] {
    return [...this.pending.values()].map((w) => w.item);
  }

  /** Anything other than an explicit allow denies. Returns false for unknown/resolved ids. */
  reply(id: string, allow: boolean): boolean {
    const waiter = this.pending.get(id);
    if (!waiter) return false;
    waiter.settle(allow ? "allowed" : "denied", allow ? undefined : "denied");
    return true;
  }

  denyAll(reason: string): void {
    for (const waiter of [...this.pending.values()]) waiter.settle("denied", reason);
  }

  /** Denies the waiting writes of one token (revocation: its writes must not land afterwards). */
  denyByToken(tokenHash: string, reason: string): void {
    for (const waiter of [...this.pending.values()]) if (waiter.item.actor.tokenHash === tokenHash) waiter.settle("denied", reason);
  }

  subscribe(listener: (event: GateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: GateEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // one broken subscriber must not stop the gate
      }
    }
  }
}
