/**
 * Streaming multipart/form-data parser (RFC 7578 / RFC 2046), ours.
 *
 * MultipartParser is a push state machine: feed it chunks of any size (down to one byte) and it
 * returns events — part headers, body data, part end, end. The delimiter ("\r\n--" + boundary) is
 * searched across chunk edges by carrying at most delimiter-length bytes of lookbehind, so memory
 * is bounded by the header block limit whatever the body size. Data events are views into the
 * current chunk: consume them before pushing the next one.
 */
import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

export interface PartHeaders {
  /** The `name` of Content-Disposition: form-data. */
  name: string;
  /** Decoded file name (filename* preferred over filename), when the part is a file. */
  filename?: string;
  contentType?: string;
}

export type MultipartEvent =
  | { type: "part"; headers: PartHeaders }
  | { type: "data"; data: Buffer }
  | { type: "partEnd" }
  | { type: "end" };

export interface MultipartLimits {
  headerBytes: number;
  maxParts: number;
}

/** Thrown for any malformed body; the route answers 400 invalid_payload with its message. */
export class MultipartError extends Error {
  override name = "MultipartError";
}

export function malformed(reason?: string): ApiError {
  return new ApiError("invalid_payload", "Malformed multipart/form-data", reason ? { reason } : undefined);
}

const CR = 0x0d;
const LF = 0x0a;
const CRLF_CRLF = Buffer.from("\r\n\r\n");

// RFC 2046 bchars (plus the characters it allows), 1..70 characters, not ending with a space.
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * Extracts the boundary of a `multipart/form-data` Content-Type. Throws 400 invalid_payload
 * "Expected multipart/form-data" for another type, "Malformed multipart/form-data" for a missing,
 * empty or invalid boundary. A quoted boundary is accepted.
 */
export function boundaryFromContentType(contentType: string | undefined): string {
  const [typeRaw, ...params] = splitParams(contentType ?? "");
  if ((typeRaw ?? "").trim().toLowerCase() !== "multipart/form-data") {
    throw new ApiError("invalid_payload", "Expected multipart/form-data");
  }
  let boundary: string | undefined;
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq < 0) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    if (key !== "boundary") continue;
    boundary = unquote(p.slice(eq + 1).trim());
  }
  if (boundary === undefined || !BOUNDARY_RE.test(boundary)) throw malformed("invalid boundary");
  return boundary;
}

/** Splits a header value on `;` outside quoted strings. */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      cur += ch;
      if (ch === "\\" && i + 1 < value.length) cur += value[++i];
      else if (ch === '"') quoted = false;
    } else if (ch === '"') {
      quoted = true;
      cur += ch;
    } else if (ch === ";") {
      out.push(cur);
      cur = "";
    } else {
      cur += ch;
    }
  }
  if (quoted) throw malformed("unterminated quoted string");
  out.push(cur);
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return v;
}

