/** CORS headers, sent on every response (errors and proxied responses included). */
import type { IncomingMessage, ServerResponse } from "node:http";

const ALLOW_HEADERS =
  "Authorization, Content-Type, X-OpenWork-Host-Token, X-OpenWork-Client-Id, X-OpenCode-Directory";
const ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS";

/**
 * With "*" any origin may call (auth is by bearer header, never cookies, so this grants nothing
 * by itself). Otherwise the Origin is echoed only on an exact match — no prefix/suffix/regex.
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): void {
  if (origins.includes("*")) {
    res.setHeader("Access-Control-Allow-Origin", "*");
  } else {
    const origin = req.headers.origin;
    if (typeof origin === "string" && origins.includes(origin)) {
      res.setHeader("Access-Control-Allow-Origin", origin);
    } else {
      // No match: no CORS headers at all (the browser blocks the read).
      res.setHeader("Vary", "Origin");
      return;
    }
  }
  res.setHeader("Access-Control-Allow-Headers", ALLOW_HEADERS);
  res.setHeader("Access-Control-Allow-Methods", ALLOW_METHODS);
  res.setHeader("Access-Control-Max-Age", "600");
  res.setHeader("Vary", "Origin");
}
