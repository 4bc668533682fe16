import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import { join } from "node:path";
import { JsoncParseError, parseJsonc, parseJsoncObject, setTopLevelKey, setTopLevelKeys, lineColumn } from "../src/formats/jsonc.ts";
import { prng } from "./helpers/prng.ts";

const FIXTURES = join(import.meta.dirname, "fixtures", "jsonc");

interface Case {
  file: string;
  edits: { name: string; set: Record<string, unknown> }[];
}
const cases: Case[] = JSON.parse(readFileSync(join(FIXTURES, "cases.json"), "utf8"));
const stem = (f: string) => f.replace(/\.jsonc?$/, "");

/** Decodes `bytes` fed as two chunks split at `at` (as a stream reader would see them). */
function decodeSplit(bytes: Buffer, at: number): string {
  const d = new StringDecoder("utf8");
  return d.write(bytes.subarray(0, at)) + d.write(bytes.subarray(at)) + d.end();
}

function assertOurError(err: unknown, text: string): void {
  assert.ok(err instanceof JsoncParseError, `unexpected error type: ${String(err)}`);
  const e = err.errors[0]!;
  assert.ok(e.offset >= 0 && e.offset <= text.length, "offset in range");
  assert.ok(e.line >= 1 && e.column >= 1, "line/column are 1-based");
  assert.equal(typeof e.error, "string");
  assert.deepEqual(lineColumn(text, e.offset), { line: e.line, column: e.column });
}

test("corpus: every file parses to its expected value", () => {
  for (const c of cases) {
    const text = readFileSync(join(FIXTURES, c.file), "utf8");
    const expected = JSON.parse(readFileSync(join(FIXTURES, stem(c.file) + ".value.json"), "utf8"));
    const got = parseJsonc(text).value ?? null;
    assert.deepEqual(got, expected, c.file);
  }
});

test("corpus: edits match the expected files byte for byte", () => {
  for (const c of cases) {
    const text = readFileSync(join(FIXTURES, c.file), "utf8");
    for (const e of c.edits) {
      const expected = readFileSync(join(FIXTURES, `${stem(c.file)}.${e.name}.expected`), "utf8");
      const out = setTopLevelKeys(text, e.set);
      assert.equal(out, expected, `${c.file} ${e.name}`);
      // The edited file parses to the old value with the keys set.
      const before = parseJsoncObject(text);
      const after = parseJsoncObject(out);
      assert.deepEqual(after, Object.assign(before, e.set));
    }
  }
});

test("corpus: every byte split of every file decodes and parses the same; every prefix is a value or our error", () => {
  for (const c of cases) {
    const bytes = readFileSync(join(FIXTURES, c.file));
    const whole = parseJsonc(bytes.toString("utf8")).value;
    for (let at = 0; at <= bytes.length; at++) {
      assert.deepEqual(parseJsonc(decodeSplit(bytes, at)).value, whole, `${c.file} split at ${at}`);
      const prefix = new StringDecoder("utf8").write(bytes.subarray(0, at));
      try {
        parseJsonc(prefix);
      } catch (err) {
        assertOurError(err, prefix);
      }
    }
  }
});

test("edits keep comments, blank lines, order and CRLF elsewhere", () => {
  const text = readFileSync(join(FIXTURES, "crlf.jsonc"), "utf8");
  const out = setTopLevelKey(text, "theme", "light");
  assert.equal(out, text.replace('"theme": "dark"', '"theme": "light"'));
  assert.ok(!/[^\r]\n/.test(out), "no bare LF introduced in a CRLF file");
  const added = setTopLevelKey(text, "plugin", ["a", "b"]);
  assert.ok(!/[^\r]\n/.test(added));
});

test("setting a key to its current value is a no-op", () => {
  const text = readFileSync(join(FIXTURES, "commented.jsonc"), "utf8");
  assert.equal(setTopLevelKeys(text, { theme: "opencode", tools: { "mcp.local-tools.*": false } }), text);
});

test("duplicate keys: the last one wins and is the one edited", () => {
  const text = '{\n  "a": 1,\n  "a": 2\n}\n';
  assert.deepEqual(parseJsonc(text).value, { a: 2 });
  assert.equal(setTopLevelKey(text, "a", 3), '{\n  "a": 1,\n  "a": 3\n}\n');
});

test("edge inputs: accepted forms", () => {
  const ok: [string, unknown][] = [
    ["", undefined],
    ["\ufeff", undefined],
    ["// c", undefined],
    ["/* c */", undefined],
    ["{}", {}],
    ["[]", []],
    ["[1,]", [1]],
    ['{"a":1,}', { a: 1 }],
    ["\ufeff{}", {}],
    ["-0", -0],
    ["1e3", 1000],
    ['"\\u00e9\\n"', "é\n"],
    ["null", null],
    ["{\r\n}\r\n", {}],
    ['{"a"/*x*/:/*y*/1/*z*/}', { a: 1 }],
    ['{"a": "// not a comment", "b": "/* nor this */"}', { a: "// not a comment", b: "/* nor this */" }],
  ];
  for (const [text, value] of ok) assert.deepEqual(parseJsonc(text).value, value, JSON.stringify(text));
});