/** RFC 5987 ext-value (`UTF-8''%e2%82%ac.txt`) → string, or undefined when unusable (fall back to filename). */
function decodeExtValue(v: string): string | undefined {
  const m = /^([A-Za-z0-9!#$%&+\-^_`{}~]+)'[A-Za-z0-9-]*'(.*)$/.exec(v);
  if (!m) return undefined;
  const charset = m[1]!.toLowerCase();
  const encoded = m[2]!;
  if (!/^(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*$/.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded.replace(/%([0-9A-Fa-f]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16))), "latin1");
  if (charset === "utf-8") {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
  }
  if (charset === "iso-8859-1" || charset === "us-ascii") return bytes.toString("latin1");
  return undefined; // unknown charset: ignore filename* (M20)
}

/** Parses one part's header block (without the final blank line). Throws MultipartError. */
export function parsePartHeaders(block: Buffer): PartHeaders {
  const text = block.toString("utf8");
  const lines = text.length === 0 ? [] : text.split("\r\n");
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of lines) {
    // Folded lines (leading SP/HT) are refused: CVE-2022-24434 crashed a parser on exactly this (M11, M15).
    if (line.startsWith(" ") || line.startsWith("\t")) throw new MultipartError("folded header line");
    if (line.includes("\r") || line.includes("\n")) throw new MultipartError("bare CR or LF in a header");
    const colon = line.indexOf(":");
    if (colon <= 0) throw new MultipartError("header line without a name");
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(key)) throw new MultipartError("invalid header name");
    if (key === "content-disposition") {
      if (disposition !== undefined) throw new MultipartError("duplicate Content-Disposition");
      disposition = value;
    } else if (key === "content-type") {
      contentType = value;
    }
    // Content-Transfer-Encoding and others are ignored: bytes are stored raw (RFC 7578 §4.7, M28).
  }
  if (disposition === undefined) throw new MultipartError("part without Content-Disposition");
  const [kind, ...params] = splitParams(disposition);
  if ((kind ?? "").trim().toLowerCase() !== "form-data") throw new MultipartError("Content-Disposition is not form-data");
  let name: string | undefined;
  let filename: string | undefined;
  let filenameExt: string | undefined;
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq < 0) continue;
    const key = p.slice(0, eq).trim().toLowerCase();
    const raw = p.slice(eq + 1).trim();
    if (key === "name") name = unquote(raw);
    else if (key === "filename") filename = unquote(raw);
    else if (key === "filename*") filenameExt = decodeExtValue(raw);
  }
  if (name === undefined) throw new MultipartError("part without a name");
  const headers: PartHeaders = { name };
  // filename* wins when it decodes (like busboy, M21); otherwise the plain filename is used.
  const chosen = filenameExt ?? filename;
  if (chosen !== undefined) headers.filename = chosen;
  if (contentType !== undefined) headers.contentType = contentType;
  return headers;
}

const State = { Preamble: 0, AfterDelimiter: 1, Headers: 2, Body: 3, Epilogue: 4 } as const;
type StateValue = (typeof State)[keyof typeof State];

/** The push parser. */
export class MultipartParser {
  private readonly delimiter: Buffer;
  private state: StateValue = State.Preamble;
  /** Bytes carried over between chunks (partial delimiter, header block, or delimiter suffix). */
  private carry: Buffer;
  private parts = 0;
  private readonly limits: MultipartLimits;

  constructor(boundary: string, limits: Partial<MultipartLimits> = {}) {
    this.delimiter = Buffer.from("\r\n--" + boundary, "latin1");
    this.limits = { headerBytes: LIMITS.multipartHeaderBytes, maxParts: LIMITS.multipartMaxParts, ...limits };
    // A virtual CRLF lets a body that starts directly with "--boundary" match the delimiter.
    this.carry = Buffer.from("\r\n");
  }

  /** True once the final delimiter has been seen. */
  get done(): boolean {
    return this.state === State.Epilogue;
  }

