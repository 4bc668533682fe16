/**
 * Our ServerResponse (passed to http.createServer): the CORS headers every answer needs are kept
 * as a list of name/value pairs and only added when the head is written. JSON answers write their
 * whole head in one `writeHead(status, pairs)` — Node validates and stores each `setHeader` call
 * separately, and with eight headers per answer that was a third of the cost of `GET /health`.
 * Every other writer (streams, files, the proxy) gets the same headers through `writeHead`, which
 * Node also calls for implicit heads.
 */
import { ServerResponse, type IncomingMessage } from "node:http";

export class OpenworkResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  /** CORS pairs not yet written (see corsPairs). */
  corsPending: readonly string[] | undefined = undefined;
  /** When the request started (performance.now), for the request log. */
  startedAt = 0;
  /** The path the request log names. */
  logPath = "";

  /**
   * Called once when the answer has been handed to `end()` (the request log): a property, not a
   * "finish" listener — adding a second listener to every response cost more than the log line.
   */
  onEnd: ((res: OpenworkResponse<Request>) => void) | undefined = undefined;

  override end(...args: unknown[]): this {
    const result = (super.end as (...a: unknown[]) => this)(...args);
    const onEnd = this.onEnd;
    if (onEnd) {
      this.onEnd = undefined;
      onEnd(this);
    }
    return result;
  }

  /** Takes the pending CORS pairs (the caller writes them itself). */
  takeCors(): readonly string[] {
    const pairs = this.corsPending ?? NONE;
    this.corsPending = undefined;
    return pairs;
  }

  override writeHead(statusCode: number, ...rest: unknown[]): this {
    const pairs = this.takeCors();
    // A header the writer set itself wins (the proxy passes the upstream's answer on).
    for (let i = 0; i < pairs.length; i += 2) if (!this.hasHeader(pairs[i]!)) this.setHeader(pairs[i]!, pairs[i + 1]!);
    return (super.writeHead as (code: number, ...r: unknown[]) => this)(statusCode, ...rest);
  }
}

const NONE: readonly string[] = [];
