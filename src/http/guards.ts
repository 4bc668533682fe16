/** The guard that sits in front of routing: the Host check against DNS rebinding. */
import type { IncomingMessage } from "node:http";
import { ApiError } from "../errors.ts";

const LOOPBACK_BIND = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);
const LOOPBACK_HOSTNAME = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;
const lastAccepted: { host: string | undefined; allowed: readonly string[] | undefined } = { host: undefined, allowed: undefined };

/**
 * A server bound to loopback only answers requests whose Host names loopback: a web page on
 * another domain that re-binds its DNS name to 127.0.0.1 (DNS rebinding) gets 421. A server bound
 * to another address cannot know its public names, so it accepts any Host. Names configured as
 * allowed hosts (a reverse proxy's or tailnet name) are answered too.
 */
export function checkHost(req: IncomingMessage, bindHost: string, allowedHosts: readonly string[] = []): void {
  if (!LOOPBACK_BIND.has(bindHost)) return;
  const host = req.headers.host;
  if (host === undefined) return; // HTTP/1.0; HTTP/1.1 without Host is already a 400 from Node
  // Clients send the same Host on every request: the last accepted one is remembered (the answer
  // for a given string and configuration never changes).
  if (host === lastAccepted.host && allowedHosts === lastAccepted.allowed) return;
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  if (!LOOPBACK_HOSTNAME.test(hostname) && !allowedHosts.includes(hostname.toLowerCase())) {
    throw new ApiError("misdirected_request", "This server only answers to loopback host names");
  }
  lastAccepted.host = host;
  lastAccepted.allowed = allowedHosts;
}
