// Route table: issue 5 — OpenCode and OpenCode Router proxies.
import type { RouteDef } from "../http/route.ts";

export const routes: RouteDef[] = [];

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { ServerContext } from "../context.ts";

/** WebSocket upgrades: returns true when the request was taken (answered or proxied). */
export function handleUpgrade(_server: ServerContext, _req: IncomingMessage, _socket: Duplex, _head: Buffer): boolean {
  return false;
}
