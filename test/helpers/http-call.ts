/** Small HTTP clients for the proxy tests: byte-exact bodies, and raw requests over TCP. */
import { request, type IncomingHttpHeaders } from "node:http";
import { readResponse } from "./response.ts";
import { rawCollect } from "./raw.ts";

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
      readResponse(res).then(({ body, text, json }) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json }), reject);
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

/** A final (non-1xx) response with a Content-Length has fully arrived. */
function completeResponse(raw: string): boolean {
  const finals = [...raw.matchAll(/HTTP\/1\.1 ([2-9]\d\d)[^\r]*\r\n([\s\S]*?)\r\n\r\n/g)];
  const last = finals[finals.length - 1];
  if (!last) return false;
  const len = /content-length: *(\d+)/i.exec(last[2]!);
  const bodyStart = last.index! + last[0].length;
  return !!len && raw.length - bodyStart >= Number(len[1]);
}

/** Writes raw bytes; reads until the server closes the connection or `timeoutMs` passes. */
export async function rawExchange(baseUrl: string, payload: string | Buffer, timeoutMs = 5_000): Promise<RawExchange> {
  // A complete response with a Content-Length: stop waiting for keep-alive to expire.
  const raw = await rawCollect(baseUrl, payload, { timeoutMs, complete: completeResponse });
  const statuses = [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  const finalIdx = raw.search(/HTTP\/1\.[01] [2-9]\d\d/);
  const final = finalIdx === -1 ? raw : raw.slice(finalIdx);
  const split = final.indexOf("\r\n\r\n");
  return {
    status: statuses.find((s) => s >= 200) ?? 0,
    statuses,
    head: split === -1 ? final : final.slice(0, split),
    body: split === -1 ? "" : final.slice(split + 4),
    raw,
  };
}
