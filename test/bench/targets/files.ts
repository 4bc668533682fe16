/**
 * Child process for files.bench.ts: our server on a temp workspace holding 64 × 4 KiB files
 * (inbox limit 250 000 000, auto approval), and a bare node:http baseline that answers a
 * read-batch naively (readFile of each path, no checks). Prints one JSON line, serves until SIGTERM.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { benchRoot, listenBare, reportAndServe, startBenchServer } from "../target.ts";

const { root, workspace } = await benchRoot("ow-bench-files-");
await mkdir(join(workspace, "docs"));
const paths: string[] = [];
for (let i = 0; i < 64; i++) {
  const rel = `docs/file-${i}.md`;
  await writeFile(join(workspace, rel), Buffer.alloc(4096, 0x61 + (i % 26)));
  paths.push(rel);
}
const { server, url, token } = await startBenchServer(root, workspace, ["--approval", "auto", "--log-format", "json"], { OPENWORK_INBOX_MAX_BYTES: "250000000" });

// Baseline: what a naive server does for the same request (no session, no containment, no stat).
const { bare, bareUrl } = await listenBare((req, res) => {
  if (req.url === "/upload") {
    // Baseline for uploads: the whole body hashed and written to a file, no parsing, no checks.
    void (async () => {
      const hash = createHash("sha256");
      const out = await open(join(root, "bare-upload.bin"), "w");
      for await (const c of req as AsyncIterable<Buffer>) {
        hash.update(c);
        await out.write(c);
      }
      await out.sync();
      await out.close();
      res.end(JSON.stringify({ sha256: hash.digest("hex") }));
    })();
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { paths: string[] };
    const items = await Promise.all(
      body.paths.map(async (p) => {
        const data = await readFile(join(workspace, p));
        return { ok: true, path: p, kind: "file", bytes: data.length, contentBase64: data.toString("base64") };
      }),
    );
    const text = JSON.stringify({ items });
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
  });
});
reportAndServe({ url, bareUrl, token, workspace, paths, pid: process.pid }, { server, bare, root });
