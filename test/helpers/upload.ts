/** Streams a request body chunk by chunk (with backpressure) and collects the answer; tolerant of the server closing early. */
import { request } from "node:http";
import { readResponse } from "./response.ts";

export interface UploadResult {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  headers: Record<string, unknown>;
}

export function streamRequest(
  url: string,
  opts: { method?: string; headers: Record<string, string>; chunks: () => AsyncIterable<Buffer> | Iterable<Buffer>; abortAfterBytes?: number },
): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = request(url, { method: opts.method ?? "POST", headers: opts.headers, agent: false }, (res) => {
      // A response error is ignored: the request's own error (below) settles the call.
      readResponse(res).then(({ json, text }) => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, json, text, headers: res.headers });
      }, () => {});
    });
    req.on("error", (err) => {
      if (!settled) {
        settled = true;
        if (opts.abortAfterBytes !== undefined) resolve({ status: 0, json: undefined, text: "", headers: {} });
        else reject(err);
      }
    });
    void (async () => {
      let sent = 0;
      try {
        for await (const chunk of opts.chunks()) {
          if (settled || req.destroyed) return;
          if (!req.write(chunk)) await new Promise<void>((r) => { req.once("drain", r); req.once("close", r); });
          sent += chunk.length;
          if (opts.abortAfterBytes !== undefined && sent >= opts.abortAfterBytes) {
            req.destroy();
            return;
          }
        }
        req.end();
      } catch {
        req.destroy();
      }
    })();
  });
}

/** A multipart body around one file part, with optional extra text fields before it. */
export function multipartParts(boundary: string, file: { filename: string; size: number; fill?: number }, fields: Record<string, string> = {}) {
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join("") +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const block = Buffer.alloc(256 * 1024, file.fill ?? 0x61);
  return function* (): Generator<Buffer> {
    yield head;
    let left = file.size;
    while (left > 0) {
      const n = Math.min(left, block.length);
      yield n === block.length ? block : block.subarray(0, n);
      left -= n;
    }
    yield tail;
  };
}
