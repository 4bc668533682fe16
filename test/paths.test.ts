/**
 * The path normalizer, as a table: every row is sent through write-batch (and the interesting ones
 * through read-batch), asserting the status/code and a byte-exact before/after listing of the
 * workspace's parent folder (which holds the workspace and nothing else): only the expected entry
 * may appear, nothing else anywhere changes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, rm, symlink, writeFile, readFile } from "node:fs/promises";
import path from "node:path";
import { startServer } from "./helpers/server.ts";
import { snapshotTree, diffSnapshots } from "./helpers/fs-snapshot.ts";
import { prng } from "./helpers/prng.ts";
import { normalizeRelPath, checkCreatableSegment, isOutside } from "../src/fs/paths.ts";
import { ApiError } from "../src/errors.ts";

interface Row {
  name: string;
  path: string;
  /** Whole request refused with this status/code. */
  reject?: { status: number; code: string };
  /** The batch answers 200 and the item fails with this code. */
  itemCode?: string;
  /** read-batch item code when it differs from itemCode. */
  readCode?: string;
  /** The batch answers 200 and this workspace-relative file is created. */
  creates?: string;
}

const seg300 = "s".repeat(300);
const longPath = Array.from({ length: 500 }, () => "abcdefghi").join("/"); // 4999 bytes
const bad = (name: string, p: string): Row => ({ name, path: p, reject: { status: 400, code: "invalid_path" } });
// Portability rules apply to names being created: the item fails, reading such a name is allowed.
const noCreate = (name: string, p: string): Row => ({ name, path: p, itemCode: "invalid_path", readCode: "file_not_found" });

const ROWS: Row[] = [
  bad("dot-dot", ".."),
  bad("dot-dot slash x", "../x"),
  bad("backslash traversal", "..\\x"),
  bad("backslash traversal deep", "..\\..\\etc\\passwd"),
  bad("a/../../b", "a/../../b"),
  bad("a/..", "a/.."),
  bad("x/./y", "x/./y"),
  bad("single dot", "."),
  bad("dot slash only", "./"),
  bad("root slash", "/"),
  bad("empty", ""),
  bad("blank", "   "),
  bad("NUL", "a\u0000b.txt"),
  bad("control char SOH", "a\u0001b"),
  bad("newline in name", "a\nb"),
  bad("DEL", "a\u007fb"),
  bad("C1 control NEL", "a\u0085b"),
  bad("300-byte segment", seg300),
  bad("5000-byte path", longPath),
  bad("Windows drive path", "C:\\Windows\\x"),
  bad("Windows drive slash", "C:/x"),
  noCreate("device CON", "CON"),
  noCreate("device aux.txt", "aux.txt"),
  noCreate("device LPT1 in a folder", "d/LPT1"),
  noCreate("trailing dot", "a."),
  noCreate("trailing space in a folder", "dir /x"),
  noCreate("bidi override", "invoice\u202Etxt.exe"),
  noCreate("zero-width space", "a\u200Bb.txt"),
  bad("lone surrogate", "a\uD800b"),
  { name: ".git/config", path: ".git/config", itemCode: "protected_path" },
  { name: ".git/hooks/pre-commit", path: ".git/hooks/pre-commit", itemCode: "protected_path" },
  { name: ".GIT case variant", path: ".GIT/config", itemCode: "protected_path" },
  { name: "nested .git", path: "sub/.git/HEAD", itemCode: "protected_path" },
  { name: "percent-encoded dots stay literal", path: "%2e%2e", creates: "%2e%2e" },
  { name: "percent-encoded slash stays literal", path: "a%2Fb", creates: "a%2Fb" },
  { name: "double encoding stays literal", path: "%252e%252e/x", creates: "%252e%252e/x" },
  { name: "absolute /etc/passwd is read inside", path: "/etc/passwd", creates: "etc/passwd" },
  { name: "UNC path is read inside", path: "\\\\server\\share\\x", creates: "server/share/x" },
  { name: "./x", path: "./x", creates: "x" },
  { name: "././x", path: "././x", creates: "x" },
  { name: "empty segments dropped", path: "a//b///c", creates: "a/b/c" },
  { name: "trailing slash dropped", path: "q/r/", creates: "q/r" },
  { name: "surrounding blanks trimmed", path: "  t.txt  ", creates: "t.txt" },
  { name: "dots inside a name", path: "do..ts.txt", creates: "do..ts.txt" },
  { name: "triple dots inside a name", path: "a...b", creates: "a...b" },
  { name: "fullwidth dots are a literal name", path: "\uFF0E\uFF0E/etc", creates: "\uFF0E\uFF0E/etc" },
  { name: "NFD name stored as NFC", path: "e\u0301.txt", creates: "\u00e9.txt" },
  { name: "device-like but allowed", path: "console.txt", creates: "console.txt" },
  { name: "255-byte segment", path: "n".repeat(255), creates: "n".repeat(255) },
  { name: "unicode name", path: "テスト/データ.md", creates: "テスト/データ.md" },
];

