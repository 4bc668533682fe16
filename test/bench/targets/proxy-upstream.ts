/**
 * Child process for proxy.bench.ts: a stand-in OpenCode upstream (bare node:http) answering
 * GET /config with the body a fresh `opencode serve` returns. Prints one JSON line with its URL,
 * then serves until SIGTERM.
 */
import { writeSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const body = JSON.stringify({ $schema: "https://opencode.ai/config.json", command: {}, plugin: [], username: "unknown", mode: {}, agent: {} });
const server = createServer((req, res) => {
  if (!(req.url ?? "").startsWith("/config")) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body), vary: "Origin" });
  res.end(body);
});
server.keepAliveTimeout = 30_000;
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
writeSync(3, JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }) + "\n");
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
