// Route table: scoped tokens (host only). Minting and revoking are the host's own actions
// (gate "audit": nobody else to ask), read-only-gated and audited.
import { ApiError } from "../errors.ts";
import { json, type RouteDef } from "../http/route.ts";
import { LIMITS } from "../limits.ts";
import { SCOPES, plan, type Scope } from "../types.ts";
import type { TokenRecord } from "../context.ts";

/** Public view of a token: never the hash. */
function publicToken(r: TokenRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { id: r.id, scope: r.scope, createdAt: r.createdAt };
  if (r.label !== undefined) out.label = r.label;
  if (r.expiresAt !== undefined) out.expiresAt = r.expiresAt;
  return out;
}


export const routes: RouteDef[] = [
  {
    method: "GET",
    path: "/tokens",
    auth: "host",
    handler: async (rc) => json({ items: rc.server.tokens.list().map(publicToken) }),
  },
  {
    method: "POST",
    path: "/tokens",
    auth: "host",
    gate: "audit",
    handler: async (rc) => {
      const body = await rc.readJson();
      if (typeof body.scope !== "string" || !SCOPES.includes(body.scope as Scope)) {
        throw new ApiError("invalid_scope", "scope must be owner, collaborator or viewer");
      }
      const scope = body.scope as Scope;
      const label = body.label;
      if (label !== undefined && (typeof label !== "string" || label.length > LIMITS.tokenLabelMaxChars)) {
        throw new ApiError("invalid_payload", `label must be a string of at most ${LIMITS.tokenLabelMaxChars} characters`);
      }
      const ttl = body.ttlSeconds;
      if (ttl !== undefined && (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0 || ttl > LIMITS.tokenMaxTtlSeconds)) {
        throw new ApiError("invalid_payload", "ttlSeconds must be a positive number of seconds");
      }
      const summary = `Mint ${scope} token${label ? ` "${label}"` : ""}`;
      return plan({
        workspaceId: null,
        action: "tokens.mint",
        summary,
        paths: [],
        change: { scope, label, ttlSeconds: ttl },
        apply: async () => {
          const input: { scope: Scope; label?: string; ttlSeconds?: number } = { scope };
          if (typeof label === "string") input.label = label;
          if (typeof ttl === "number") input.ttlSeconds = ttl;
          const { record, token } = await rc.server.tokens.mint(input);
          return {
            status: 201,
            body: { ...publicToken(record), token },
            audit: [{ action: "tokens.mint", target: record.id, summary }],
          };
        },
      });
    },
  },
  {
    method: "DELETE",
    path: "/tokens/:id",
    auth: "host",
    gate: "audit",
    handler: async (rc) => {
      const id = rc.params.id!;
      const record = rc.server.tokens.list().find((r) => r.id === id);
      if (!record) throw new ApiError("token_not_found", "Token not found");
      const summary = `Revoke ${record.scope} token${record.label ? ` "${record.label}"` : ""}`;
      return plan({
        workspaceId: null,
        action: "tokens.revoke",
        summary,
        target: id,
        paths: [],
        change: { id, scope: record.scope, label: record.label },
        apply: async () => {
          const revoked = await rc.server.tokens.revoke(id);
          if (!revoked) throw new ApiError("token_not_found", "Token not found");
          // Effective at once: open streams close and file sessions end.
          rc.server.bus.emit("token.revoked", revoked.hash);
          return { body: { ok: true } };
        },
      });
    },
  },
];