test("path table: write-batch + listings of the workspace and its parent", async (t) => {
  assert.ok(ROWS.length >= 40, `at least 40 rows (${ROWS.length})`);
  const s = await startServer({ files: { "keep.txt": "keep", ".git/config": "[core]\n" } });
  try {
    const c = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} });
    assert.equal(c.status, 200);
    const sid = c.json.session.id as string;
    for (const row of ROWS) {
      await t.test(row.name, async () => {
        const before = await snapshotTree(s.parent);
        const res = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
          json: { writes: [{ path: row.path, contentBase64: Buffer.from("data").toString("base64") }] },
        });
        const after = await snapshotTree(s.parent);
        const diff = diffSnapshots(before, after);
        if (row.reject) {
          assert.equal(res.status, row.reject.status, res.text);
          assert.equal(res.json.code, row.reject.code);
          assert.deepEqual(diff, { added: [], removed: [], changed: [] });
        } else if (row.itemCode) {
          assert.equal(res.status, 200, res.text);
          assert.equal(res.json.items[0].ok, false);
          assert.equal(res.json.items[0].code, row.itemCode);
          assert.deepEqual(diff, { added: [], removed: [], changed: [] });
        } else {
          assert.equal(res.status, 200, res.text);
          assert.equal(res.json.items[0].ok, true, res.text);
          assert.equal(res.json.items[0].path, row.creates);
          const segs = row.creates!.split("/");
          const expected = segs.map((_, i) => "workspace/" + segs.slice(0, i + 1).join("/"));
          assert.deepEqual(diff.added, expected.sort());
          assert.deepEqual(diff.removed, []);
          assert.deepEqual(diff.changed, []);
          assert.equal(await readFile(path.join(s.workspace, row.creates!), "utf8"), "data");
          await rm(path.join(s.workspace, segs[0]!), { recursive: true, force: true });
        }
        // read-batch applies the same normalizer: malformed → whole request 400, nothing read from outside.
        const rd = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: [row.path] } });
        if (row.reject) {
          assert.equal(rd.status, 400);
          assert.equal(rd.json.code, "invalid_path");
        } else if (row.itemCode) {
          assert.equal(rd.json.items[0].code, row.readCode ?? row.itemCode);
        } else {
          assert.equal(rd.status, 200);
          assert.equal(rd.json.items[0].code, "file_not_found");
        }
      });
    }
  } finally {
    await s.close();
  }
});

test("NFC/NFD twins: an NFC write to an existing NFD name updates that file (no visual duplicate)", async () => {
  const nfd = "cafe\u0301.txt";
  const s = await startServer({ files: { [nfd]: "old" } });
  try {
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const before = await snapshotTree(s.parent);
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: [{ path: "caf\u00e9.txt", contentBase64: Buffer.from("new").toString("base64") }] },
    });
    assert.equal(w.status, 200);
    assert.equal(w.json.items[0].ok, true);
    const diff = diffSnapshots(before, await snapshotTree(s.parent));
    assert.deepEqual(diff.added, []);
    assert.deepEqual(diff.changed, ["workspace/" + nfd]);
    assert.equal(await readFile(path.join(s.workspace, nfd), "utf8"), "new");
    const rd = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: [nfd] } });
    assert.equal(Buffer.from(rd.json.items[0].contentBase64, "base64").toString(), "new");
  } finally {
    await s.close();
  }
});

