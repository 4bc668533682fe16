/**
 * Files: (1) a 250 MB inbox upload — server RSS growth (sampled from /proc while streaming) and
 * MB/s versus `cp` of the same file on the same disk; (2) read-batch of 64 × 4 KiB files in
 * requests/s versus a bare node:http server doing a naive readFile of the same files.
 * Targets (spec): RSS growth < 64 MiB, upload ≥ 0.7× cp; read-batch ≥ 2× the reference.
 */
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { buildRef } from "./baseline.ts";
import { bestOfRounds, benchDurationMs, formatRatio, formatResult, startTarget, type BenchCase } from "./lib.ts";

const exec = promisify(execFile);
const UPLOAD_BYTES = 250_000_000;

async function rssOf(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, "utf8");
  const m = /VmRSS:\s+(\d+) kB/.exec(text);
  return m ? Number(m[1]) * 1024 : NaN;
}

async function makeFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, "w");
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, block.length);
    await fh.write(block, 0, n);
    left -= n;
  }
  await fh.close();
}

function upload(url: string, token: string, file: string, size: number): Promise<{ status: number; text: string }> {
  const boundary = "benchboundary0123456789";
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(head.length + size + tail.length) },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
    });
    req.on("error", reject);
    req.write(head);
    const rs = createReadStream(file, { highWaterMark: 256 * 1024 });
    rs.on("error", reject);
    rs.pipe(req, { end: false });
    rs.on("end", () => req.end(tail));
  });
}

export default async function run(): Promise<void> {
  const target = await startTarget("files");
  const { url, bareUrl, token, paths, pid } = target.info as { url: string; bareUrl: string; token: string; paths: string[]; pid: number };
  const scratch = await mkdtemp(join(tmpdir(), "ow-bench-upload-"));
  try {
    const wsId = ((await (await fetch(`${url}/workspaces`, { headers: { authorization: `Bearer ${token}` } })).json()) as { items: { id: string }[] }).items[0]!.id;

    // ---- 250 MB upload vs cp
    const src = join(scratch, "src.bin");
    await makeFile(src, UPLOAD_BYTES);
    const cpTimes: number[] = [];
    const upTimes: number[] = [];
    const bareTimes: number[] = [];
    let peakGrowth = 0;
    for (let round = 0; round < 2; round++) {
      const t0 = performance.now();
      await exec("cp", [src, join(scratch, `copy-${round}.bin`)]);
      cpTimes.push(performance.now() - t0);
      await rm(join(scratch, `copy-${round}.bin`));

      const tb = performance.now();
      const rb = await upload(`${bareUrl}/upload`, token, src, UPLOAD_BYTES);
      if (rb.status !== 200) throw new Error(`bare upload answered ${rb.status}`);
      bareTimes.push(performance.now() - tb);

      const rss0 = await rssOf(pid);
      let peak = rss0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await rssOf(pid).catch(() => peak));
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      const t1 = performance.now();
      const r = await upload(`${url}/workspace/${wsId}/inbox?path=bench/big-${round}.bin`, token, src, UPLOAD_BYTES);
      upTimes.push(performance.now() - t1);
      sampling = false;
      await sampler;
      if (r.status !== 200) throw new Error(`upload answered ${r.status}: ${r.text}`);
      peakGrowth = Math.max(peakGrowth, peak - rss0);
    }
    const best = (a: number[]) => Math.min(...a);
    const mbps = (ms: number) => UPLOAD_BYTES / 1e6 / (ms / 1000);
    const cpRate = mbps(best(cpTimes));
    const upRate = mbps(best(upTimes));
    console.log(`cp of a 250 MB file                ${cpRate.toFixed(0).padStart(7)} MB/s`);
    const bareRate = mbps(best(bareTimes));
    console.log(`bare node:http sha256+write upload ${bareRate.toFixed(0).padStart(7)} MB/s`);
    console.log(`inbox upload of the same file      ${upRate.toFixed(0).padStart(7)} MB/s   (${(upRate / cpRate).toFixed(2)}× cp; target ≥ 0.70×: ${upRate / cpRate >= 0.7 ? "met" : "NOT met"}; ${(upRate / bareRate).toFixed(2)}× bare)`);
    console.log(`server RSS growth during upload    ${(peakGrowth / 1048576).toFixed(1).padStart(7)} MiB   (target < 64 MiB: ${peakGrowth < 64 * 1048576 ? "met" : "NOT met"})`);
    await rm(src);

    // ---- read-batch of 64 × 4 KiB (and the same on an earlier build with BENCH_BASELINE_REF)
    const ref = process.env.BENCH_BASELINE_REF;
    const baselineBuild = ref ? buildRef(ref) : undefined;
    const old = baselineBuild ? await startTarget("files", [], { BENCH_DIST: baselineBuild.dist }) : undefined;
    try {
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const sessionOf = async (base: string) => {
        const id = ((await (await fetch(`${base}/workspaces`, { headers })).json()) as { items: { id: string }[] }).items[0]!.id;
        const s = await fetch(`${base}/workspace/${id}/files/sessions`, { method: "POST", headers, body: JSON.stringify({ ttlSeconds: 3600 }) });
        return ((await s.json()) as { session: { id: string } }).session.id;
      };
      const body = JSON.stringify({ paths });
      const durationMs = benchDurationMs(3000);
      const cases: Record<string, BenchCase> = {
        bare: { url: `${bareUrl}/read-batch`, method: "POST", headers, body },
        ours: { url: `${url}/files/sessions/${await sessionOf(url)}/read-batch`, method: "POST", headers, body },
      };
      if (old) {
        const oldUrl = (old.info as { url: string }).url;
        cases.old = { url: `${oldUrl}/files/sessions/${await sessionOf(oldUrl)}/read-batch`, method: "POST", headers, body };
      }
      const batch = await bestOfRounds(cases, { rounds: 3, concurrency: 8, durationMs });
      console.log(formatResult("naive readFile server read-batch", batch.bare!));
      console.log(formatResult("openwork-server read-batch 64×4KiB", batch.ours!));
      console.log(formatRatio("read-batch vs naive baseline", batch.ours!, batch.bare!));
      if (batch.old) {
        console.log(formatResult(`baseline build ${ref} read-batch`, batch.old));
        console.log(formatRatio("read-batch vs baseline build", batch.ours!, batch.old, 5));
      }
    } finally {
      await old?.stop();
      baselineBuild?.remove();
    }
  } finally {
    await target.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}
