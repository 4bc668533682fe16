/**
 * Server-Sent Events: one writer class with heartbeats, backpressure and close-on-disconnect,
 * and a per-server registry that caps the number of open streams and closes a token's streams
 * when it is revoked.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "../errors.ts";
import { longPoll, type EventLog, type LogPage, type LoggedEvent } from "../event-log.ts";
import { waitParam } from "./query.ts";
import { LIMITS } from "../limits.ts";
import type { RouteContext } from "./route.ts";
import type { StreamRegistry } from "../context.ts";

export function wantsSse(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return typeof accept === "string" && accept.toLowerCase().includes("text/event-stream");
}

export function lastEventId(req: IncomingMessage): string | undefined {
  const value = req.headers["last-event-id"];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

export interface SseEvent {
  id?: string | number;
  event?: string;
  data: unknown;
}

export class SseStream {
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly closeListeners: Array<() => void> = [];
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    readonly tokenHash: string | undefined,
    private readonly heartbeatMs: number,
  ) {
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      // Reverse proxies (nginx) must not buffer the stream.
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    res.write(": connected\n\n");
    this.heartbeat = setInterval(() => this.comment(), heartbeatMs);
    this.heartbeat.unref();
    res.on("close", () => this.close());
  }

  get closed(): boolean {
    return this.done;
  }

  /** Writes one event; returns false once the stream is closed. */
  send(event: SseEvent): boolean {
    if (this.done) return false;
    let out = "";
    if (event.id !== undefined) out += `id: ${String(event.id).replace(/[\r\n]/g, "")}\n`;
    if (event.event !== undefined) out += `event: ${event.event.replace(/[\r\n]/g, "")}\n`;
    const data = typeof event.data === "string" ? event.data : JSON.stringify(event.data);
    for (const line of data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
    return this.write(out + "\n");
  }

  comment(text = ""): void {
    if (!this.done) this.write(`:${text ? " " + text.replace(/[\r\n]/g, " ") : ""}\n\n`);
  }

  /**
   * A client that does not read must not grow our memory without bound: past the cap its
   * stream is closed (it can reconnect and resume with Last-Event-ID).
   */
  private write(chunk: string): boolean {
    if (this.res.writableLength > LIMITS.sseMaxBufferedBytes) {
      this.close();
      return false;
    }
    this.res.write(chunk);
    return true;
  }

  /** Resolves once queued bytes drop below the high-water mark (or the stream closes). */
  drained(): Promise<void> {
    if (this.done || this.res.writableLength <= LIMITS.sseHighWaterBytes) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off("drain", done);
        resolve();
      };
      this.res.once("drain", done);
      this.onClose(done);
    });
  }

  /**
   * The one way an event log reaches a client: from `start` (a seq; undefined = live; "reset" = the
   * client's cursor is unusable) onwards, in order, waiting for the socket to drain past the
   * high-water mark so events stay in the shared ring rather than in our memory. A client that
   * falls behind the ring gets a `reset` event (it must refetch) instead of a growing queue.
   */
  follow<E extends LoggedEvent>(log: EventLog<E>, o: { start: number | "reset" | undefined; event(e: E): string; reset(cursor: number): unknown; alive?(): boolean }): void {
    let last = log.seq;
    const reset = () => {
      last = log.seq;
      this.send({ id: last, event: "reset", data: o.reset(last) });
    };
    if (o.start === "reset" || (o.start !== undefined && log.read(o.start, 0).reset)) reset();
    else if (o.start !== undefined) last = o.start;
    const ac = new AbortController();
    this.onClose(() => ac.abort());
    const pump = async () => {
      while (!this.done) {
        if (o.alive && !o.alive()) return this.close();
        const page = log.read(last, LIMITS.sseStepEvents);
        if (page.reset) {
          reset();
          continue;
        }
        for (const ev of page.items) {
          await this.drained();
          if (!this.send({ id: ev.seq, event: o.event(ev), data: ev })) return;
          last = ev.seq;
        }
        if (page.items.length === 0) await log.wait(this.heartbeatMs, ac.signal);
      }
    };
    pump().catch(() => this.close());
  }

  onClose(listener: () => void): void {
    if (this.done) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (!this.res.writableEnded) this.res.end();
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener();
      } catch {
        // a listener's failure must not keep other resources open
      }
    }
  }
}

