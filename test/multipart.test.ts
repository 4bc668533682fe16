/**
 * The multipart parser as a table of bodies → expected parts or error. Every body is parsed whole,
 * in 1-byte chunks, split in two at every byte position, in 8/16/32-byte chunks and in seeded
 * random splits: the result must be identical each time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MultipartParser, MultipartError, boundaryFromContentType, parsePartHeaders } from "../src/http/multipart.ts";
import { ApiError } from "../src/errors.ts";

interface ParsedPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: string;
}

type Outcome = { parts: ParsedPart[] } | { error: RegExp };

function parseChunks(boundary: string, chunks: Buffer[], limits?: { headerBytes?: number; maxParts?: number }): Outcome {
  const p = new MultipartParser(boundary, limits);
  const parts: ParsedPart[] = [];
  let cur: { headers: ParsedPart; data: Buffer[] } | undefined;
  try {
    for (const c of chunks) {
      for (const ev of p.push(c)) {
        if (ev.type === "part") cur = { headers: { ...ev.headers, data: "" }, data: [] };
        else if (ev.type === "data") cur!.data.push(Buffer.from(ev.data));
        else if (ev.type === "partEnd") {
          parts.push({ ...cur!.headers, data: Buffer.concat(cur!.data).toString("latin1") });
          cur = undefined;
        }
      }
    }
    p.finish();
    return { parts };
  } catch (err) {
    assert.ok(err instanceof MultipartError, `only MultipartError may escape, got ${String(err)}`);
    return { error: new RegExp(err.message) };
  }
}

function splits(body: Buffer): Buffer[][] {
  const out: Buffer[][] = [[body]];
  out.push([...body].map((b) => Buffer.from([b])));
  for (let i = 1; i < body.length; i++) out.push([body.subarray(0, i), body.subarray(i)]);
  for (const size of [8, 16, 32]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
    out.push(chunks);
  }
  // seeded random splits (xorshift)
  let seed = 0x9e3779b9;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  for (let k = 0; k < 10; k++) {
    const chunks: Buffer[] = [];
    let i = 0;
    while (i < body.length) {
      const n = 1 + Math.floor(rnd() * 40);
      chunks.push(body.subarray(i, i + n));
      i += n;
    }
    out.push(chunks);
  }
  return out;
}

const B = "XyZ-boundary-123";
const CRLF = "\r\n";
const part = (headers: string[], body: string) => `--${B}${CRLF}${headers.join(CRLF)}${CRLF}${CRLF}${body}${CRLF}`;
const end = `--${B}--${CRLF}`;
const fileHeaders = (filename: string, name = "file") => [`Content-Disposition: form-data; name="${name}"; filename="${filename}"`, "Content-Type: application/octet-stream"];

interface Case {
  name: string;
  body: string;
  expect: Outcome;
  limits?: { headerBytes?: number; maxParts?: number };
}

const CASES: Case[] = [
  {
    name: "valid two-part form (M01)",
    body: part(['Content-Disposition: form-data; name="path"'], "reports/q1.pdf") + part(fileHeaders("q1.pdf"), "PDFDATA") + end,
    expect: { parts: [{ name: "path", data: "reports/q1.pdf" }, { name: "file", filename: "q1.pdf", contentType: "application/octet-stream", data: "PDFDATA" }] },
  },
  {
    name: "partial delimiter inside data is data (M02)",
    body: part(fileHeaders("a"), `x${CRLF}--XyZ-bound${CRLF}--XyZ-boundary-12 y`) + end,
    expect: { parts: [{ name: "file", filename: "a", contentType: "application/octet-stream", data: `x${CRLF}--XyZ-bound${CRLF}--XyZ-boundary-12 y` }] },
  },
  {
    name: "boundary not preceded by CRLF is data (M03)",
    body: part(fileHeaders("a"), `abc--${B}def`) + end,
    expect: { parts: [{ name: "file", filename: "a", contentType: "application/octet-stream", data: `abc--${B}def` }] },
  },
  { name: "missing final boundary (M04)", body: part(fileHeaders("a"), "data"), expect: { error: /unexpected end/ } },
  { name: "body ends mid-file (M04)", body: `--${B}${CRLF}${fileHeaders("a").join(CRLF)}${CRLF}${CRLF}half`, expect: { error: /unexpected end/ } },
  { name: "stopped mid part-header (M05)", body: `--${B}${CRLF}Content-Disposition: form-da`, expect: { error: /unexpected end/ } },
  { name: "wrong boundary in body (M06)", body: `--other${CRLF}${fileHeaders("a").join(CRLF)}${CRLF}${CRLF}x${CRLF}--other--`, expect: { error: /unexpected end/ } },
  { name: "empty body (M08)", body: "", expect: { error: /unexpected end/ } },
  {
    name: "epilogue after the final boundary is ignored (M09)",
    body: part(fileHeaders("a"), "x") + end + "trailing epilogue --XyZ-boundary-123 junk",
    expect: { parts: [{ name: "file", filename: "a", contentType: "application/octet-stream", data: "x" }] },
  },
  {
    name: "preamble is ignored (M10)",
    body: "This is a preamble\r\n" + part(fileHeaders("a"), "x") + end,
    expect: { parts: [{ name: "file", filename: "a", contentType: "application/octet-stream", data: "x" }] },
  },
  {
    name: "folded header line (M11/M15)",
    body: `--${B}${CRLF} folded: x${CRLF}Content-Disposition: form-data; name="a"${CRLF}${CRLF}v${CRLF}` + end,
    expect: { error: /folded header/ },
  },
  {
    name: "obs-fold continuation of Content-Disposition (M15)",
    body: `--${B}${CRLF}Content-Disposition: form-data;${CRLF}\tname="a"${CRLF}${CRLF}v${CRLF}` + end,
    expect: { error: /folded header/ },
  },
  {
    name: "header block over the limit (M12)",
    body: part([`Content-Disposition: form-data; name="file"; filename="${"a".repeat(300)}"`], "x") + end,
    limits: { headerBytes: 256 },
    expect: { error: /header block too large/ },
  },
  {
    name: "three parts each just under the header limit (M13)",
    body: [1, 2, 3].map((i) => part([`Content-Disposition: form-data; name="f${i}"`, `X-Pad: ${"p".repeat(180)}`], String(i))).join("") + end,
    limits: { headerBytes: 256 },
    expect: { parts: [1, 2, 3].map((i) => ({ name: `f${i}`, data: String(i) })) },
  },
  { name: "no Content-Disposition (M16)", body: part(["Content-Type: text/plain"], "x") + end, expect: { error: /without Content-Disposition/ } },
  { name: "Content-Disposition without name (M16)", body: part(['Content-Disposition: form-data; filename="a"'], "x") + end, expect: { error: /without a name/ } },
  {
    name: "path-like filename is kept raw for the route to basename (M17)",
    body: part(fileHeaders("../../x"), "x") + end,
    expect: { parts: [{ name: "file", filename: "../../x", contentType: "application/octet-stream", data: "x" }] },
  },
  {
    name: "filename* preferred and decoded (M19, M21)",
    body: part([`Content-Disposition: form-data; name="file"; filename="plain.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`], "x") + end,
    expect: { parts: [{ name: "file", filename: "€ rates.txt", data: "x" }] },
  },
  {
    name: "filename* with unknown charset falls back to filename (M20)",
    body: part([`Content-Disposition: form-data; name="file"; filename="plain.txt"; filename*=bogus''x`], "x") + end,
    expect: { parts: [{ name: "file", filename: "plain.txt", data: "x" }] },
  },
  {
    name: "filename* with malformed escapes falls back (M20)",
    body: part([`Content-Disposition: form-data; name="file"; filename="p.txt"; filename*=UTF-8''%zz`], "x") + end,
    expect: { parts: [{ name: "file", filename: "p.txt", data: "x" }] },
  },
  {
    name: "quoted filename with escaped quote and semicolon",
    body: part([`Content-Disposition: form-data; name="file"; filename="a\\"b;c.txt"`], "x") + end,
    expect: { parts: [{ name: "file", filename: 'a"b;c.txt', data: "x" }] },
  },
  {
    name: "UTF-8 filename (M22)",
    body: part([`Content-Disposition: form-data; name="file"; filename="テスト.dat"`], "x") + end,
    expect: { parts: [{ name: "file", filename: "テスト.dat", data: "x" }] },
  },
  { name: "too many parts (M24)", body: [1, 2, 3].map((i) => part([`Content-Disposition: form-data; name="f${i}"`], "v")).join("") + end, limits: { maxParts: 2 }, expect: { error: /too many parts/ } },
  {
    name: "zero-length file part (M25)",
    body: part(fileHeaders("empty.bin"), "") + end,
    expect: { parts: [{ name: "file", filename: "empty.bin", contentType: "application/octet-stream", data: "" }] },
  },
  {
    name: "nested multipart stays opaque (M27)",
    body: part(fileHeaders("n"), `--inner${CRLF}Content-Type: text/plain${CRLF}${CRLF}hi${CRLF}--inner--`) + end,
    expect: { parts: [{ name: "file", filename: "n", contentType: "application/octet-stream", data: `--inner${CRLF}Content-Type: text/plain${CRLF}${CRLF}hi${CRLF}--inner--` }] },
  },
  {
    name: "Content-Transfer-Encoding ignored, bytes raw (M28)",
    body: part([...fileHeaders("b"), "Content-Transfer-Encoding: base64"], "aGk=") + end,
    expect: { parts: [{ name: "file", filename: "b", contentType: "application/octet-stream", data: "aGk=" }] },
  },
  {
    name: "transport padding after the boundary",
    body: `--${B}  \t${CRLF}Content-Disposition: form-data; name="a"${CRLF}${CRLF}v${CRLF}` + end,
    expect: { parts: [{ name: "a", data: "v" }] },
  },
  { name: "garbage after a boundary", body: `--${B}xx${CRLF}Content-Disposition: form-data; name="a"${CRLF}${CRLF}v${CRLF}` + end, expect: { error: /garbage after boundary/ } },
  {
    name: "part with no headers is refused",
    body: `--${B}${CRLF}${CRLF}v${CRLF}` + end,
    expect: { error: /without Content-Disposition/ },
  },
  {
    name: "CR/LF bytes inside file content",
    body: part(fileHeaders("c"), `\r\r\n\n\r\n\r\n--`) + end,
    expect: { parts: [{ name: "file", filename: "c", contentType: "application/octet-stream", data: `\r\r\n\n\r\n\r\n--` }] },
  },
  {
    name: "binary content with every byte value",
    body: part(fileHeaders("bin"), Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1")) + end,
    expect: { parts: [{ name: "file", filename: "bin", contentType: "application/octet-stream", data: Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1") }] },
  },
];

for (const c of CASES) {
  test(`multipart: ${c.name}`, () => {
    const body = Buffer.from(c.body, "latin1");
    // the table's text is latin1 except for UTF-8 header cases: encode those as UTF-8
    const bytes = /[^\x00-\xff]/.test(c.body) ? Buffer.from(c.body, "utf8") : body;
    for (const chunks of splits(bytes)) {
      const got = parseChunks(B, chunks, c.limits);
      if ("error" in c.expect) {
        assert.ok("error" in got, `expected an error, got ${JSON.stringify(got)} (${chunks.length} chunks)`);
        assert.match(got.error.source, c.expect.error);
      } else {
        assert.deepEqual(got, c.expect, `${chunks.length} chunks`);
      }
    }
  });
}

test("boundaryFromContentType", () => {
  assert.equal(boundaryFromContentType("multipart/form-data; boundary=abc"), "abc");
  assert.equal(boundaryFromContentType('multipart/form-data; boundary="a b"'), "a b");
  assert.equal(boundaryFromContentType("Multipart/Form-Data;charset=utf-8; BOUNDARY=x"), "x");
  const code = (ct: string | undefined) => {
    try {
      boundaryFromContentType(ct);
      return "ok";
    } catch (err) {
      assert.ok(err instanceof ApiError);
      return `${err.status} ${err.message}`;
    }
  };
  assert.equal(code(undefined), "400 Expected multipart/form-data");
  assert.equal(code("application/json"), "400 Expected multipart/form-data");
  assert.equal(code("multipart/form-data"), "400 Malformed multipart/form-data");
  assert.equal(code("multipart/form-data; boundary="), "400 Malformed multipart/form-data");
  assert.equal(code(`multipart/form-data; boundary=${"a".repeat(71)}`), "400 Malformed multipart/form-data");
  assert.equal(code(`multipart/form-data; boundary=${"a".repeat(70)}`), "ok");
  assert.equal(code('multipart/form-data; boundary="unterminated'), "400 Malformed multipart/form-data");
});

test("parsePartHeaders: CRLF injection cannot forge a filename", () => {
  // A raw CR/LF ends the header line; the rest is a separate (invalid) header line.
  assert.throws(() => parsePartHeaders(Buffer.from('Content-Disposition: form-data; name="file"; filename="a\r\nb.txt"')), MultipartError);
  // Encoded CR/LF decodes to control characters, which the path normalizer refuses later.
  const h = parsePartHeaders(Buffer.from("Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''a%0D%0Ab.txt"));
  assert.equal(h.filename, "a\r\nb.txt");
});

test("seeded fuzz: random bytes never throw anything but MultipartError", () => {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const alphabet = Buffer.from(`--${B}\r\n:;="' Content-Disposition form-data name filename*x`);
  for (let k = 0; k < 2000; k++) {
    const len = Math.floor(rnd() * 200);
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = rnd() < 0.8 ? alphabet[Math.floor(rnd() * alphabet.length)]! : Math.floor(rnd() * 256);
    parseChunks(B, [body]);
  }
});
