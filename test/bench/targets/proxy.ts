/**
 * Child process for proxy.bench.ts: our server (real config loader and logger) on a temp
 * workspace with its OpenCode base URL pointed at the upstream given as argv[2]. Prints one JSON
 * line with its URL and client token, then serves until SIGTERM.
 */
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../../src/config.ts";
import { createServer } from "../../../src/server.ts";

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: proxy.ts <upstream url>");
const root = await mkdtemp(join(tmpdir(), "ow-bench-proxy-"));
const workspace = join(root, "workspace");
await mkdir(workspace);
const token = "bench-client-token";
const config = await loadConfig({
  argv: ["--workspace", workspace, "--port", "0", "--token", token, "--host-token", "bench-host-token", "--opencode-base-url", upstream],
  env: { HOME: root },
  cwd: root,
});
const server = await createServer(config);
const url = await server.listen();
process.stdout.write(JSON.stringify({ url, token }) + "\n");

const stop = async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
