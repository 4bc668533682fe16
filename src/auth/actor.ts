/**
 * Who is calling: resolves the Bearer token or the host-token header into an Actor.
 * Node keeps the first of duplicate Authorization headers; we never join them.
 */
import type { IncomingMessage } from "node:http";
import { ApiError } from "../errors.ts";
import { digestEquals, sha256 } from "./hash.ts";
import { LIMITS } from "../limits.ts";
import type { ServerContext } from "../context.ts";
import type { Actor } from "../types.ts";

/** `Bearer <token>`: scheme case-insensitive, exactly one space, no whitespace in the token. */
const BEARER = /^bearer ([^\s]+)$/i;

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== "string") return undefined;
  const m = BEARER.exec(header);
  return m ? m[1] : undefined;
}

function clientId(req: IncomingMessage): string | undefined {
  const raw = req.headers["x-openwork-client-id"];
  if (typeof raw !== "string" || raw.length === 0 || raw.length > LIMITS.clientIdMaxChars) return undefined;
  // Printable ASCII only; anything else is ignored rather than stored in the audit log.
  return /^[\x20-\x7e]+$/.test(raw) ? raw : undefined;
}

/** Resolves a Bearer secret (client token or scoped token) into an actor, or undefined. */
export function actorFromBearer(server: ServerContext, token: string, req: IncomingMessage): Actor | undefined {
  // The presented secret is hashed once; every comparison and the actor's tokenHash use that digest.
  const digest = sha256(token);
  let actor: Actor | undefined;
  if (digestEquals(digest, server.digests.client)) {
    actor = { type: "remote", scope: "collaborator", tokenHash: server.digests.clientHex };
  } else {
    // Scoped tokens are found by the hash of the presented secret; no secret is compared directly.
    const tokenHash = digest.toString("hex");
    const record = server.tokens.lookupHash(tokenHash);
    if (record) actor = { type: "remote", scope: record.scope, tokenHash };
  }
  const id = actor && clientId(req);
  if (actor && id) actor.clientId = id;
  return actor;
}

/** The host-token header, when present and valid. */
export function hostActor(server: ServerContext, req: IncomingMessage): Actor | undefined {
  const header = req.headers["x-openwork-host-token"];
  if (typeof header !== "string" || header === "") return undefined;
  const digest = sha256(header);
  if (!digestEquals(digest, server.digests.host)) return undefined;
  const actor: Actor = { type: "host", scope: "owner", tokenHash: digest.toString("hex") };
  const id = clientId(req);
  if (id) actor.clientId = id;
  return actor;
}

/** Client routes: a valid Bearer (the host header alone does not open them). */
export function authenticateClient(server: ServerContext, req: IncomingMessage, queryToken?: string): Actor {
  const cached = queryToken === undefined ? fromConnection(server, req) : undefined;
  if (cached) return cached;
  const token = bearerToken(req) ?? queryToken;
  const actor = token === undefined ? undefined : actorFromBearer(server, token, req);
  if (!actor) throw new ApiError("unauthorized", "Invalid bearer token");
  if (queryToken === undefined) remember(server, req, actor);
  return actor;
}

/**
 * A keep-alive connection sends the same Authorization header on every request: once verified it
 * is remembered on the socket (with the token store's revision and the token's expiry), and a
 * later request with the identical header skips hashing. Comparing against what this same
 * connection sent before reveals nothing about any token; a revoked or expired token, or a new
 * header, goes the full way again.
 */
const kAuth = Symbol("openwork.auth");
interface ConnectionAuth {
  header: string;
  scope: Actor["scope"];
  tokenHash: string;
  revision: number;
  expiresAt: number | undefined;
}
type AuthSocket = IncomingMessage["socket"] & { [kAuth]?: ConnectionAuth };

function fromConnection(server: ServerContext, req: IncomingMessage): Actor | undefined {
  const c = (req.socket as AuthSocket)[kAuth];
  if (!c || req.headers.authorization !== c.header || c.revision !== server.tokens.revision) return undefined;
  if (c.expiresAt !== undefined && c.expiresAt <= Date.now()) return undefined;
  const actor: Actor = { type: "remote", scope: c.scope, tokenHash: c.tokenHash };
  const id = clientId(req);
  if (id) actor.clientId = id;
  return actor;
}

function remember(server: ServerContext, req: IncomingMessage, actor: Actor): void {
  const header = req.headers.authorization;
  if (typeof header !== "string") return;
  const record = actor.tokenHash === server.digests.clientHex ? undefined : server.tokens.lookupHash(actor.tokenHash);
  (req.socket as AuthSocket)[kAuth] = { header, scope: actor.scope, tokenHash: actor.tokenHash, revision: server.tokens.revision, expiresAt: record?.expiresAt };
}

/** Host routes: the host-token header, or a Bearer whose scope is owner. */
export function authenticateHost(server: ServerContext, req: IncomingMessage): Actor {
  const host = hostActor(server, req);
  if (host) return host;
  const token = bearerToken(req);
  const actor = token === undefined ? undefined : actorFromBearer(server, token, req);
  if (actor && actor.scope === "owner") return actor;
  throw new ApiError("unauthorized", "Invalid host token");
}

/**
 * Authenticates a request for a route class, counting failures per client address (brute-force
 * limiter, 429 past the limit). `queryToken` is only for WebSocket upgrades, where browsers
 * cannot set headers; the caller strips the parameter before forwarding.
 */
export function authenticate(
  server: ServerContext,
  req: IncomingMessage,
  auth: "client" | "host",
  options: { queryToken?: string } = {},
): Actor {
  const limiter = server.authLimiter;
  const address = req.socket.remoteAddress ?? "unknown";
  try {
    // A valid credential is always served: an attacker's failures from the same address (any
    // local process, a web page firing requests) can never lock out the client or the host.
    return auth === "host" ? authenticateHost(server, req) : authenticateClient(server, req, options.queryToken);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    // Only failures are counted; past the limit they are answered 429 (and logged once).
    limiter.check(address);
    if (limiter.fail(address)) server.log.warn("too many failed authentications; failures from this address are limited for the rest of the minute", { address });
    throw err;
  }
}
