/**
 * Abort signals with a timeout for calls to other services (engine, hub, router, orchestrator).
 * Not `AbortSignal.any([AbortSignal.timeout(ms), …])`: in Node 20 the composite holds its sources
 * weakly, so once a garbage collection has run the timeout never fires — a service that sent its
 * headers and then stalled held the request (and the client) forever. Here the timer holds the
 * controller, and `done()` releases both.
 */
export interface Deadline {
  signal: AbortSignal;
  /** Clears the timer and the links to the other signals (call once the call's body was read). */
  done(): void;
}

/** Aborts after `ms` with a TimeoutError (as AbortSignal.timeout does), or as soon as one of `others` aborts. */
export function deadline(ms: number, ...others: Array<AbortSignal | undefined>): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms);
  timer.unref();
  const unlink: Array<() => void> = [];
  for (const other of others) {
    if (!other) continue;
    if (other.aborted) {
      controller.abort(other.reason);
      break;
    }
    const follow = () => controller.abort(other.reason);
    other.addEventListener("abort", follow, { once: true });
    unlink.push(() => other.removeEventListener("abort", follow));
  }
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      for (const fn of unlink.splice(0)) fn();
    },
  };
}