test("data dir and token store inside the workspace are protected", async () => {
  // The helper runs the config loader with cwd = the workspace's parent, so these land inside the workspace.
  const s = await startServer({ argv: ["--data-dir", "workspace/.ow-data"], env: { OPENWORK_TOKEN_STORE: "workspace/secrets/tokens.json" } });
  try {
    const dataRel = path.relative(s.workspace, s.context.config.dataDir);
    const storeRel = path.relative(s.workspace, s.context.config.tokenStorePath);
    assert.equal(dataRel, ".ow-data");
    assert.equal(storeRel, path.join("secrets", "tokens.json"));
    await mkdir(path.join(s.workspace, "secrets"), { recursive: true });
    await writeFile(path.join(s.workspace, "secrets", "tokens.json"), "{}");
    await symlink(".ow-data", path.join(s.workspace, "data-link"));
    const sid = (await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} })).json.session.id;
    const before = await snapshotTree(s.parent);
    const targets = [".ow-data/audit/x.jsonl", ".ow-data", "secrets/tokens.json", "data-link/evil.txt"];
    const w = await s.request("POST", `/files/sessions/${sid}/write-batch`, {
      json: { writes: targets.map((p) => ({ path: p, contentBase64: "eA==" })) },
    });
    assert.equal(w.status, 200, w.text);
    assert.deepEqual(w.json.items.map((i: { code: string }) => i.code), targets.map(() => "protected_path"));
    const rd = await s.request("POST", `/files/sessions/${sid}/read-batch`, { json: { paths: ["secrets/tokens.json"] } });
    assert.equal(rd.json.items[0].code, "protected_path");
    const after = await snapshotTree(s.parent);
    // The server itself may append to its own data dir (audit); nothing else may change.
    const diff = diffSnapshots(before, after);
    const outsideData = (k: string) => !k.startsWith("workspace/.ow-data");
    assert.deepEqual(diff.added.filter(outsideData), []);
    assert.deepEqual(diff.changed.filter(outsideData), []);
    assert.deepEqual(diff.removed, []);
  } finally {
    await s.close();
  }
});

test("normalizer unit rules", () => {
  assert.equal(normalizeRelPath("a\\b\\c"), "a/b/c");
  assert.equal(normalizeRelPath("//etc//passwd"), "etc/passwd");
  assert.equal(normalizeRelPath("e\u0301"), "\u00e9");
  assert.throws(() => normalizeRelPath(42), (e: unknown) => e instanceof ApiError && e.code === "invalid_path");
  assert.throws(() => normalizeRelPath(null), (e: unknown) => e instanceof ApiError && e.code === "invalid_path");
  assert.throws(() => checkCreatableSegment("nul"), ApiError);
  assert.throws(() => checkCreatableSegment("COM1.log"), ApiError);
  assert.doesNotThrow(() => checkCreatableSegment("company.txt"));
  // sibling-prefix escape: /srv/ws vs /srv/ws-evil (P12)
  assert.equal(isOutside("/srv/ws", "/srv/ws-evil/x"), true);
  assert.equal(isOutside("/srv/ws", "/srv/ws/x"), false);
  assert.equal(isOutside("/srv/ws", "/srv/ws"), false);
  assert.equal(isOutside("/srv/ws", "/srv/ws/..x"), false);
});

test("seeded fuzz: the normalizer returns a clean relative path or throws 400 invalid_path, nothing else", () => {
  const rnd = prng(0xc0ffee);
  let accepted = 0;
  const alphabet = ["a", "b", ".", "..", "/", "\\", " ", "\u0000", "\u0001", "é", "e\u0301", "\u202E", "%2e", ":", "C:", "\uD800", "\uFF0E", "CON", "~"];
  for (let k = 0; k < 5000; k++) {
    let input = "";
    const n = Math.floor(rnd() * 12);
    for (let i = 0; i < n; i++) input += alphabet[Math.floor(rnd() * alphabet.length)];
    let out: string;
    try {
      out = normalizeRelPath(input);
    } catch (err) {
      assert.ok(err instanceof ApiError && err.status === 400 && err.code === "invalid_path", `${JSON.stringify(input)} → ${String(err)}`);
      continue;
    }
    const segs = out.split("/");
    assert.ok(segs.every((s) => s !== "" && s !== "." && s !== ".."), JSON.stringify(input));
    assert.ok(!out.includes("\\") && !out.includes("\u0000") && !out.startsWith("/"), JSON.stringify(input));
    assert.equal(out, out.normalize("NFC"));
    assert.ok(Buffer.byteLength(out) <= 4096);
    accepted++;
  }
  assert.ok(accepted > 500, `some inputs normalize to a path (${accepted})`);
});
