/** The brute-force limiter for failed authentication. */
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

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
      throw new ApiError("rate_limited", "Too many failed authentication attempts", { retryAfterSeconds: retryAfter }, { headers: { "Retry-After": String(retryAfter) } });
    }
  }

  /** Records a failure; returns true the first time the address crosses the limit in a window. */
  fail(address: string, now = Date.now()): boolean {
    let w = this.windows.get(address);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, failures: 0, warned: false };
      this.windows.set(address, w);
      if (this.windows.size > LIMITS.authLimiterMaxAddresses) this.prune(now);
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
