/**
 * The end of a token's life, whether revoked or expired: its open event streams close and its
 * waiting writes are denied at once (file sessions and proxied streams listen to the same
 * "token.revoked" event). Expiry is noticed by a once-a-second sweep, since nothing else happens
 * at the moment a token expires.
 */
import type { ServerContext } from "../context.ts";
import { LIMITS } from "../limits.ts";

/** Wires the lifecycle on a server; returns the function that stops the sweep. */
export function watchTokenLifecycle(server: ServerContext): () => void {
  server.bus.on("token.revoked", (tokenHash: string) => {
    server.streams.closeByToken(tokenHash);
    server.proxy.closeByToken(tokenHash);
    server.approvals.denyByToken(tokenHash, "revoked");
  });
  const expiredNotified = new Set<string>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const r of server.tokens.list()) {
      if (r.expiresAt === undefined || r.expiresAt > now || expiredNotified.has(r.hash)) continue;
      expiredNotified.add(r.hash);
      server.bus.emit("token.revoked", r.hash);
    }
  }, LIMITS.tokenSweepMs);
  sweep.unref();
  return () => clearInterval(sweep);
}