  /** Feeds one chunk; returns the events it completes. Throws MultipartError when malformed. */
  push(chunk: Buffer): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    if (this.state === State.Epilogue) return events; // epilogue ignored (M09)
    let buf = this.carry.length ? (chunk.length ? Buffer.concat([this.carry, chunk]) : this.carry) : chunk;
    this.carry = EMPTY;
    while (buf.length > 0) {
      switch (this.state) {
        case State.Preamble:
        case State.Body: {
          const idx = buf.indexOf(this.delimiter);
          if (idx >= 0) {
            if (this.state === State.Body) {
              if (idx > 0) events.push({ type: "data", data: buf.subarray(0, idx) });
              events.push({ type: "partEnd" });
            }
            buf = buf.subarray(idx + this.delimiter.length);
            this.state = State.AfterDelimiter;
            continue;
          }
          const keep = this.partialDelimiterStart(buf);
          if (this.state === State.Body && keep > 0) events.push({ type: "data", data: buf.subarray(0, keep) });
          this.carry = Buffer.from(buf.subarray(keep));
          return events;
        }
        case State.AfterDelimiter: {
          // After the delimiter: "--" (close delimiter) or optional transport padding then CRLF.
          if (buf.length < 2) {
            this.carry = Buffer.from(buf);
            return events;
          }
          if (buf[0] === 0x2d && buf[1] === 0x2d) {
            this.state = State.Epilogue;
            events.push({ type: "end" });
            return events;
          }
          let i = 0;
          while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
          if (i > 64) throw new MultipartError("garbage after boundary");
          if (i + 2 > buf.length) {
            this.carry = Buffer.from(buf);
            return events;
          }
          if (buf[i] !== CR || buf[i + 1] !== LF) throw new MultipartError("garbage after boundary");
          buf = buf.subarray(i + 2);
          if (++this.parts > this.limits.maxParts) throw new MultipartError("too many parts");
          this.state = State.Headers;
          continue;
        }
        case State.Headers: {
          // Header block ends with an empty line; a part without headers starts with CRLF directly.
          let end: number;
          let skip: number;
          if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) {
            end = 0;
            skip = 2;
          } else {
            end = buf.indexOf(CRLF_CRLF);
            skip = 4;
          }
          if (end < 0) {
            if (buf.length > this.limits.headerBytes + 4) throw new MultipartError("part header block too large");
            this.carry = Buffer.from(buf);
            return events;
          }
          if (end > this.limits.headerBytes) throw new MultipartError("part header block too large");
          const headers = parsePartHeaders(buf.subarray(0, end));
          events.push({ type: "part", headers });
          buf = buf.subarray(end + skip);
          this.state = State.Body;
          continue;
        }
        default:
          return events;
      }
    }
    return events;
  }

  /** Signals the end of the body. Throws MultipartError when the final boundary was never seen. */
  finish(): void {
    if (this.state !== State.Epilogue) throw new MultipartError("unexpected end of body");
  }

  /** Index where a suffix of `buf` that is a proper prefix of the delimiter starts (buf.length if none). */
  private partialDelimiterStart(buf: Buffer): number {
    const d = this.delimiter;
    const from = Math.max(0, buf.length - d.length + 1);
    for (let k = buf.indexOf(CR, from); k >= 0 && k < buf.length; k = buf.indexOf(CR, k + 1)) {
      const n = buf.length - k;
      if (buf.compare(d, 0, n, k, buf.length) === 0) return k;
    }
    return buf.length;
  }
}

const EMPTY = Buffer.alloc(0);

/** A file part streamed to disk by receiveMultipart. */
export interface ReceivedFile {
  field: string;
  filename?: string;
  contentType?: string;
  bytes: number;
  sha256: string;
  tempPath: string;
}

export interface ReceiveOptions {
  boundary: string;
  /** The one field whose file goes to disk (others with a filename are read and dropped). */
  fileField: string;
  /** Creates the staging file (O_EXCL) and returns its path and handle. */
  createTemp(): Promise<{ path: string; fh: FileHandle }>;
  /** Size limit of the file part, enforced while streaming (413 file_too_large). */
  maxFileBytes: number;
  limits?: Partial<MultipartLimits>;
  fieldBytes?: number;
}

export interface Received {
  fields: Map<string, string>;
  file?: ReceivedFile;
}

/**
 * Writes a file part to disk in batches: data views are queued and written with one writev per
 * ~1 MiB while the next bytes are parsed; the reader waits (socket backpressure) only when more
 * than HIGH_WATER bytes are queued, so memory stays bounded whatever the upload size.
 */
class FileSink {
  private static readonly BATCH = 1 << 20;
  private static readonly HIGH_WATER = 8 << 20;
  private queue: Buffer[] = [];
  private queued = 0;
  private inFlight: Promise<void> | undefined;
  private failed: unknown;

  constructor(private readonly fh: FileHandle) {}

  /** Queues `data` (a view that stays valid: chunks are never reused); resolves when the caller may read on. */
  async push(data: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    this.queue.push(data);
    this.queued += data.length;
    if (this.queued >= FileSink.BATCH && !this.inFlight) this.startWrite();
    if (this.queued >= FileSink.HIGH_WATER) await this.drain();
  }

  private startWrite(): void {
    const bufs = this.queue;
    this.queue = [];
    this.queued = 0;
    this.inFlight = writeAll(this.fh, bufs).then(
      () => {
        this.inFlight = undefined;
        if (this.queued >= FileSink.BATCH) this.startWrite();
      },
      (err: unknown) => {
        this.inFlight = undefined;
        this.failed = err;
      },
    );
  }

