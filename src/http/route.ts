/**
 * Routes are data: each routes/*.ts exports a table of RouteDef. The server applies auth, scope,
 * read-only mode, workspace and mount resolution, and — for write plans — the route's gate, the
 * audit log and the write's events itself, so a handler cannot forget them.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Actor, Answer, Scope, Workspace, WritePlan } from "../types.ts";
import type { ServerContext } from "../context.ts";

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
/** none: no credential; client: a valid Bearer; host: host-token header or an owner Bearer. */
export type AuthClass = "none" | "client" | "host";
import type { Gate } from "../types.ts";
export type { Gate };

export type JsonReply = Answer;

/** Returned by handlers that wrote the response themselves (downloads, SSE, proxy). */
export const HANDLED: unique symbol = Symbol("handled");
export type Handled = typeof HANDLED;

export type HandlerResult = JsonReply | WritePlan | Handled;

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  server: ServerContext;
  method: string;
  /** Raw (still percent-encoded) pathname, known to decode cleanly; without a `/w/<id>` mount prefix. */
  path: string;
  /** Decoded path parameters; `*` holds the raw rest of a wildcard route. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** Null only on auth "none" routes. */
  actor: Actor | null;
  /** Resolved and authorized when the route declares `workspace: true`. */
  workspace: Workspace | undefined;
  /** The workspace of a mounted base URL (`/w/<id>/…`), resolved and authorized. */
  mount: Workspace | undefined;
  /** Aborted when the client goes away before the response is finished, or the server shuts down. */
  signal: AbortSignal;
  /** Reads and strictly parses a JSON object body (byte limit, depth limit, no prototype keys). */
  readJson(options?: { maxBytes?: number; liftStrings?: boolean }): Promise<Record<string, unknown>>;
  /** The body's content left RAM (staged on disk): its bytes go back to the pending-bytes budget. */
  bodyStaged(): void;
}

/** A WebSocket upgrade that passed the same pipeline as a request: the socket and its first bytes. */
export interface UpgradeContext extends RouteContext {
  socket: Duplex;
  head: Buffer;
}

export interface RouteDef {
  /** "*" matches every method (proxies). */
  method: Method | "*";
  /** Pattern: literal segments, `:name` params, and an optional trailing `*` (raw rest). */
  path: string;
  auth: AuthClass;
  /** Minimum scope for client routes (default viewer). */
  scope?: Scope;
  /** Set on every mutating route; read-only mode answers 403 before anything else (unless `readOnlyAllowed`). */
  gate?: Gate;
  /** An audited action that read-only mode still allows (activation, a chat message, a run record). */
  readOnlyAllowed?: true;
  /** The `:id` param names a workspace to resolve (404 workspace_not_found / 403 workspace_unauthorized). */
  workspace?: boolean;
  /**
   * WebSocket upgrades of this path (same auth; the token may also come as `?token=`). May wait
   * (for an audit line) before it takes the socket over.
   */
  upgrade?(rc: UpgradeContext): void | Promise<void>;
  handler(rc: RouteContext): Promise<HandlerResult> | JsonReply;
}

/** An answer already serialized as JSON text (cached answers). */
export function jsonText(text: string | Buffer, status = 200): JsonReply {
  return { kind: "json", status, body: undefined, text };
}

export function json(body: unknown, status = 200, headers?: Record<string, string>): JsonReply {
  return headers ? { kind: "json", status, body, headers } : { kind: "json", status, body };
}
