/**
 * Streaming file downloads: octet-stream with Content-Length, a safe Content-Disposition,
 * ETag/Last-Modified with If-None-Match → 304, and one byte range (206/416). Several ranges are
 * answered with the full body (200): no multipart/byteranges amplification (P24).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { BigIntStats } from "node:fs";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { revisionOf, mtimeMsOf } from "../fs/revision.ts";
import { etagMatches } from "./static.ts";

/** `attachment; filename="<ascii-safe>"; filename*=UTF-8''<percent-encoded>` — never raw quotes, CR or LF. */
export function contentDisposition(name: string): string {
  const base = name.split("/").pop() || "download";
  // Anything outside printable ASCII, and the characters that could end or escape the quoted string, become "_".
  const ascii = base.replace(/[^\x20-\x7e]|["\\%;]/g, "_");
  const encoded = encodeURIComponent(base).replace(/['()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The strong ETag of a file (its revision, quoted). */
export function etagOf(st: BigIntStats): string {
  return `"${revisionOf(st)}"`;
}

/** Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range. "multi" for several; undefined to ignore. */
export function parseRange(header: string, size: number): { start: number; end: number } | "unsatisfiable" | "multi" | undefined {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return undefined;
  const spec = m[1]!;
  if (spec.includes(",")) return "multi";
  const r = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(spec);
  if (!r) return undefined;
  const [, a, b] = r;
  if (a === "" && b === "") return undefined;
  if (a === "") {
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return undefined;
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return undefined;
  if (b !== "" && Number(b) < start) return undefined; // syntactically invalid range: ignored (RFC 9110 §14.2)
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * Streams an open regular file to `res` and closes the handle. Honors HEAD, If-None-Match (304),
 * If-Range and a single Range. The caller has already proven the file is inside its root.
 */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: { fd: number; stat: BigIntStats; name: string; close(): Promise<void> }): Promise<void> {
  const { fd, stat } = file;
  try {
    const size = Number(stat.size);
    const etag = etagOf(stat);
    res.setHeader("ETag", etag);
    res.setHeader("Last-Modified", new Date(mtimeMsOf(stat)).toUTCString());
    res.setHeader("Accept-Ranges", "bytes");
    // Never let a browser render a workspace file in our origin (P25).
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Content-Security-Policy", "sandbox");
    res.setHeader("Cache-Control", "private, no-cache");
    res.setHeader("Content-Disposition", contentDisposition(file.name));
    const inm = req.headers["if-none-match"];
    if (typeof inm === "string" && etagMatches(inm, etag)) {
      res.writeHead(304);
      res.end();
      return;
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const rangeHeader = req.headers.range;
    const ifRange = req.headers["if-range"];
    const rangeApplies = typeof rangeHeader === "string" && (typeof ifRange !== "string" || ifRange.trim() === etag);
    if (rangeApplies) {
      const r = parseRange(rangeHeader, size);
      if (r === "unsatisfiable") {
        res.setHeader("Content-Range", `bytes */${size}`);
        res.setHeader("Content-Type", "application/json; charset=utf-8");
        const body = JSON.stringify({ code: "range_not_satisfiable", message: "Range not satisfiable" });
        res.setHeader("Content-Length", Buffer.byteLength(body));
        res.removeHeader("Content-Disposition");
        res.writeHead(416);
        res.end(body);
        return;
      }
      if (r && r !== "multi") {
        start = r.start;
        end = r.end;
        status = 206;
        res.setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
      }
    }
    res.setHeader("Content-Type", "application/octet-stream");
    res.setHeader("Content-Length", String(Math.max(0, end - start + 1)));
    res.writeHead(status);
    if (req.method === "HEAD" || size === 0 || end < start) {
      res.end();
      return;
    }
    const stream = createReadStream("", { fd, start, end, autoClose: false });
    try {
      await pipeline(stream, res);
    } catch {
      // The client went away mid-download: nothing to answer.
      res.destroy();
    }
  } finally {
    await file.close().catch(() => {});
  }
}
