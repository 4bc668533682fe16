/**
 * Generic streaming reverse proxy over node:http/https client requests: header rules, streaming
 * both ways with backpressure, upstream failure mapping, WebSocket upgrades. No knowledge of
 * workspaces or tokens — routes/proxy.ts decides *where* to go and *who* may go there.
 */
import { Agent as HttpAgent, request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { pipeline } from "node:stream";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus legacy ones; they describe one connection, not the message. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "trailers",
  "transfer-encoding",
  "upgrade",
  // The client's Expect was answered by our server; upstream must not wait for it again.
  "expect",
  // HTTP/2 pseudo-header leftovers never travel over HTTP/1.1.
  "http2-settings",
]);

/** Our own credentials and browser context: never forwarded (X07 — a credential leak otherwise). */
const NEVER_FORWARD = new Set(["host", "authorization", "x-openwork-host-token", "x-openwork-client-id", "origin", "cookie"]);

/** Header names listed in a Connection header (lowercased). */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  const list = Array.isArray(value) ? value : value === undefined ? [] : [value];
  for (const v of list) for (const t of v.split(",")) if (t.trim()) out.add(t.trim().toLowerCase());
  return out;
}

/**
 * The upstream request headers, built fresh: hop-by-hop headers, headers named in Connection and
 * our own credentials are dropped FIRST; `added` (ours) and X-Forwarded-* are set afterwards so a
 * client cannot strip them via `Connection: x-forwarded-for` (X08).
 */
export function forwardRequestHeaders(req: IncomingMessage, added: Record<string, string>, options: { upgrade?: boolean } = {}): OutgoingHttpHeaders {
  const named = connectionTokens(req.headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith("proxy-") || named.has(name) || NEVER_FORWARD.has(name)) continue;
    // Client-sent forwarding headers are replaced, never trusted (X09): we are the first proxy.
    if (name === "x-forwarded-for" || name === "x-forwarded-proto" || name === "x-forwarded-host" || name === "forwarded") continue;
    if (name.startsWith("sec-websocket-") && !options.upgrade) continue;
    out[name] = value;
  }
  if (options.upgrade) {
    out.connection = "Upgrade";
    out.upgrade = String(req.headers.upgrade ?? "websocket");
  }
  const remote = req.socket.remoteAddress;
  if (remote) out["x-forwarded-for"] = remote;
  out["x-forwarded-proto"] = (req.socket as Socket & { encrypted?: boolean }).encrypted ? "https" : "http";
  if (typeof req.headers.host === "string") out["x-forwarded-host"] = req.headers.host;
  for (const [name, value] of Object.entries(added)) out[name.toLowerCase()] = value;
  return out;
}

export interface ResponseHeaderOptions {
  /** Rewrites an upstream `Location`; return undefined to drop it. */
  rewriteLocation?(value: string): string | undefined;
}

/**
 * The upstream response headers for the client: hop-by-hop and Connection-named headers dropped,
 * CORS left to our own layer (the server's policy wins over the engine's), cookies dropped
 * (we never forward the client's cookies, so upstream cookies have no meaning on our origin).
 */
export function forwardResponseHeaders(headers: IncomingHttpHeaders, options: ResponseHeaderOptions = {}): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || name.startsWith("proxy-") || named.has(name)) continue;
    if (name.startsWith("access-control-") || name === "set-cookie" || name === "set-cookie2") continue;
    if (name === "location" && options.rewriteLocation) {
      const rewritten = options.rewriteLocation(String(value));
      if (rewritten !== undefined) out.location = rewritten;
      continue;
    }
    out[name] = value;
  }
  return out;
}

/**
 * Checks the rest of a proxied path (raw, percent-encoded, "" or starting with "/"). The request
 * target must never choose the upstream or climb out of the base path, so empty segments (`//host`),
 * dot segments (also `%2e%2e`, which WHATWG URL treats as `..`), and encoded `/`, `\` or NUL in a
 * segment are refused before any upstream request (X01, X02).
 */
export function assertSafeProxyPath(rest: string): void {
  if (rest === "") return;
  const bad = () => new ApiError("invalid_path", "Invalid proxied path");
  if (!rest.startsWith("/")) throw bad();
  const segments = rest.slice(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    if (raw === "") {
      if (i === segments.length - 1) continue; // a trailing slash is harmless
      throw bad();
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw bad();
    }
    if (decoded === "." || decoded === ".." || /[/\\\0]/.test(decoded)) throw bad();
  }
}

/** Where and how a request is forwarded. */
export interface ProxyTarget {
  /** Full upstream URL: origin, path and query. */
  url: URL;
  /** Headers we add after the strip step (directory, upstream credentials). */
  headers?: Record<string, string>;
}

/** How upstream failures are reported (the OpenCode and the Router proxies use different codes). */
export interface ProxyErrors {
  unreachable(cause: string): ApiError;
  timeout(): ApiError;
}

export interface ProxyExchangeInfo extends ResponseHeaderOptions {
  /** The token that opened the exchange, so revocation can close it. */
  tokenHash?: string;
}

