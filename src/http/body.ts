/**
 * Request bodies: byte-limited reading and strict JSON parsing.
 * - the Content-Length is checked before reading; a streamed body is counted while it arrives;
 * - nesting deeper than LIMITS.jsonMaxDepth is refused by a linear pre-scan (before JSON.parse can
 *   recurse), and the keys __proto__/constructor/prototype are refused anywhere, so client JSON can
 *   never pollute a prototype when merged into server objects; numbers beyond a double are refused;
 * - invalid UTF-8 is refused; a leading UTF-8 BOM is stripped; duplicate keys: the last one wins
 *   (JSON.parse semantics) and what will be written is shown to the host in the approval.
 */
import type { IncomingMessage } from "node:http";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";
import { LiftedString, liftLongStrings, restoreLifted } from "../formats/lifted-json.ts";
import { maxNesting } from "../formats/json-nesting.ts";

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Reads the whole body as bytes, refusing more than maxBytes (413 payload_too_large). `account`
 * is told the declared length first, then the running total (it may refuse by throwing).
 */
export async function readBody(req: IncomingMessage, maxBytes: number, account?: (bytes: number) => void): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw tooLarge(maxBytes);
  }
  if (declared !== undefined) account?.(Number(declared));
  // With a declared length the body is copied once into its final buffer (no chunk list + concat:
  // a 60 MB body would briefly take 120 MB); Node's parser never delivers more than declared.
  const into = declared !== undefined ? Buffer.allocUnsafe(Number(declared)) : undefined;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (total + chunk.length > (into?.length ?? maxBytes)) throw tooLarge(maxBytes);
    if (into) chunk.copy(into, total);
    else chunks.push(chunk);
    total += chunk.length;
    account?.(total);
  }
  return into ? into.subarray(0, total) : Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError("payload_too_large", "Request body is too large", { maxBytes });
}

/** True for application/json and any +json type (parameters ignored). */
function isJsonContentType(value: string): boolean {
  const type = value.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/**
 * Reads a JSON object body. A missing Content-Type is accepted (many clients omit it); a
 * non-JSON Content-Type is refused with 415, which also closes the browser "simple request"
 * path. An empty body reads as {}.
 */
export async function readJsonObject(req: IncomingMessage, maxBytes: number = LIMITS.jsonBodyBytes, account?: (bytes: number) => void, liftStrings = false): Promise<Record<string, unknown>> {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && contentType !== "" && !isJsonContentType(contentType)) {
    throw new ApiError("unsupported_media", "Expected Content-Type: application/json");
  }
  const bytes = await readBody(req, maxBytes, account);
  return parseJsonObject(bytes, liftStrings);
}

/**
 * Strictly parses bytes into a JSON object (see the module comment). With `liftStrings`, long
 * plain strings become LiftedString views of the bytes instead of copies (formats/lifted-json.ts).
 */
export function parseJsonObject(bytes: Buffer, liftStrings = false): Record<string, unknown> {
  const { text: rest, lifted, prefix } = liftStrings ? liftLongStrings(bytes, LIMITS.liftedStringMinBytes) : { text: bytes, lifted: [], prefix: "" };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(rest);
  } catch {
    throw new ApiError("invalid_json", "Request body is not valid UTF-8");
  }
  if (text.trim() === "") return {};
  const depth = maxNesting(text);
  if (depth > LIMITS.jsonMaxDepth) {
    throw new ApiError("invalid_json", `JSON is nested deeper than ${LIMITS.jsonMaxDepth} levels`);
  }
  let value: unknown;
  try {
    value = lifted.length > 0 ? JSON.parse(text, restoreLifted(lifted, prefix)) : JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "Request body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError("invalid_json", "Request body must be a JSON object");
  }
  rejectUnsafeValues(value);
  return value as Record<string, unknown>;
}

/**
 * Refuses what JSON.parse accepts but must not reach the server: __proto__/constructor/prototype
 * keys anywhere, and numbers too large for a double (`1e400` parses as Infinity and would be
 * written back as null). Depth is already bounded.
 */
function rejectUnsafeValues(value: unknown): void {
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new ApiError("invalid_json", "Request body contains a number out of range");
  }
  if (value === null || typeof value !== "object" || value instanceof LiftedString) return;
  if (Array.isArray(value)) {
    for (const item of value) rejectUnsafeValues(item);
    return;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) throw new ApiError("invalid_json", "Request body contains a forbidden key", { key });
    rejectUnsafeValues((value as Record<string, unknown>)[key]);
  }
}