/** The per-server set of open streams. */
/** Who holds a place: the token (undefined for the host) and whether it may use the reserve. */
interface Holder {
  tokenHash: string | undefined;
  privileged: boolean;
}

/**
 * Places for waiting responses — event streams and long-polls alike, since each holds a socket.
 * Past the global cap, or past the per-token cap for client tokens, a new one gets 429
 * too_many_streams. The last `sseReservedForOwners` places are kept for the host and owner
 * tokens, so that viewers and collaborators filling every place still cannot stop the host from
 * watching its approvals.
 */
export class SseRegistry implements StreamRegistry {
  private readonly streams = new Set<SseStream>();
  private readonly holders = new Set<Holder>();

  /** `heartbeatMs`: the default heartbeat interval of this server's streams (tests shorten it). */
  constructor(readonly heartbeatMs: number = LIMITS.sseHeartbeatMs) {}

  get size(): number {
    return this.holders.size;
  }

  /** Takes a place or throws 429; returns its release. */
  hold(tokenHash: string | undefined, privileged: boolean): () => void {
    const cap = privileged ? LIMITS.sseStreamsTotal : LIMITS.sseStreamsTotal - LIMITS.sseReservedForOwners;
    if (this.holders.size >= cap) throw new ApiError("too_many_streams", "Too many open event streams");
    if (tokenHash !== undefined) {
      let mine = 0;
      for (const h of this.holders) if (h.tokenHash === tokenHash) mine++;
      if (mine >= LIMITS.sseStreamsPerToken) {
        throw new ApiError("too_many_streams", "Too many open event streams for this token", { maxPerToken: LIMITS.sseStreamsPerToken });
      }
    }
    const holder: Holder = { tokenHash, privileged };
    this.holders.add(holder);
    return () => this.holders.delete(holder);
  }

  open(res: ServerResponse, tokenHash: string | undefined, heartbeatMs: number, privileged: boolean): SseStream {
    const release = this.hold(tokenHash, privileged);
    const stream = new SseStream(res, tokenHash, heartbeatMs);
    this.streams.add(stream);
    stream.onClose(() => {
      this.streams.delete(stream);
      release();
    });
    return stream;
  }

  closeByToken(tokenHash: string): void {
    for (const stream of [...this.streams]) if (stream.tokenHash === tokenHash) stream.close();
  }

  closeAll(): void {
    for (const stream of [...this.streams]) stream.close();
  }
}

function isPrivileged(rc: RouteContext): boolean {
  return rc.actor?.type === "host" || rc.actor?.scope === "owner";
}

/** A long-poll of an event log that holds a stream place while it waits (see SseRegistry). */
export async function longPollFor<E extends LoggedEvent>(rc: RouteContext, log: EventLog<E>, since: number, stop?: () => boolean): Promise<LogPage<E>> {
  const waitMs = waitParam(rc.query);
  const ready = log.read(since);
  if (waitMs === 0 || ready.reset || ready.items.length > 0) return ready;
  const release = (rc.server.streams as SseRegistry).hold(rc.actor?.type === "host" ? undefined : rc.actor?.tokenHash, isPrivileged(rc));
  try {
    return await longPoll(log, since, waitMs, rc.signal, stop);
  } finally {
    release();
  }
}

/** Opens an SSE response for a route; the handler then returns HANDLED. */
export function openSse(rc: RouteContext, options: { heartbeatMs?: number } = {}): SseStream {
  const registry = rc.server.streams as SseRegistry;
  return registry.open(rc.res, rc.actor?.type === "host" ? undefined : rc.actor?.tokenHash, options.heartbeatMs ?? registry.heartbeatMs, isPrivileged(rc));
}