interface Exchange {
  tokenHash: string | undefined;
  /** Streams and WebSockets are closed on shutdown; ordinary requests may finish. */
  longLived: boolean;
  destroy(): void;
}

/**
 * Per-server proxy state: keep-alive agents to the upstreams and the open exchanges (so revocation
 * and shutdown can close proxied event streams and WebSockets).
 */
export class ProxyPool {
  /** Time for upstream response headers (tests shorten it). */
  headersTimeoutMs: number;
  private readonly http = new HttpAgent({ keepAlive: true, maxSockets: LIMITS.proxyMaxSockets, scheduling: "lifo" });
  private readonly https = new HttpsAgent({ keepAlive: true, maxSockets: LIMITS.proxyMaxSockets, scheduling: "lifo" });
  private readonly open = new Set<Exchange>();

  /** `headersTimeoutMs`: time for upstream response headers (tests shorten it). */
  constructor(options: { headersTimeoutMs?: number } = {}) {
    this.headersTimeoutMs = options.headersTimeoutMs ?? LIMITS.proxyHeadersTimeoutMs;
  }

  agentFor(url: URL): HttpAgent {
    return url.protocol === "https:" ? this.https : this.http;
  }

  get size(): number {
    return this.open.size;
  }

  /** @internal */
  track(ex: Exchange): () => void {
    this.open.add(ex);
    return () => this.open.delete(ex);
  }

  /** Closes every proxied exchange opened with this token (revocation stops it at once). */
  closeByToken(tokenHash: string): void {
    for (const ex of [...this.open]) if (ex.tokenHash === tokenHash) ex.destroy();
  }

  close(): void {
    for (const ex of [...this.open]) if (ex.longLived) ex.destroy();
    this.http.destroy();
    this.https.destroy();
  }
}

function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return (e && (e.code ?? e.message)) || "unknown";
}

/** Node validates header names and values synchronously; such a throw is the client's bad input. */
function isHeaderError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? "";
  return code === "ERR_INVALID_HTTP_TOKEN" || code === "ERR_INVALID_CHAR" || code === "ERR_HTTP_TRAILER_INVALID" || code === "ERR_HTTP_INVALID_HEADER_VALUE";
}

class HeadersTimeout extends Error {}

/** Starts a client request; a synchronous throw becomes an ApiError instead of a crash (X06). */
function startRequest(url: URL, options: { method: string; headers: OutgoingHttpHeaders; agent: HttpAgent | false }, errors: ProxyErrors): ClientRequest {
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  try {
    return request(url, { method: options.method, headers: options.headers, agent: options.agent });
  } catch (err) {
    if (isHeaderError(err)) throw new ApiError("invalid_payload", "Request headers cannot be forwarded");
    throw errors.unreachable(causeOf(err));
  }
}

/**
 * Forwards `req` to `target` and streams the answer to `res`. Rejects with an ApiError only while
 * nothing has been sent (502/504/400 — the server's catch answers them); once the response has
 * started, failures just close the client's connection. Resolves when the exchange is over.
 */
export function proxyHttp(
  req: IncomingMessage,
  res: ServerResponse,
  target: ProxyTarget,
  pool: ProxyPool,
  errors: ProxyErrors,
  options: ResponseHeaderOptions & ProxyExchangeInfo = {},
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const headers = forwardRequestHeaders(req, target.headers ?? {});
    let upReq: ClientRequest;
    try {
      upReq = startRequest(target.url, { method: req.method ?? "GET", headers, agent: pool.agentFor(target.url) }, errors);
    } catch (err) {
      reject(err);
      return;
    }
    // 504 when upstream sends no headers within the limit — counted from the last request-body
    // progress, so a long upload is not cut while it still moves.
    const timer = setTimeout(() => upReq.destroy(new HeadersTimeout()), pool.headersTimeoutMs);
    timer.unref();
    let settled = false;
    const exchange: Exchange = {
      tokenHash: options.tokenHash,
      longLived: false,
      destroy: () => {
        upReq.destroy();
        res.destroy();
      },
    };
    const untrack = pool.track(exchange);
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      untrack();
      if (err) reject(err);
      else resolve();
    };

    // Streams may idle for minutes (SSE): no server-side socket timeout for this exchange.
    req.socket.setTimeout(0);
    upReq.setNoDelay(true);

    let headersIn = false;
    req.on("data", () => {
      if (!headersIn) timer.refresh();
    });

    // The client going away aborts the upstream request (X15).
    res.on("close", () => {
      if (!res.writableFinished) {
        upReq.destroy();
        finish();
      }
    });
    req.on("error", () => upReq.destroy());

    upReq.on("error", (err) => {
      if (settled) return;
      if (res.headersSent || res.destroyed) {
        res.destroy();
        finish();
      } else if (err instanceof HeadersTimeout) {
        finish(errors.timeout());
      } else {
        finish(errors.unreachable(causeOf(err)));
      }
    });

    upReq.on("response", (upRes) => {
      headersIn = true;
      clearTimeout(timer);
      if (res.destroyed) {
        upRes.destroy();
        finish();
        return;
      }
      const outHeaders = forwardResponseHeaders(upRes.headers, options);
      const contentType = String(upRes.headers["content-type"] ?? "");
      exchange.longLived = contentType.startsWith("text/event-stream");
      try {
        res.writeHead(upRes.statusCode ?? 502, outHeaders);
      } catch (err) {
        // Invalid upstream header characters: nothing was sent yet (X17).
        upRes.destroy();
        finish(errors.unreachable(causeOf(err)));
        return;
      }
      // Event streams and other bodies without a length: let the client see the status at once.
      if (exchange.longLived || upRes.headers["content-length"] === undefined) res.flushHeaders();
      // pipe (not pipeline) on this hot path: same backpressure, without pipeline's per-call
      // AbortController; failures are handled explicitly below.
      upRes.on("error", () => {
        // Upstream died mid-body: close the client's connection too, never hang.
        upReq.destroy();
        res.destroy();
        finish();
      });
      res.on("finish", () => finish());
      upRes.pipe(res);
    });

    // Request body: pipe (with backpressure) rather than pipeline, because a failing upstream
    // must not destroy the client's socket before we can answer 502.
    req.pipe(upReq);
  });
}

