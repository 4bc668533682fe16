/**
 * The one event log type: a ring buffer with a per-log sequence (from 1, never repeating while the
 * server runs), reads "after seq N" with reset detection, and waiting for the next append. Reload
 * events (500 per workspace) and catalog events (10 000 per workspace) both use it, so `since`,
 * `reset`, long-polls and SSE behave the same on both routes.
 */
import { randomUUID } from "node:crypto";

/** What every logged event carries; the log assigns these. */
export interface LoggedEvent {
  id: string;
  seq: number;
  workspaceId: string;
  timestamp: number;
}

export interface LogPage<E> {
  items: E[];
  cursor: number;
  /** The client's cursor cannot be answered completely (too old, or from another server run). */
  reset?: true;
}

export class EventLog<E extends LoggedEvent> {
  private seqValue = 0;
  /** The smallest `since` that can still be answered completely. */
  private floor = 0;
  private readonly ring: E[] = [];
  private start = 0;
  private readonly listeners = new Set<(event: E | undefined) => void>();

  constructor(readonly workspaceId: string, private readonly capacity: number) {}

  /** The newest seq (0 before any event). */
  get seq(): number {
    return this.seqValue;
  }

  /** Appends an event (id, seq, workspaceId and timestamp are assigned) and wakes every waiter. */
  append(fields: Omit<E, keyof LoggedEvent>, timestamp = Date.now()): E {
    const event = { id: randomUUID(), seq: ++this.seqValue, workspaceId: this.workspaceId, ...fields, timestamp } as E;
    if (this.ring.length < this.capacity) this.ring.push(event);
    else {
      this.floor = this.ring[this.start]!.seq;
      this.ring[this.start] = event;
      this.start = (this.start + 1) % this.capacity;
    }
    this.notify(event);
    return event;
  }

  /** Wakes every waiter without an event (the log was dropped, the server is shutting down). */
  notify(event?: E): void {
    for (const l of [...this.listeners]) l(event);
  }

  /** Forgets the buffered events; skips one seq so no earlier cursor can be mistaken for current. */
  gap(): void {
    this.ring.length = 0;
    this.start = 0;
    this.seqValue += 1;
    this.floor = this.seqValue;
    this.notify();
  }

  /** Every buffered event, oldest first. */
  all(): E[] {
    return [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
  }

  /** Events with seq > since (at most `max`), or reset when `since` is older than the buffer or from the future. */
  read(since: number, max = Infinity): LogPage<E> {
    if (!Number.isSafeInteger(since) || since < this.floor || since > this.seqValue) return { items: [], cursor: this.seqValue, reset: true };
    const n = this.ring.length;
    const items: E[] = [];
    if (n > 0) {
      // seq is contiguous inside the ring: index of the first event with seq > since.
      const first = this.ring[this.start]!.seq;
      const skip = Math.max(0, since - first + 1);
      for (let i = skip; i < n && items.length < max; i++) items.push(this.ring[(this.start + i) % n]!);
    }
    return { items, cursor: items.length ? items[items.length - 1]!.seq : this.seqValue };
  }

  /** Subscribers right now (held long-polls, SSE followers): tests wait on it. */
  get waiting(): number {
    return this.listeners.size;
  }

  /** Calls `listener` on every append (and on notify without an event); returns the unsubscribe. */
  subscribe(listener: (event: E | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves on the next append or notify, after `timeoutMs`, or when `signal` aborts. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const unsubscribe = this.subscribe(done);
      if (signal?.aborted) done();
      else signal?.addEventListener("abort", done, { once: true });
    });
  }
}

/**
 * The one long-poll: the page after `since`, or — when it is empty and `waitMs` > 0 — the page
 * after the next append, the deadline, the client leaving, or `stop()` turning true (shutdown,
 * index dropped).
 */
export async function longPoll<E extends LoggedEvent>(
  log: EventLog<E>,
  since: number,
  waitMs: number,
  signal: AbortSignal,
  stop: () => boolean = () => false,
): Promise<LogPage<E>> {
  let page = log.read(since);
  const deadline = Date.now() + waitMs;
  while (!page.reset && page.items.length === 0 && Date.now() < deadline && !signal.aborted && !stop()) {
    await log.wait(deadline - Date.now(), signal);
    page = log.read(since);
  }
  return page;
}