  /** Waits until everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.inFlight || this.queued > 0) {
      if (this.failed) throw this.failed;
      if (!this.inFlight) this.startWrite();
      await this.inFlight;
    }
    if (this.failed) throw this.failed;
  }

  /** Waits for an in-flight write to settle (before closing the handle on failure). */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => {});
  }
}

async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let pending = bufs;
  while (pending.length > 0) {
    const { bytesWritten } = await fh.writev(pending);
    let n = bytesWritten;
    const rest: Buffer[] = [];
    for (const b of pending) {
      if (n >= b.length) n -= b.length;
      else {
        rest.push(n > 0 ? b.subarray(n) : b);
        n = 0;
      }
    }
    pending = rest;
  }
}

/**
 * Parses a multipart request as a stream: the file part's bytes go to a staging file through a
 * FileSink (batched writes; reading pauses past its high-water mark, so memory stays bounded), the
 * size limit is enforced as bytes arrive, text fields are capped. On any failure the staging file
 * is removed and the error is rethrown (ApiError 400/413 for bad input).
 */
export async function receiveMultipart(req: Readable, opts: ReceiveOptions): Promise<Received> {
  const parser = new MultipartParser(opts.boundary, opts.limits);
  const fieldBytes = opts.fieldBytes ?? LIMITS.multipartFieldBytes;
  const fields = new Map<string, string>();
  let file: ReceivedFile | undefined;
  let fh: FileHandle | undefined;
  let sink: FileSink | undefined;
  let hash: Hash | undefined;
  // What the current part is: the file, a text field being collected, or something to skip.
  let current: { kind: "file" } | { kind: "field"; name: string; chunks: Buffer[]; size: number } | { kind: "skip" } | undefined;
  try {
    // destroyOnReturn:false: an early error must not reset the socket before the error answer is sent.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      let events: MultipartEvent[];
      try {
        events = parser.push(chunk);
      } catch (err) {
        if (err instanceof MultipartError) throw malformed(err.message);
        throw err;
      }
      for (const ev of events) {
        if (ev.type === "part") {
          const h = ev.headers;
          if (h.filename !== undefined && h.name === opts.fileField) {
            if (file) throw new ApiError("invalid_payload", "Only one file part is allowed");
            const t = await opts.createTemp();
            fh = t.fh;
            sink = new FileSink(t.fh);
            hash = createHash("sha256");
            file = { field: h.name, filename: h.filename, bytes: 0, sha256: "", tempPath: t.path };
            if (h.contentType !== undefined) file.contentType = h.contentType;
            current = { kind: "file" };
          } else if (h.filename === undefined) {
            current = { kind: "field", name: h.name, chunks: [], size: 0 };
          } else {
            current = { kind: "skip" };
          }
        } else if (ev.type === "data") {
          if (current?.kind === "file") {
            file!.bytes += ev.data.length;
            if (file!.bytes > opts.maxFileBytes) {
              throw new ApiError("file_too_large", "File is too large", { maxBytes: opts.maxFileBytes });
            }
            hash!.update(ev.data);
            await sink!.push(ev.data);
          } else if (current?.kind === "field") {
            current.size += ev.data.length;
            if (current.size > fieldBytes) throw malformed("field value too large");
            current.chunks.push(Buffer.from(ev.data));
          }
        } else if (ev.type === "partEnd") {
          if (current?.kind === "file") {
            await sink!.drain();
            await fh!.sync();
            await fh!.close();
            fh = undefined;
            file!.sha256 = hash!.digest("hex");
          } else if (current?.kind === "field") {
            // Repeated text fields: the first one wins (deterministic; the approval shows the result).
            if (!fields.has(current.name)) fields.set(current.name, Buffer.concat(current.chunks).toString("utf8"));
          }
          current = undefined;
        }
      }
    }
    try {
      parser.finish();
    } catch (err) {
      if (err instanceof MultipartError) throw malformed(err.message);
      throw err;
    }
    const out: Received = { fields };
    if (file) out.file = file;
    return out;
  } catch (err) {
    await sink?.settle();
    if (fh) await fh.close().catch(() => {});
    if (file) await unlink(file.tempPath).catch(() => {});
    throw err;
  }
}
