/** Small HTTP clients for the proxy tests: byte-exact bodies, and raw requests over TCP. */
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";

export interface CallResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One request with no automatic decoding; the body comes back as exact bytes. */
export function call(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; token?: string } = {},
): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-length"] = String(Buffer.byteLength(options.body));
    const req = request(url, { method: options.method ?? "GET", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        const text = body.toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

export interface RawExchange {
  /** Status of the final (non-1xx) response. */
  status: number;
  /** Every status line seen, e.g. [100, 200]. */
  statuses: number[];
  head: string;
  body: string;
  raw: string;
}

/** Writes raw bytes; reads until the server closes the connection or `timeoutMs` passes. */
export function rawExchange(baseUrl: string, payload: string | Buffer, timeoutMs = 5_000): Promise<RawExchange> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("connect", () => socket.write(payload));
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      // A complete response with a Content-Length: stop waiting for keep-alive to expire.
      const raw = Buffer.concat(chunks).toString("latin1");
      const finals = [...raw.matchAll(/HTTP\/1\.1 ([2-9]\d\d)[^\r]*\r\n([\s\S]*?)\r\n\r\n/g)];
      const last = finals[finals.length - 1];
      if (last) {
        const len = /content-length: *(\d+)/i.exec(last[2]!);
        const bodyStart = last.index! + last[0].length;
        if (len && raw.length - bodyStart >= Number(len[1])) socket.end();
      }
    });
    socket.on("error", (err) => {
      if (chunks.length === 0) reject(err);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString("latin1");
      const statuses = [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      const finalIdx = raw.search(/HTTP\/1\.[01] [2-9]\d\d/);
      const final = finalIdx === -1 ? raw : raw.slice(finalIdx);
      const split = final.indexOf("\r\n\r\n");
      resolve({
        status: statuses.find((s) => s >= 200) ?? 0,
        statuses,
        head: split === -1 ? final : final.slice(0, split),
        body: split === -1 ? "" : final.slice(split + 4),
        raw,
      });
    });
  });
}
