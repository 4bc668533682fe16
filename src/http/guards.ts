/**
 * Request guards that sit in front of routing: the Host check against DNS rebinding and the
 * brute-force limiter for failed authentication.
 */
import type { IncomingMessage } from "node:http";
import { ApiError } from "./errors.ts";

const LOOPBACK_BIND = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const LOOPBACK_HOSTNAME = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * A server bound to loopback only answers requests whose Host names loopback: a web page on
 * another domain that re-binds its DNS name to 127.0.0.1 (DNS rebinding) gets 421. A server bound
 * to another address cannot know its public names, so it accepts any Host.
 */
export function checkHost(req: IncomingMessage, bindHost: string): void {
  if (!LOOPBACK_BIND.has(bindHost)) return;
  const host = req.headers.host;
  if (host === undefined) return; // HTTP/1.0; HTTP/1.1 without Host is already a 400 from Node
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  if (!LOOPBACK_HOSTNAME.test(hostname)) {
    throw new ApiError(421, "misdirected_request", "This server only answers to loopback host names");
  }
}

/**
 * Counts failed authentications per client address in fixed one-minute windows. Past the limit
 * the address gets 429 for the rest of the window without its credentials being checked, so
 * guessing stops being useful; one warning is logged per window, not one per attempt.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number; warned: boolean }>();

  constructor(private readonly maxFailures: number, private readonly windowMs: number) {}

  /** Throws 429 rate_limited when the address is over the limit in the current window. */
  check(address: string, now = Date.now()): void {
    const w = this.windows.get(address);
    if (w && now - w.start < this.windowMs && w.failures >= this.maxFailures) {
      const retryAfter = Math.ceil((w.start + this.windowMs - now) / 1000);
      throw new ApiError(429, "rate_limited", "Too many failed authentication attempts", { retryAfterSeconds: retryAfter }, { "Retry-After": String(retryAfter) });
    }
  }

  /** Records a failure; returns true the first time the address crosses the limit in a window. */
  fail(address: string, now = Date.now()): boolean {
    let w = this.windows.get(address);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, failures: 0, warned: false };
      this.windows.set(address, w);
      if (this.windows.size > 10_000) this.prune(now);
    }
    w.failures++;
    if (w.failures >= this.maxFailures && !w.warned) {
      w.warned = true;
      return true;
    }
    return false;
  }

  /** Forgets every window (server shutdown). */
  close(): void {
    this.windows.clear();
  }

  private prune(now: number): void {
    for (const [key, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(key);
  }
}
