/**
 * Helpers for the benchmark child processes in targets/: a temp root with a workspace, our server
 * started through the real config loader, a bare node:http baseline, and the one JSON line the
 * parent waits for (see startChildServer in lib.ts). Kept apart from lib.ts so the load generator
 * process never loads the server's code.
 */
import { createServer as createBare, type RequestListener, type Server } from "node:http";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { loadConfig as LoadConfig } from "../../src/config.ts";
import type { createServer as CreateServer, OpenworkServer } from "../../src/server.ts";
import type { createLogger as CreateLogger } from "../../src/log.ts";
import { pathToFileURL } from "node:url";

/**
 * The server under test is the compiled JavaScript in dist/ — what the published package runs —
 * when BENCH_SOURCE is unset (`npm run bench` builds first); BENCH_SOURCE=1 measures src/ via tsx;
 * BENCH_DIST=<dir> another build (core.bench's baseline of an earlier commit).
 */
const modules = process.env.BENCH_DIST ? pathToFileURL(process.env.BENCH_DIST + "/").href : new URL(process.env.BENCH_SOURCE ? "../../src/" : "../../dist/", import.meta.url).href;
const ext = process.env.BENCH_SOURCE && !process.env.BENCH_DIST ? ".ts" : ".js";
const { loadConfig } = (await import(new URL(`config${ext}`, modules).href)) as { loadConfig: typeof LoadConfig };
const { createServer } = (await import(new URL(`server${ext}`, modules).href)) as { createServer: typeof CreateServer };
const { createLogger } = (await import(new URL(`log${ext}`, modules).href)) as { createLogger: typeof CreateLogger };

/** The client token every bench target uses. */
export const BENCH_TOKEN = "bench-client-token";

/** A fresh temp root (`prefix` + random) holding an empty `workspace` folder. */
export async function benchRoot(prefix: string): Promise<{ root: string; workspace: string }> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const workspace = join(root, "workspace");
  await mkdir(workspace, { recursive: true });
  return { root, workspace };
}

/**
 * Our server on port 0 (real config loader, real logger to stderr) serving `workspace`, with HOME
 * and cwd at `root`; `argv` and `env` are added to the common flags.
 */
export async function startBenchServer(
  root: string,
  workspace: string,
  argv: string[] = [],
  env: Record<string, string> = {},
): Promise<{ server: OpenworkServer; url: string; token: string }> {
  const token = BENCH_TOKEN;
  const config = await loadConfig({
    argv: ["--workspace", workspace, "--port", "0", "--token", token, "--host-token", "bench-host-token", ...argv],
    env: { HOME: root, ...env },
    cwd: root,
  });
  // The CLI's logger (buffered, request lines on by default), writing to this process's stdout: a file (lib.ts).
  const log = createLogger({ format: config.logFormat, verbose: false, buffered: true });
  const server = await createServer(config, { log });
  const url = await server.listen();
  return { server, url, token };
}

/** A bare node:http baseline server on 127.0.0.1, port 0. */
export async function listenBare(handler: RequestListener): Promise<{ bare: Server; bareUrl: string }> {
  const bare = createBare(handler);
  await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
  return { bare, bareUrl: `http://127.0.0.1:${(bare.address() as AddressInfo).port}` };
}

/** Writes the one JSON line the parent waits for to fd 3 (stdout and stderr are the server's log). */
export function reportToParent(info: Record<string, unknown>): void {
  writeSync(3, JSON.stringify(info) + "\n");
}

/**
 * Prints `info` as the one JSON line the parent waits for, then serves until SIGTERM/SIGINT: closes
 * the bare server (if any) and ours, deletes `root` (if given) and exits.
 */
export function reportAndServe(info: Record<string, unknown>, close: { server: OpenworkServer; bare?: Server; root?: string }): void {
  reportToParent(info);
  const stop = async () => {
    close.bare?.close();
    await close.server.close();
    if (close.root) await rm(close.root, { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}
