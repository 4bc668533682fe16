/** Raw HTTP over a TCP socket, for requests that a well-behaved client library would refuse to send. */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  head: string;
  body: string;
  raw: string;
}

/**
 * Writes `payload` (then ends our side if `endAfterWrite`) and collects everything the server
 * sends, as latin1, until it closes or `timeoutMs` passes. When `complete(raw)` says the answer is
 * whole, our side is ended so that keep-alive need not expire. Rejects only when the connection
 * fails before any byte arrived.
 */
export function rawCollect(
  url: string,
  payload: string | Buffer,
  options: { timeoutMs?: number; endAfterWrite?: boolean; complete?: (raw: string) => boolean } = {},
): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 5_000);
    socket.on("connect", () => {
      socket.write(payload);
      if (options.endAfterWrite) socket.end();
    });
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (options.complete?.(Buffer.concat(chunks).toString("latin1"))) socket.end();
    });
    socket.on("error", (err) => {
      if (chunks.length === 0) reject(err);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
  });
}

/** Sends bytes, collects everything until the server closes or `timeoutMs` passes. */
export async function rawRequest(url: string, payload: string | Buffer, options: { timeoutMs?: number; endAfterWrite?: boolean } = {}): Promise<RawResponse> {
  const raw = await rawCollect(url, payload, options);
  const split = raw.indexOf("\r\n\r\n");
  const head = split === -1 ? raw : raw.slice(0, split);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return { status: m ? Number(m[1]) : 0, head, body: split === -1 ? "" : raw.slice(split + 4), raw };
}
