/**
 * The RouteContext handed to handlers. A class with prototype accessors rather than an object
 * literal with getters: literals with accessors are allocated slowly and measurably raised GC
 * pauses (p99 latency) on every request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { readJsonObject } from "./body.ts";
import type { PendingReservation } from "./pending-bytes.ts";
import { LIMITS } from "../limits.ts";
import type { RouteContext, UpgradeContext } from "./route.ts";
import type { ServerContext } from "../context.ts";
import type { Actor, Workspace } from "../types.ts";

export class RequestContext implements RouteContext {
  private abortController: AbortController | undefined;
  private parsedQuery: URLSearchParams | undefined;
  actor: Actor | null = null;
  workspace: Workspace | undefined = undefined;
  mount: Workspace | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly server: ServerContext,
    readonly method: string,
    readonly path: string,
    readonly params: Record<string, string>,
  ) {}

  /** Parsed on first use: most routes never read the query string. */
  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(queryString(this.req.url ?? "")));
  }

  /** Created on first use: most requests never need it, and it costs a listener per request. */
  get signal(): AbortSignal {
    if (!this.abortController) {
      const controller = (this.abortController = new AbortController());
      const abort = () => controller.abort();
      const res = this.res;
      if (this.req.socket.destroyed && !res.writableFinished) abort();
      else res.on("close", () => !res.writableFinished && abort());
      // Long-polls and held requests end at shutdown instead of holding it for their whole wait.
      const shutdown = this.server.shutdown;
      if (shutdown.aborted) abort();
      else {
        shutdown.addEventListener("abort", abort, { once: true });
        controller.signal.addEventListener("abort", () => shutdown.removeEventListener("abort", abort), { once: true });
        res.once("close", () => shutdown.removeEventListener("abort", abort));
      }
    }
    return this.abortController.signal;
  }

  private bodyBytes: PendingReservation | undefined;

  /**
   * Bodies larger than the general limit (write content) are counted against the pending-bytes
   * budget until the response ends — or until `bodyStaged()` says the content left RAM.
   * `liftStrings`: long plain strings come back as LiftedString views (formats/lifted-json.ts).
   */
  readJson(options?: { maxBytes?: number; liftStrings?: boolean }): Promise<Record<string, unknown>> {
    const maxBytes = options?.maxBytes ?? LIMITS.jsonBodyBytes;
    if (maxBytes > LIMITS.jsonBodyBytes) this.bodyBytes = this.server.pendingBytes.reserveFor(this.res);
    return readJsonObject(this.req, maxBytes, this.bodyBytes?.take, options?.liftStrings === true);
  }

  /** The body's content now waits on disk: its bytes go back to the RAM budget. */
  bodyStaged(): void {
    this.bodyBytes?.release();
  }
}

/** The context of a WebSocket upgrade: no response object, a socket instead. */
export class UpgradeRequestContext extends RequestContext implements UpgradeContext {
  constructor(req: IncomingMessage, readonly socket: Duplex, readonly head: Buffer, server: ServerContext, path: string, params: Record<string, string>) {
    // Upgrades have no ServerResponse; handlers of upgrade routes never touch `res`.
    super(req, undefined as unknown as ServerResponse, server, "GET", path, params);
  }

  override get signal(): AbortSignal {
    return AbortSignal.any([this.server.shutdown]);
  }
}

/** The raw query string of a request target (without `?` and any fragment). */
export function queryString(target: string): string {
  const q = target.indexOf("?");
  if (q === -1) return "";
  const hash = target.indexOf("#", q);
  return hash === -1 ? target.slice(q + 1) : target.slice(q + 1, hash);
}