test("edge inputs: errors with offset, line and column", () => {
  const bad: [string, string, number, number, number][] = [
    ["{", "CloseBraceExpected", 1, 1, 2],
    ['{"a" 1}', "ColonExpected", 5, 1, 6],
    ['{"a":1 "b":2}', "CommaExpected", 7, 1, 8],
    ["[1 2]", "CommaExpected", 3, 1, 4],
    ["{,}", "PropertyNameExpected", 1, 1, 2],
    ["[,]", "InvalidSymbol", 1, 1, 2],
    ["{\n  a: 1\n}", "PropertyNameExpected", 4, 2, 3],
    ["{\r\n  'a': 1\r\n}", "PropertyNameExpected", 5, 2, 3],
    ["/* open", "UnexpectedEndOfComment", 7, 1, 8],
    ['"abc', "UnexpectedEndOfString", 4, 1, 5],
    ['"a\nb"', "InvalidCharacter", 2, 1, 3],
    ['"\\x"', "InvalidEscapeCharacter", 1, 1, 2],
    ['"\\u12"', "InvalidUnicode", 1, 1, 2],
    ["01", "InvalidNumberFormat", 0, 1, 1],
    ["1.", "InvalidNumberFormat", 0, 1, 1],
    ["tru", "InvalidSymbol", 0, 1, 1],
    ["{} {}", "EndOfFileExpected", 3, 1, 4],
    ["/ x", "InvalidSymbol", 0, 1, 1],
    ["NaN", "InvalidSymbol", 0, 1, 1],
  ];
  for (const [text, code, offset, line, column] of bad) {
    assert.throws(
      () => parseJsonc(text),
      (err: unknown) => {
        assertOurError(err, text);
        const e = (err as JsoncParseError).errors[0]!;
        assert.deepEqual(e, { offset, line, column, error: code }, JSON.stringify(text));
        return true;
      },
    );
  }
});

test("deep nesting is refused with our error, not a stack overflow", () => {
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  assert.throws(() => parseJsonc(deep), (e: unknown) => e instanceof JsoncParseError && e.errors[0]!.error === "MaxDepthExceeded");
  const ok = "[".repeat(200) + "]".repeat(200);
  assert.ok(Array.isArray(parseJsonc(ok).value));
});

test("prototype keys are plain data", () => {
  const v = parseJsonc('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}, "a": {"__proto__": 1}}').value as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ["__proto__", "constructor", "a"]);
  assert.equal((v as { polluted?: boolean }).polluted, undefined);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  assert.deepEqual(Object.getOwnPropertyDescriptor(v, "__proto__")?.value, { polluted: true });
  const text = setTopLevelKey("{}", "__proto__", { x: 1 });
  assert.equal(text, '{\n  "__proto__": {\n    "x": 1\n  }\n}');
  assert.deepEqual(Object.keys(parseJsoncObject(text)), ["__proto__"]);
});

test("non-object roots cannot be key-edited", () => {
  assert.throws(() => setTopLevelKey("[1]", "a", 1), (e: unknown) => e instanceof JsoncParseError && e.errors[0]!.error === "ObjectExpected");
  assert.throws(() => parseJsoncObject("1"), JsoncParseError);
  assert.deepEqual(parseJsoncObject("  // nothing\n"), {});
});

const ALPHABET = ['{', '}', '[', ']', ',', ':', '"', "\\", "/", "*", "\n", "\r", " ", "\t", "1", "-", ".", "e", "a", "t", "n", "u", "\ufeff", "é", "😀", "\u0000", "//", "/*", "*/", "true", "null", '"k"'];

function mutate(text: string, rnd: () => number): string {
  let s = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * (s.length + 1));
    const r = rnd();
    if (r < 0.3) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 3));
    else if (r < 0.6) s = s.slice(0, at) + ALPHABET[Math.floor(rnd() * ALPHABET.length)] + s.slice(at);
    else if (r < 0.75) s = s.slice(0, at);
    else if (r < 0.9) {
      const b = Math.floor(rnd() * (s.length + 1));
      s = s.slice(0, at) + s.slice(Math.min(at, b), Math.max(at, b)) + s.slice(at);
    } else s = s.slice(at) + s.slice(0, at);
  }
  return s;
}

test("seeded fuzz: 6000 mutated inputs yield a value or our parse error; edits of parsable objects stay consistent", () => {
  const seeds = cases.map((c) => readFileSync(join(FIXTURES, c.file), "utf8"));
  const rnd = prng(0x5eed);
  let parsed = 0;
  let edited = 0;
  for (let i = 0; i < 6000; i++) {
    const input = mutate(seeds[i % seeds.length]!, rnd);
    let value: unknown;
    try {
      value = parseJsonc(input).value;
      parsed++;
    } catch (err) {
      assertOurError(err, input);
      continue;
    }
    // Strict JSON that JSON.parse accepts must parse the same here.
    let strict: unknown;
    let strictOk = false;
    try {
      strict = JSON.parse(input);
      strictOk = true;
    } catch {
      // not strict JSON (comments, trailing commas, BOM): fine
    }
    if (strictOk) assert.deepEqual(value, strict);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      const out = setTopLevelKey(input, "fuzzKey", { n: i });
      const after = parseJsoncObject(out);
      assert.deepEqual(after, { ...(value as object), fuzzKey: { n: i } });
      edited++;
    }
  }
  assert.ok(parsed > 100, `some mutations still parse (${parsed})`);
  assert.ok(edited > 50, `some parsed objects were edited (${edited})`);
});
