/** Writing JSON answers and errors. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, fromFsError, isResourceError } from "../errors.ts";
import { OpenworkResponse } from "./response.ts";

/** Compact JSON with an exact Content-Length; `undefined` fields are omitted by JSON.stringify. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  sendJsonText(res, status, body === undefined ? "" : JSON.stringify(body), headers);
}

/**
 * Already-serialized JSON (e.g. a cached list answer). The whole head — CORS pairs, extra headers,
 * type, nosniff, length — is written by one `writeHead` with a flat list (see http/response.ts).
 */
export function sendJsonText(res: ServerResponse, status: number, text: string | Buffer, headers?: Record<string, string>): void {
  const head = res instanceof OpenworkResponse ? res.takeCors().slice() : [];
  if (headers) for (const name in headers) head.push(name, headers[name]!);
  // Workspace content travels inside JSON: a browser must never sniff it into HTML.
  head.push("Content-Type", "application/json; charset=utf-8", "X-Content-Type-Options", "nosniff", "Content-Length", String(Buffer.byteLength(text)));
  res.writeHead(status, head);
  res.end(text);
}

/**
 * Answers an error as JSON. Out-of-fds / out-of-disk errors become 503 / 507; other unknown
 * errors become a generic 500 (logged by the caller) that never leaks a message or stack. When the request body was not read to the end, the connection is
 * closed after the answer instead of reading (possibly huge) leftovers.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const apiError = err instanceof ApiError ? err : isResourceError(err) ? (fromFsError(err) as ApiError) : new ApiError("internal_error", "Unexpected server error");
  if (!req.complete) {
    res.shouldKeepAlive = false;
    res.setHeader("Connection", "close");
  }
  sendJson(res, apiError.status, apiError.toJSON(), apiError.headers);
}