/** Writes a JSON error on a raw socket (upgrade requests have no ServerResponse). */
export function writeSocketError(socket: Duplex, err: unknown): void {
  const apiError = err instanceof ApiError ? err : new ApiError("internal_error", "Unexpected server error");
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(apiError.toJSON());
  let head = `HTTP/1.1 ${apiError.status} ${STATUS_CODES[apiError.status] ?? "Error"}\r\n`;
  head += "Content-Type: application/json; charset=utf-8\r\n";
  head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [k, v] of Object.entries(apiError.headers ?? {})) head += `${k}: ${v.replace(/[\r\n]/g, "")}\r\n`;
  head += "Connection: close\r\n\r\n";
  socket.end(head + body);
}

function rawHead(status: number, message: string, rawHeaders: string[], extra = ""): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return head + extra + "\r\n";
}

/**
 * Proxies a WebSocket (or other) upgrade: forwards the handshake, answers the client with the
 * upstream's 101 and pipes the two sockets. Before the upstream answers, failures are written
 * to the client socket as JSON errors (502/504).
 */
export function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: ProxyTarget,
  pool: ProxyPool,
  errors: ProxyErrors,
  info: ProxyExchangeInfo = {},
): void {
  const headers = forwardRequestHeaders(req, target.headers ?? {}, { upgrade: true });
  let upReq: ClientRequest;
  try {
    // No agent: the upstream socket is taken over by the WebSocket.
    upReq = startRequest(target.url, { method: req.method ?? "GET", headers, agent: false }, errors);
  } catch (err) {
    writeSocketError(socket, err);
    return;
  }
  let answered = false;
  let upSocket: Duplex | undefined;
  const exchange: Exchange = {
    tokenHash: info.tokenHash,
    longLived: true,
    destroy: () => {
      upReq.destroy();
      upSocket?.destroy();
      socket.destroy();
    },
  };
  const untrack = pool.track(exchange);
  const timer = setTimeout(() => upReq.destroy(new HeadersTimeout()), pool.headersTimeoutMs);
  timer.unref();
  const fail = (err: ApiError) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    untrack();
    writeSocketError(socket, err);
  };

  socket.on("error", () => exchange.destroy());
  socket.on("close", () => {
    clearTimeout(timer);
    untrack();
    upReq.destroy();
    upSocket?.destroy();
  });

  upReq.on("error", (err) => {
    if (err instanceof HeadersTimeout) fail(errors.timeout());
    else fail(errors.unreachable(causeOf(err)));
  });

  upReq.on("upgrade", (upRes: IncomingMessage, upstream: Socket, upHead: Buffer) => {
    clearTimeout(timer);
    answered = true;
    upSocket = upstream;
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.setTimeout(0);
    upstream.setNoDelay(true);
    (socket as Socket).setTimeout?.(0);
    (socket as Socket).setNoDelay?.(true);
    socket.write(rawHead(101, "Switching Protocols", upRes.rawHeaders));
    if (upHead.length) socket.write(upHead);
    if (head.length) upstream.write(head);
    upstream.on("error", () => exchange.destroy());
    upstream.on("close", () => socket.destroy());
    // Frames flow both ways with backpressure; either side closing closes the other.
    upstream.pipe(socket);
    socket.pipe(upstream);
  });

  // Upstream declined the upgrade: pass its answer on and close.
  upReq.on("response", (upRes) => {
    clearTimeout(timer);
    if (answered) {
      upRes.destroy();
      return;
    }
    answered = true;
    // The same response-header rules as plain proxying (Location rewritten, cookies and CORS
    // dropped); the body is passed until the connection closes, so no Content-Length.
    const kept: string[] = [];
    for (const [name, value] of Object.entries(forwardResponseHeaders(upRes.headers, info))) {
      if (name === "content-length" || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) kept.push(name, String(v));
    }
    socket.write(rawHead(upRes.statusCode ?? 502, upRes.statusMessage ?? "", kept, "Connection: close\r\n"));
    pipeline(upRes, socket, () => {
      untrack();
      socket.destroy();
    });
  });

  upReq.end();
}
