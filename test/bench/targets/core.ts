/**
 * Child process for core.bench.ts: our server (real config loader, real logger to stderr) on a
 * temp workspace, and a bare node:http server that answers the same JSON bodies with no routing,
 * auth or logging. Prints one JSON line with both URLs and the client token, then serves until
 * SIGTERM.
 */
import { createServer as createBare } from "node:http";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { loadConfig } from "../../../src/config.ts";
import { createServer } from "../../../src/server.ts";

const root = await mkdtemp(join(tmpdir(), "ow-bench-"));
const workspace = join(root, "workspace");
await mkdir(workspace);
const token = "bench-client-token";
const config = await loadConfig({
  argv: ["--workspace", workspace, "--port", "0", "--token", token, "--host-token", "bench-host-token", "--approval", "auto"],
  env: { HOME: root },
  cwd: root,
});
const server = await createServer(config);
const url = await server.listen();

async function body(path: string): Promise<string> {
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return res.text();
}
// The bare server answers exactly the bytes ours answers (uptime frozen at this moment).
const bodies = new Map([["/health", await body("/health")], ["/status", await body("/status")]]);
const bare = createBare((req, res) => {
  const b = bodies.get(req.url ?? "");
  if (b === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(b) });
  res.end(b);
});
await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}`;
process.stdout.write(JSON.stringify({ url, bareUrl, token, statusBytes: bodies.get("/status")!.length }) + "\n");

const stop = async () => {
  bare.close();
  await server.close();
  await rm(root, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
