/**
 * Bounded waits for request bodies. Node's own `requestTimeout` is off (held approvals, uploads
 * and event streams legitimately last long), so a client trickling its body one byte every few
 * seconds would hold a socket — and a file descriptor — forever. Every request that has a body
 * is watched until the body has fully arrived:
 * - progress: at least `minProgressBytes` must arrive in every `idleMs` window (a complete stall
 *   and a trickle are both cut; a slow but real upload is not);
 * - deadline: a body that is not an upload (JSON, form fields) must arrive within `deadlineMs`.
 * A cut request is answered 408 `request_timeout` with `Connection: close` (or its socket is
 * destroyed when a response has already started). Once the body has arrived nothing is watched:
 * waiting for the host's approval or streaming a response is not the client's fault.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "../errors.ts";
import { sendError } from "./reply.ts";

export interface BodyWaitLimits {
  idleMs: number;
  minProgressBytes: number;
  deadlineMs: number;
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return Number(length) > 0;
  return req.headers["transfer-encoding"] !== undefined;
}

/** Uploads (multipart, raw bytes) get the progress rule only; everything else also the deadline. */
function isUpload(req: IncomingMessage): boolean {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  return type === "multipart/form-data" || type === "application/octet-stream";
}

export function guardBody(req: IncomingMessage, res: ServerResponse, limits: BodyWaitLimits): void {
  if (req.complete || !hasBody(req)) return;
  const socket = req.socket;
  const started = Date.now();
  const deadline = isUpload(req) ? Infinity : started + limits.deadlineMs;
  let seen = socket.bytesRead;
  const timer = setInterval(() => {
    if (req.complete) return stop();
    const now = socket.bytesRead;
    const stalled = now - seen < limits.minProgressBytes;
    seen = now;
    if (!stalled && Date.now() < deadline) return;
    stop();
    const err = new ApiError("request_timeout", stalled ? "The request body stopped arriving" : "The request body took too long to arrive");
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    // sendError marks the response Connection: close because the body is incomplete.
    sendError(req, res, err);
    res.once("finish", () => socket.destroy());
  }, Math.min(limits.idleMs, limits.deadlineMs));
  timer.unref();
  const stop = (): void => clearInterval(timer);
  req.once("end", stop);
  req.once("close", stop);
}

/** A body read that failed because the client went away: not a server error, nothing to log. */
export function isClientAbort(err: unknown, req: IncomingMessage): boolean {
  if (!req.destroyed && req.complete) return false;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || (err instanceof Error && err.message === "aborted");
}
