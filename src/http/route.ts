/**
 * Routes are data: each routes/*.ts exports a table of RouteDef. The router applies
 * auth, scope, read-only mode, workspace resolution and (for write plans) the approval
 * gate and audit log itself, so a handler cannot forget them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Actor, Scope, Workspace, WritePlan } from "../types.ts";
import type { ServerContext } from "../context.ts";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
/** none: no credential; client: a valid Bearer; host: host-token header or an owner Bearer. */
export type AuthClass = "none" | "client" | "host";

export interface JsonReply {
  readonly kind: "json";
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Returned by handlers that wrote the response themselves (downloads, SSE, proxy). */
export const HANDLED: unique symbol = Symbol("handled");
export type Handled = typeof HANDLED;

export type HandlerResult = JsonReply | WritePlan | Handled;

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  server: ServerContext;
  method: string;
  /** Raw (still percent-encoded) pathname, known to decode cleanly. */
  path: string;
  /** Decoded path parameters; `*` holds the raw rest of a wildcard route. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Null only on auth "none" routes. */
  actor: Actor | null;
  /** Resolved and authorized when the route declares `workspace: true`. */
  workspace: Workspace | undefined;
  /** Aborted when the client goes away before the response is finished. */
  signal: AbortSignal;
  /** Reads and strictly parses a JSON object body (byte limit, depth limit, no prototype keys). */
  readJson(options?: { maxBytes?: number }): Promise<Record<string, unknown>>;
}

export interface RouteDef {
  /** "*" matches every method (proxies). */
  method: Method | "*";
  /** Pattern: literal segments, `:name` params, and an optional trailing `*` (raw rest). */
  path: string;
  auth: AuthClass;
  /** Minimum scope for client routes (default viewer). */
  scope?: Scope;
  /** Mutating route: read-only mode answers 403 before anything else, and the handler must return a WritePlan (or a no-op JsonReply). */
  write?: boolean;
  /** The `:id` param names a workspace to resolve (404 workspace_not_found / 403 workspace_unauthorized). */
  workspace?: boolean;
  handler(rc: RouteContext): Promise<HandlerResult>;
}

export function json(body: unknown, status = 200, headers?: Record<string, string>): JsonReply {
  return headers ? { kind: "json", status, body, headers } : { kind: "json", status, body };
}
