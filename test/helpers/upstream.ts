/**
 * A test upstream (node:http) that records every request it receives (method, target, headers,
 * body size) and answers with a per-test handler. Used by the proxy tests and the proxy bench.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  body: Buffer;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, rec: Recorded) => void | Promise<void>;

export interface TestUpstream {
  url: string;
  port: number;
  server: Server;
  requests: Recorded[];
  /** Replace the answer for following requests. */
  handle(handler: UpstreamHandler): void;
  /** Sockets currently open to the upstream. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** Default answer: `{"ok":true,"method","url"}` after the whole body was read. */
const echo: UpstreamHandler = (req, res) => {
  const body = JSON.stringify({ ok: true, method: req.method, url: req.url });
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
};

/**
 * Starts the upstream on a free loopback port. Bodies are counted, and kept only up to
 * `keepBytes` (default 1 MiB) so a 100 MB upload does not fill the test's memory.
 */
export async function startUpstream(options: { keepBytes?: number; readBody?: boolean } = {}): Promise<TestUpstream> {
  const requests: Recorded[] = [];
  const sockets = new Set<Socket>();
  let handler: UpstreamHandler = echo;
  const keep = options.keepBytes ?? 1024 * 1024;
  const server = createServer((req, res) => {
    const rec: Recorded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: 0, body: Buffer.alloc(0) };
    requests.push(rec);
    if (options.readBody === false) {
      void handler(req, res, rec);
      return;
    }
    const kept: Buffer[] = [];
    let keptBytes = 0;
    req.on("data", (c: Buffer) => {
      rec.bodyBytes += c.length;
      if (keptBytes < keep) {
        kept.push(c);
        keptBytes += c.length;
      }
    });
    req.on("end", () => {
      rec.body = Buffer.concat(kept);
      void Promise.resolve(handler(req, res, rec)).catch(() => res.destroy());
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    sockets,
    handle(h) {
      handler = h;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Answers 200 with a JSON body that never ends (1 MiB of spaces at a time, with backpressure)
 * until the client goes away or `limit` bytes were sent; returns the most sent to one request.
 */
export function answerWithoutEnd(up: TestUpstream, limit = 100 * 1024 * 1024): { most(): number } {
  let most = 0;
  up.handle((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (!res.destroyed && sent < limit) {
        sent += chunk.length;
        most = Math.max(most, sent);
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  });
  return { most: () => most };
}
