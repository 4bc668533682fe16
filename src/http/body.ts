/**
 * Request bodies: byte-limited reading and strict JSON parsing.
 * - the Content-Length is checked before reading; a streamed body is counted while it arrives;
 * - nesting deeper than LIMITS.jsonMaxDepth is refused by a linear pre-scan (before JSON.parse can
 *   recurse), and the keys __proto__/constructor/prototype are refused anywhere, so client JSON can
 *   never pollute a prototype when merged into server objects;
 * - invalid UTF-8 is refused; a leading UTF-8 BOM is stripped; duplicate keys: the last one wins
 *   (JSON.parse semantics) and what will be written is shown to the host in the approval.
 */
import type { IncomingMessage } from "node:http";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** Reads the whole body as bytes, refusing more than maxBytes (413 payload_too_large). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
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
export async function readJsonObject(req: IncomingMessage, maxBytes: number = LIMITS.jsonBodyBytes): Promise<Record<string, unknown>> {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && contentType !== "" && !isJsonContentType(contentType)) {
    throw new ApiError("unsupported_media", "Expected Content-Type: application/json");
  }
  const bytes = await readBody(req, maxBytes);
  return parseJsonObject(bytes);
}

/** Strictly parses bytes into a JSON object (see the module comment). */
export function parseJsonObject(bytes: Buffer): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
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
    value = JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "Request body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ApiError("invalid_json", "Request body must be a JSON object");
  }
  const bad = findForbiddenKey(value);
  if (bad !== undefined) {
    throw new ApiError("invalid_json", "Request body contains a forbidden key", { key: bad });
  }
  return value as Record<string, unknown>;
}

/** Maximum bracket nesting of JSON text, ignoring brackets inside strings. Linear, no recursion. */
export function maxNesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

/** Finds __proto__/constructor/prototype anywhere in a parsed value (depth is already bounded). */
export function findForbiddenKey(value: unknown): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const bad = findForbiddenKey(item);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) return key;
    const bad = findForbiddenKey((value as Record<string, unknown>)[key]);
    if (bad !== undefined) return bad;
  }
  return undefined;
}
