/** Inbox uploads over HTTP: targets, limits while streaming, malformed bodies, approvals, aborts. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, readdir, rm, truncate, writeFile, mkdir } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { firstApproval, pendingApprovals, readAuditLog, startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";
import { streamRequest, multipartParts } from "./helpers/upload.ts";

const BND = "----owtest7MA4YWxkTrZu0gW";
const ct = { "content-type": `multipart/form-data; boundary=${BND}` };

function body(filename: string, content: string | Buffer, fields: Record<string, string> = {}, extraHeaders = ""): Buffer {
  const pre = Object.entries(fields).map(([k, v]) => `--${BND}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join("");
  return Buffer.concat([
    Buffer.from(`${pre}--${BND}\r\nContent-Disposition: form-data; name="file"; ${filename}\r\n${extraHeaders}Content-Type: application/octet-stream\r\n\r\n`),
    Buffer.from(content),
    Buffer.from(`\r\n--${BND}--\r\n`),
  ]);
}

const inboxOf = (s: TestServer) => path.join(s.workspace, ".opencode", "openwork", "inbox");

async function tempFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String).filter((n) => n.endsWith(".tmp"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return []; // no inbox yet: no temp files
    throw err;
  }
}

test("inbox: upload, targets, list and download", async () => {
  const s = await startServer();
  try {
    const up = (q: string, b: Buffer) => s.request("POST", `/workspace/${s.workspaceId}/inbox${q}`, { body: b, headers: ct });
    const r1 = await up("", body('filename="report.pdf"', "PDF-1"));
    assert.equal(r1.status, 200, r1.text);
    assert.deepEqual(r1.json, { ok: true, path: "report.pdf", bytes: 5, sha256: createHash("sha256").update("PDF-1").digest("hex") });
    assert.equal(await readFile(path.join(inboxOf(s), "report.pdf"), "utf8"), "PDF-1");
    // ?path= wins over the field and the filename; a folder path keeps the basename
    assert.equal((await up("?path=reports/q1.pdf", body('filename="x.pdf"', "Q1", { path: "ignored.pdf" }))).json.path, "reports/q1.pdf");
    assert.equal((await up("", body('filename="x.pdf"', "F", { path: "from-field.pdf" }))).json.path, "from-field.pdf");
    assert.equal((await up("?path=docs/", body('filename="C:\\\\Users\\\\me\\\\plan.txt"', "P"))).json.path, "docs/plan.txt");
    assert.equal((await up("", body('filename="../../etc/passwd"', "E"))).json.path, "passwd");
    assert.equal((await up("", body("filename*=UTF-8''%E2%82%AC%20r%C3%A9sum%C3%A9.txt", "U"))).json.path, "€ résumé.txt");
    assert.equal((await up("", body('filename="e\u0301.txt"', "N"))).json.path, "\u00e9.txt");
    // zero-byte file, replacing an existing one
    const z = await up("?path=report.pdf", body('filename="whatever"', ""));
    assert.equal(z.json.bytes, 0);
    assert.equal(await readFile(path.join(inboxOf(s), "report.pdf"), "utf8"), "");

    const list = await s.request("GET", `/workspace/${s.workspaceId}/inbox`);
    assert.equal(list.status, 200);
    const paths = list.json.items.map((i: { path: string }) => i.path).sort();
    assert.deepEqual(paths, ["docs/plan.txt", "from-field.pdf", "passwd", "report.pdf", "reports/q1.pdf", "\u00e9.txt", "€ résumé.txt"].sort());
    const item = list.json.items.find((i: { path: string }) => i.path === "reports/q1.pdf");
    assert.equal(item.name, "q1.pdf");
    assert.equal(item.size, 2);
    assert.equal(item.id, Buffer.from("reports/q1.pdf").toString("base64url"));
    const dl = await s.request("GET", `/workspace/${s.workspaceId}/inbox/${item.id}`);
    assert.equal(dl.status, 200);
    assert.equal(dl.text, "Q1");
    assert.equal(dl.headers["content-type"], "application/octet-stream");
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/inbox/${Buffer.from("nope").toString("base64url")}`)).json.code, "inbox_file_not_found");
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/inbox/!!`)).status, 400);
    assert.deepEqual(await tempFiles(inboxOf(s)), []);
    const audit = await readAuditLog(s);
    assert.equal(audit.filter((e) => e.action === "workspace.inbox.upload").length, 8);
    // viewer may list, not upload
    const viewer = await s.mintToken("viewer");
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/inbox`, { token: viewer })).status, 200);
    assert.equal((await s.request("POST", `/workspace/${s.workspaceId}/inbox`, { token: viewer, body: body('filename="v"', "v"), headers: ct })).status, 403);
  } finally {
    await s.close();
  }
});

test("inbox: malformed and refused uploads leave nothing behind and ask nobody", async () => {
  const s = await startServer({ approval: "manual", env: { OPENWORK_INBOX_MAX_BYTES: "1000" } });
  try {
    await mkdir(inboxOf(s), { recursive: true });
    await writeFile(path.join(inboxOf(s), "existing.bin"), "OLD");
    const before = await snapshotTree(s.parent);
    const cases: { name: string; q?: string; body: Buffer; headers?: Record<string, string>; status: number; code: string }[] = [
      { name: "not multipart", body: Buffer.from("{}"), headers: { "content-type": "application/json" }, status: 400, code: "invalid_payload" },
      { name: "no boundary", body: Buffer.from("x"), headers: { "content-type": "multipart/form-data" }, status: 400, code: "invalid_payload" },
      { name: "missing final boundary", body: body('filename="a"', "data").subarray(0, -10), status: 400, code: "invalid_payload" },
      { name: "missing file field", body: Buffer.from(`--${BND}\r\nContent-Disposition: form-data; name="path"\r\n\r\nx\r\n--${BND}--\r\n`), status: 400, code: "file_required" },
      { name: "file in another field", body: Buffer.from(`--${BND}\r\nContent-Disposition: form-data; name="doc"; filename="a"\r\n\r\nx\r\n--${BND}--\r\n`), status: 400, code: "file_required" },
      { name: "header block over 16 KiB", body: body(`filename="${"a".repeat(17 * 1024)}"`, "x"), status: 400, code: "invalid_payload" },
      { name: "more than 16 parts", body: body('filename="a"', "x", Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`f${i}`, "v"]))), status: 400, code: "invalid_payload" },
      { name: "field over 64 KiB", body: body('filename="a"', "x", { path: "p".repeat(65 * 1024) }), status: 400, code: "invalid_payload" },
      { name: "CRLF injection in filename*", body: body("filename*=UTF-8''a%0D%0AContent-Type%3A%20x.txt", "x"), status: 400, code: "invalid_path" },
      { name: "filename ..", body: body('filename=".."', "x"), status: 400, code: "invalid_path" },
      { name: "filename empty", body: body('filename=""', "x"), status: 400, code: "invalid_path" },
      { name: "filename blank", body: body('filename="   "', "x"), status: 400, code: "invalid_path" },
      { name: "traversal in ?path", q: "?path=../x", body: body('filename="a"', "x"), status: 400, code: "invalid_path" },
      { name: "traversal in path field", body: body('filename="a"', "x", { path: "a/../../x" }), status: 400, code: "invalid_path" },
      { name: ".git target", q: "?path=.git/config", body: body('filename="a"', "x"), status: 403, code: "protected_path" },
      { name: "two file parts", body: Buffer.concat([body('filename="a"', "x").subarray(0, -(BND.length + 6)), body('filename="b"', "y")]), status: 400, code: "invalid_payload" },
      { name: "one byte over the limit", q: "?path=existing.bin", body: body('filename="a"', Buffer.alloc(1001, 1)), status: 413, code: "file_too_large" },
      { name: "folded part header", body: Buffer.from(`--${BND}\r\nContent-Disposition: form-data;\r\n name="file"; filename="a"\r\n\r\nx\r\n--${BND}--\r\n`), status: 400, code: "invalid_payload" },
      { name: "device name", q: "?path=aux.txt", body: body('filename="a"', "x"), status: 400, code: "invalid_path" },
    ];
    for (const c of cases) {
      const r = await s.request("POST", `/workspace/${s.workspaceId}/inbox${c.q ?? ""}`, { body: c.body, headers: c.headers ?? ct });
      assert.equal(r.status, c.status, `${c.name}: ${r.text}`);
      assert.equal(r.json.code, c.code, c.name);
      if (c.code === "file_too_large") assert.equal(r.json.details.maxBytes, 1000);
    }
    assert.equal((await pendingApprovals(s)).length, 0, "no approval was created");
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
    assert.deepEqual(await tempFiles(inboxOf(s)), []);
  } finally {
    await s.close();
  }
});

test("inbox: exactly the limit is accepted; bodies replayed in 1-byte chunks parse the same", async () => {
  const s = await startServer({ env: { OPENWORK_INBOX_MAX_BYTES: "1000" } });
  try {
    const exact = Buffer.alloc(1000, 7);
    const r = await s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body('filename="exact.bin"', exact), headers: ct });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.bytes, 1000);
    const small = body('filename="bytes.txt"', "chunked\r\n--not-a-boundary\r\n", { path: "one/by/one.txt" });
    const r2 = await streamRequest(`${s.url}/workspace/${s.workspaceId}/inbox`, {
      headers: { ...ct, authorization: `Bearer ${s.clientToken}` },
      chunks: function* () {
        for (const b of small) yield Buffer.from([b]);
      },
    });
    assert.equal(r2.status, 200, r2.text);
    assert.equal(r2.json.path, "one/by/one.txt");
    assert.equal(await readFile(path.join(inboxOf(s), "one/by/one.txt"), "utf8"), "chunked\r\n--not-a-boundary\r\n");
    // chunked transfer with an empty body → 400, not a hang
    const r3 = await streamRequest(`${s.url}/workspace/${s.workspaceId}/inbox`, { headers: { ...ct, authorization: `Bearer ${s.clientToken}` }, chunks: function* () {} });
    assert.equal(r3.status, 400);
  } finally {
    await s.close();
  }
});

test("inbox: an over-limit upload is refused while streaming, memory stays flat, temp removed", async () => {
  const s = await startServer({ env: { OPENWORK_INBOX_MAX_BYTES: "1000000" } });
  try {
    await mkdir(inboxOf(s), { recursive: true });
    await writeFile(path.join(inboxOf(s), "target.bin"), "OLD");
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const size = 96 * 1024 * 1024;
    const r = await streamRequest(`${s.url}/workspace/${s.workspaceId}/inbox?path=target.bin`, {
      headers: { ...ct, authorization: `Bearer ${s.clientToken}` },
      chunks: multipartParts(BND, { filename: "big.bin", size }),
    });
    const growth = process.memoryUsage().rss - rss0;
    assert.equal(r.status, 413, r.text);
    assert.equal(r.json.code, "file_too_large");
    assert.equal(r.json.details.maxBytes, 1_000_000);
    assert.ok(growth < size / 2, `RSS grew by ${Math.round(growth / 1e6)} MB for a ${size / 1e6} MB upload`);
    await waitFor(async () => (await tempFiles(inboxOf(s))).length === 0, { what: "temp removed" });
    assert.equal(await readFile(path.join(inboxOf(s), "target.bin"), "utf8"), "OLD");
    // the server still answers
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/inbox`)).status, 200);
  } finally {
    await s.close();
  }
});

test("inbox: client abort mid-upload and a denied approval leave no file", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    const before = await snapshotTree(s.parent);
    await streamRequest(`${s.url}/workspace/${s.workspaceId}/inbox`, {
      headers: { ...ct, authorization: `Bearer ${s.clientToken}`, "content-length": String(10 * 1024 * 1024) },
      chunks: multipartParts(BND, { filename: "half.bin", size: 10 * 1024 * 1024 }),
      abortAfterBytes: 5 * 1024 * 1024,
    });
    await waitFor(async () => (await tempFiles(inboxOf(s))).length === 0, { what: "aborted upload's temp file removed" });
    assert.equal((await pendingApprovals(s)).length, 0);

    const pending = s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body('filename="denied.txt"', "no"), headers: ct });
    const approval = await firstApproval(s);
    assert.equal(approval.action, "workspace.inbox.upload");
    assert.deepEqual(approval.change, { path: "denied.txt", bytes: 2, sha256: createHash("sha256").update("no").digest("hex"), op: "create" });
    assert.equal((await tempFiles(inboxOf(s))).length, 1, "staged while waiting");
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "deny" } });
    const res = await pending;
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "write_denied");
    assert.deepEqual(await tempFiles(inboxOf(s)), []);
    // the inbox folders made for the refused uploads are gone again
    assert.deepEqual(diffSnapshots(before, await snapshotTree(s.parent)), { added: [], removed: [], changed: [] });
  } finally {
    await s.close();
  }
});

test("inbox disabled → 404 inbox_disabled", async () => {
  const s = await startServer({ env: { OPENWORK_INBOX_ENABLED: "off" } });
  try {
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/inbox`)).json.code, "inbox_disabled");
    const r = await s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body('filename="a"', "x"), headers: ct });
    assert.equal(r.status, 404);
    assert.equal(r.json.code, "inbox_disabled");
  } finally {
    await s.close();
  }
});

test("inbox: the target changed while the approval was pending → 409 conflict, the change survives (M32)", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    await mkdir(inboxOf(s), { recursive: true });
    const target = path.join(inboxOf(s), "report.txt");
    await writeFile(target, "v1");
    const pending = s.request("POST", `/workspace/${s.workspaceId}/inbox?path=report.txt`, { body: body('filename="r.txt"', "upload"), headers: ct });
    const approval = await firstApproval(s);
    assert.equal(approval.change.op, "overwrite");
    await writeFile(target, "edited meanwhile");
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await pending;
    assert.equal(res.status, 409, res.text);
    assert.equal(res.json.code, "conflict");
    assert.equal(await readFile(target, "utf8"), "edited meanwhile");
    assert.deepEqual(await tempFiles(inboxOf(s)), []);
  } finally {
    await s.close();
  }
});

test("inbox: a 24 MB random upload streamed in odd-sized chunks is stored byte for byte", async () => {
  const { randomBytes } = await import("node:crypto");
  const s = await startServer();
  try {
    const data = randomBytes(24 * 1024 * 1024);
    const full = body('filename="random.bin"', data);
    const sizes = [1, 7, 4096, 65_537, 1_000_003];
    const r = await streamRequest(`${s.url}/workspace/${s.workspaceId}/inbox`, {
      headers: { ...ct, authorization: `Bearer ${s.clientToken}` },
      chunks: function* () {
        let off = 0;
        for (let k = 0; off < full.length; k++) {
          const n = sizes[k % sizes.length]!;
          yield full.subarray(off, off + n);
          off += n;
        }
      },
    });
    assert.equal(r.status, 200, r.text);
    const expected = createHash("sha256").update(data).digest("hex");
    assert.equal(r.json.sha256, expected);
    assert.equal(r.json.bytes, data.length);
    const stored = await readFile(path.join(inboxOf(s), "random.bin"));
    assert.equal(createHash("sha256").update(stored).digest("hex"), expected);
  } finally {
    await s.close();
  }
});

test("applied = approved: a staged upload rewritten by another process while the host decides never lands (409), and nothing is left", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    const pending = s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body('filename="report.txt"', "approved bytes"), headers: ct });
    const approval = await firstApproval(s);
    const [staged] = await tempFiles(inboxOf(s));
    assert.ok(staged, "the upload is staged in the inbox while it waits");
    await writeFile(path.join(inboxOf(s), staged!), "attacker bytes");
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await pending;
    assert.equal(res.status, 409);
    assert.equal(res.json.code, "conflict");
    assert.deepEqual((await readdir(inboxOf(s)).catch(() => [] as string[])).filter((n) => !n.endsWith(".tmp")), [], "nothing landed");
    await waitFor(async () => (await tempFiles(inboxOf(s))).length === 0, { what: "staged file removed" });
  } finally {
    await s.close();
  }
});

test("a staged upload swapped for a FIFO, or grown into a huge sparse file, while the host decides: 409 at once, never a stuck thread (five FIFOs in a row, more than libuv's four threads)", async () => {
  const s = await startServer({ approval: "manual" });
  try {
    for (let i = 0; i < 5; i++) {
      const pending = s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body(`filename="report-${i}.txt"`, "approved bytes"), headers: ct });
      const approval = await firstApproval(s);
      const [staged] = await tempFiles(inboxOf(s));
      assert.ok(staged, "the upload is staged in the inbox while it waits");
      const at = path.join(inboxOf(s), staged!);
      await rm(at);
      execFileSync("mkfifo", [at]); // opening it for reading would block until a writer appears
      await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
      const res = await Promise.race([pending, new Promise<"stuck">((r) => setTimeout(r, 10_000, "stuck").unref())]);
      assert.notEqual(res, "stuck", `upload ${i}: no answer within 10 s`);
      assert.equal((res as { status: number }).status, 409);
      assert.equal((res as { json: { code: string } }).json.code, "conflict");
    }
    // Grown into a sparse 1 TiB file: refused by its size, not hashed for minutes.
    const pending = s.request("POST", `/workspace/${s.workspaceId}/inbox`, { body: body('filename="sparse.txt"', "approved bytes"), headers: ct });
    const approval = await firstApproval(s);
    const [staged] = await tempFiles(inboxOf(s));
    await truncate(path.join(inboxOf(s), staged!), 2 ** 40);
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    const res = await Promise.race([pending, new Promise<"stuck">((r) => setTimeout(r, 10_000, "stuck").unref())]);
    assert.notEqual(res, "stuck", "sparse: no answer within 10 s");
    assert.equal((res as { status: number }).status, 409);
    // The thread pool still works: a file read (async open/stat/read) answers.
    await writeFile(path.join(s.workspace, "after.txt"), "still here");
    const read = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=after.txt`);
    assert.equal(read.status, 200, read.text);
    assert.deepEqual((await readdir(inboxOf(s)).catch(() => [] as string[])).filter((n) => !n.endsWith(".tmp")), [], "nothing landed");
    await waitFor(async () => (await tempFiles(inboxOf(s))).length === 0, { what: "the FIFOs at the staged names removed" });
  } finally {
    await s.close();
  }
});
