/**
 * Child process for core.bench.ts: our server (the CLI's buffered logger, request lines on unless
 * `--no-log-requests` is passed) on a temp workspace with three MCP servers and 30 audited
 * writes; a bare node:http server answering the same /health and /status bytes with only
 * Content-Type and Content-Length; and a second bare server sending our full head (CORS, nosniff)
 * — Node's own ceiling for this contract. Prints one JSON line, then serves until SIGTERM.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { benchRoot, listenBare, reportAndServe, startBenchServer } from "../target.ts";

const { root, workspace } = await benchRoot("ow-bench-");
await writeFile(
  join(workspace, "opencode.json"),
  JSON.stringify({
    $schema: "https://opencode.ai/config.json",
    mcp: {
      gh: { type: "local", command: ["npx", "-y", "gh-mcp"], environment: { GITHUB_TOKEN: "x" } },
      web: { type: "remote", url: "https://mcp.example/sse", headers: { Authorization: "Bearer y" } },
      fs: { type: "local", command: ["mcp-fs", "/tmp"] },
    },
  }),
);
const { server, url, token } = await startBenchServer(root, workspace, ["--approval", "auto", ...process.argv.slice(2)]);
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
const workspaceId = ((await (await fetch(`${url}/workspaces`, { headers: auth })).json()) as { items: { id: string }[] }).items[0]!.id;
for (let i = 0; i < 30; i++) {
  const res = await fetch(`${url}/workspace/${workspaceId}/plugins`, { method: "POST", headers: auth, body: JSON.stringify({ spec: `bench-plugin-${i}@1.0.0` }) });
  if (res.status !== 200) throw new Error(`plugin add answered ${res.status}`);
}

async function body(path: string): Promise<string> {
  const res = await fetch(url + path, { headers: auth });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  return res.text();
}
// The bare servers answer exactly the bytes ours answers (uptime frozen at this moment).
const bodies = new Map([["/health", await body("/health")], ["/status", await body("/status")]]);
const OUR_HEAD = ["Access-Control-Allow-Origin", "*", "Access-Control-Allow-Headers", "Authorization, Content-Type, X-OpenWork-Host-Token, X-OpenWork-Client-Id, X-OpenCode-Directory", "Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,OPTIONS", "Access-Control-Max-Age", "600", "Vary", "Origin", "Content-Type", "application/json; charset=utf-8", "X-Content-Type-Options", "nosniff"];
const { bare, bareUrl } = await listenBare((req, res) => {
  const b = bodies.get(req.url ?? "");
  if (b === undefined) return void res.writeHead(404).end();
  res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(b) });
  res.end(b);
});
const { bare: bareHead, bareUrl: bareHeadUrl } = await listenBare((req, res) => {
  const b = bodies.get(req.url ?? "");
  if (b === undefined) return void res.writeHead(404).end();
  res.writeHead(200, [...OUR_HEAD, "Content-Length", String(Buffer.byteLength(b))]);
  res.end(b);
});
process.on("exit", () => bareHead.close());
reportAndServe({ url, bareUrl, bareHeadUrl, token, workspaceId }, { server, bare, root });
