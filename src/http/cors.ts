/** CORS headers, sent on every response (errors and proxied responses included). */
import type { IncomingMessage } from "node:http";

const ALLOW_HEADERS =
  "Authorization, Content-Type, X-OpenWork-Host-Token, X-OpenWork-Client-Id, X-OpenCode-Directory";
const ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS";
const REST = ["Access-Control-Allow-Headers", ALLOW_HEADERS, "Access-Control-Allow-Methods", ALLOW_METHODS, "Access-Control-Max-Age", "600", "Vary", "Origin"];
const ANY_ORIGIN: readonly string[] = ["Access-Control-Allow-Origin", "*", ...REST];
const NO_MATCH: readonly string[] = ["Vary", "Origin"];

/**
 * The CORS headers of a request's answer as name/value pairs (responses add them when their
 * head is written, see http/response.ts). With "*" any origin may call (auth is by bearer header,
 * never cookies, so this grants nothing by itself). Otherwise the Origin is echoed only on an
 * exact match — no prefix/suffix/regex — and without a match there are no CORS headers at all.
 */
export function corsPairs(req: IncomingMessage, origins: readonly string[]): readonly string[] {
  if (origins.length === 1 && origins[0] === "*") return ANY_ORIGIN;
  const origin = req.headers.origin;
  if (typeof origin === "string" && origins.includes(origin)) return ["Access-Control-Allow-Origin", origin, ...REST];
  return NO_MATCH;
}
