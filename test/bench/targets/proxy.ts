/**
 * Child process for proxy.bench.ts: our server (real config loader and logger) on a temp
 * workspace with its OpenCode base URL pointed at the upstream given as argv[2]. Prints one JSON
 * line with its URL and client token, then serves until SIGTERM.
 */
import { benchRoot, reportAndServe, startBenchServer } from "../target.ts";

const upstream = process.argv[2];
if (!upstream) throw new Error("usage: proxy.ts <upstream url>");
const { root, workspace } = await benchRoot("ow-bench-proxy-");
const { server, url, token } = await startBenchServer(root, workspace, ["--opencode-base-url", upstream]);
reportAndServe({ url, token }, { server, root });
