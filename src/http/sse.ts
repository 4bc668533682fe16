/**
 * Server-Sent Events: one writer class with heartbeats, backpressure and close-on-disconnect,
 * and a per-server registry that caps the number of open streams and closes a token's streams
 * when it is revoked.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError } from "../errors.ts";
import type { EventLog, LoggedEvent } from "../event-log.ts";
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
export class SseRegistry implements StreamRegistry {
  private readonly streams = new Set<SseStream>();

  /** `heartbeatMs`: the default heartbeat interval of this server's streams (tests shorten it). */
  constructor(readonly heartbeatMs: number = LIMITS.sseHeartbeatMs) {}

  get size(): number {
    return this.streams.size;
  }

  /**
   * Throws 429 too_many_streams past the global cap, or past the per-token cap for client
   * tokens: one viewer must not be able to fill every place and lock the host out of its
   * approvals feed. The host's own streams count only towards the global cap.
   */
  open(res: ServerResponse, tokenHash: string | undefined, heartbeatMs: number, options: { host?: boolean } = {}): SseStream {
    if (this.streams.size >= LIMITS.sseStreamsTotal) {
      throw new ApiError("too_many_streams", "Too many open event streams");
    }
    if (!options.host && tokenHash !== undefined) {
      let mine = 0;
      for (const s of this.streams) if (s.tokenHash === tokenHash) mine++;
      if (mine >= LIMITS.sseStreamsPerToken) {
        throw new ApiError("too_many_streams", "Too many open event streams for this token", { maxPerToken: LIMITS.sseStreamsPerToken });
      }
    }
    const stream = new SseStream(res, tokenHash, heartbeatMs);
    this.streams.add(stream);
    stream.onClose(() => this.streams.delete(stream));
    return stream;
  }

  closeByToken(tokenHash: string): void {
    for (const stream of [...this.streams]) if (stream.tokenHash === tokenHash) stream.close();
  }

  closeAll(): void {
    for (const stream of [...this.streams]) stream.close();
  }
}

/** Opens an SSE response for a route; the handler then returns HANDLED. */
export function openSse(rc: RouteContext, options: { heartbeatMs?: number } = {}): SseStream {
  const registry = rc.server.streams as SseRegistry;
  return registry.open(rc.res, rc.actor?.tokenHash, options.heartbeatMs ?? registry.heartbeatMs, { host: rc.actor?.type === "host" });
}
