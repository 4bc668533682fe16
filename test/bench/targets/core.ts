/**
 * Child process for core.bench.ts: our server (real config loader, real logger to stderr) on a
 * temp workspace, and a bare node:http server that answers the same JSON bodies with no routing,
 * auth or logging. Prints one JSON line with both URLs and the client token, then serves until
 * SIGTERM.
 */
import { benchRoot, listenBare, reportAndServe, startBenchServer } from "../target.ts";

const { root, workspace } = await benchRoot("ow-bench-");
const { server, url, token } = await startBenchServer(root, workspace, ["--approval", "auto"]);

async function body(path: string): Promise<string> {
  const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return res.text();
}
// The bare server answers exactly the bytes ours answers (uptime frozen at this moment).
const bodies = new Map([["/health", await body("/health")], ["/status", await body("/status")]]);
const { bare, bareUrl } = await listenBare((req, res) => {
  const b = bodies.get(req.url ?? "");
  if (b === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(b) });
  res.end(b);
});
reportAndServe({ url, bareUrl, token, statusBytes: bodies.get("/status")!.length }, { server, bare, root });
