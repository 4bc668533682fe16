import { test } from "node:test";
import assert from "node:assert/strict";
import { parseFrontmatter, parseYaml, stringifyFrontmatter, stringifyYaml, YamlError } from "../src/formats/frontmatter.ts";
import { prng } from "./helpers/prng.ts";

test("parses the subset used by skills and commands", () => {
  const text = [
    "---",
    "name: pdf-tools # trailing comment",
    "description: >-",
    "  Use this when",
    "  PDFs are involved.",
    "",
    "  Second paragraph.",
    "license: 'Apache-2.0'",
    'quoted: "tab\\there \\u00e9 \\x41 \\U0001F600 \\"q\\""',
    "single: 'it''s'",
    "yes_word: yes",
    "no_word: No",
    "flag: true",
    "off: false",
    "nothing: null",
    "tilde: ~",
    "empty:",
    "int: 42",
    "neg: -7",
    "hex: 0x1F",
    "float: 3.25",
    "exp: 1e3",
    "inf: .inf",
    "numstr: '007'",
    "flow: [a, 'b c', \"d\", 1, true, [nested], {k: v}]",
    "flowmap: {a: 1, b: [x, y]}",
    "list:",
    "  - one",
    "  - two: 2",
    "    three: 3",
    "  - - inner",
    "    - list",
    "same_indent_list:",
    "- a",
    "- b",
    "metadata:",
    "  author: me",
    "  nested:",
    "    deep: value",
    "literal: |",
    "  line 1",
    "    indented",
    "  # not a comment",
    "",
    "keep: |+",
    "  kept",
    "",
    "strip: |-",
    "  stripped",
    "explicit: |2",
    "    two extra",
    "url: https://example.com/a:b",
    "multi_plain: first",
    "  second",
    "# a full-line comment",
    '"quoted key": 1',
    "---",
    "# Body",
    "",
  ].join("\n");
  const { data, body, hasFrontmatter } = parseFrontmatter(text);
  assert.equal(hasFrontmatter, true);
  assert.equal(body, "# Body\n");
  assert.deepEqual(data, {
    name: "pdf-tools",
    description: "Use this when PDFs are involved.\nSecond paragraph.",
    license: "Apache-2.0",
    quoted: 'tab\there é A 😀 "q"',
    single: "it's",
    yes_word: "yes",
    no_word: "No",
    flag: true,
    off: false,
    nothing: null,
    tilde: null,
    empty: null,
    int: 42,
    neg: -7,
    hex: 31,
    float: 3.25,
    exp: 1000,
    inf: Infinity,
    numstr: "007",
    flow: ["a", "b c", "d", 1, true, ["nested"], { k: "v" }],
    flowmap: { a: 1, b: ["x", "y"] },
    list: ["one", { two: 2, three: 3 }, ["inner", "list"]],
    same_indent_list: ["a", "b"],
    metadata: { author: "me", nested: { deep: "value" } },
    literal: "line 1\n  indented\n# not a comment\n",
    keep: "kept\n\n",
    strip: "stripped",
    explicit: "  two extra\n",
    url: "https://example.com/a:b",
    multi_plain: "first second",
    "quoted key": 1,
  });
});

test("CRLF, BOM and no-frontmatter documents", () => {
  const crlf = "\ufeff---\r\nname: x\r\ndescription: \"d\"\r\n---\r\nbody\r\n";
  const r = parseFrontmatter(crlf);
  assert.deepEqual(r.data, { name: "x", description: "d" });
  assert.equal(r.body, "body\r\n");
  const none = parseFrontmatter("# Just markdown\n---\n");
  assert.equal(none.hasFrontmatter, false);
  assert.deepEqual(none.data, {});
  assert.equal(none.body, "# Just markdown\n---\n");
  assert.deepEqual(parseFrontmatter("---\n---\n").data, {});
  assert.equal(parseFrontmatter("---\na: 1\n---").body, "");
});

test("malformed frontmatter: YamlError with the file's line number, never another exception", () => {
  const bad: [string, number][] = [
    ["---\nname: x\n", 1], // unterminated
    ["---", 1],
    ["---\nname: x\nname: y\n---\n", 3], // duplicate key
    ["---\na: &anchor 1\n---\n", 2],
    ["---\na: *alias\n---\n", 2],
    ["---\na: !tag x\n---\n", 2],
    ["---\na: [1, 2\n---\n", 2],
    ["---\na: 'open\n---\n", 2],
    ['---\na: "bad \\q escape"\n---\n', 2],
    ["---\na: 1\n\tb: 2\n---\n", 3],
    ["---\n- a\n- b\n---\n", 2], // not a mapping
    ["---\nplain text\n---\n", 2],
    ["---\na: 1\n  b: 2\n---\n", 3],
    ["---\na: |x\n---\n", 2],
    ['---\na: "x" trailing\n---\n', 2],
    ["---\n? complex\n---\n", 2],
    ["---\na:\n  - x\n  y: 1\n---\n", 4],
  ];
  for (const [text, line] of bad) {
    assert.throws(
      () => parseFrontmatter(text),
      (e: unknown) => {
        assert.ok(e instanceof YamlError, `${JSON.stringify(text)} → ${String(e)}`);
        assert.equal(e.line, line, JSON.stringify(text) + " " + e.message);
        return true;
      },
    );
  }
});

test("tricky scalars are quoted by the serializer and read back unchanged", () => {
  const tricky = {
    colon: "a: b",
    trailingColon: "ends:",
    hash: "a #b",
    leadingHash: "#tag",
    leadingSpace: "  indented",
    trailingSpace: "x ",
    yes: "yes",
    No: "No",
    on: "on",
    y: "y",
    tilde: "~",
    nullWord: "null",
    trueWord: "true",
    int: "123",
    float: "1.5",
    exp: "1e10",
    hex: "0x10",
    octal: "0o17",
    dotInf: ".inf",
    version: "1.2.3",
    dash: "- item",
    dashes: "---",
    quote: "'single'",
    dquote: '"double"',
    multiline: "line 1\nline 2",
    multilineTrailing: "line 1\nline 2\n",
    multilineKeep: "a\n\n\n",
    crlf: "a\r\nb",
    tab: "a\tb",
    control: "bell\x07",
    empty: "",
    unicode: "ünïcödé 😀 名前",
    bidi: "\u202eevil",
    loneSurrogate: "\ud800x",
    flowish: "[not, a, list]",
    brace: "{x}",
    star: "*alias",
    amp: "&anchor",
    bang: "!tag",
    pipe: "| x",
    gt: "> x",
    percent: "%x",
    at: "@x",
    backtick: "`x`",
    comma: ", x",
    question: "? x",
    nbsp: "\u00a0x",
    bom: "\ufeffx",
  };
  const yaml = stringifyYaml(tricky);
  assert.deepEqual(parseYaml(yaml), tricky);
  for (const k of ["colon", "yes", "No", "int", "leadingSpace", "hash", "empty"]) {
    assert.match(yaml, new RegExp(`^${k}: "`, "m"), `${k} is quoted`);
  }
  assert.match(yaml, /^multiline: \|-\n {2}line 1\n {2}line 2$/m);
  assert.match(yaml, /^unicode: ünïcödé 😀 名前$/m, "safe unicode stays plain");
});

test("stringifyFrontmatter round-trips through parseFrontmatter", () => {
  const data = { name: "my-skill", description: "Does: things # really", metadata: { tags: ["a", "b"] } };
  const body = "# Title\n\nBody with --- inside\n";
  const text = stringifyFrontmatter(data, body);
  assert.equal(text.split("\n")[0], "---");
  const back = parseFrontmatter(text);
  assert.deepEqual(back.data, data);
  assert.equal(back.body, body);
});

test("prototype keys are data", () => {
  const r = parseFrontmatter("---\n__proto__:\n  polluted: true\nconstructor: x\n---\n");
  assert.deepEqual(Object.keys(r.data), ["__proto__", "constructor"]);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  assert.equal(Object.getPrototypeOf(r.data), Object.prototype);
});

// ---- property: parse(serialize(x)) deep-equals x on generated values ----

const CHARS = ["a", "b", "z", "A", "0", "9", " ", ":", "#", "-", "'", '"', "\\", "\n", "\t", "\r", "[", "]", "{", "}", ",", "&", "*", "!", "|", ">", "%", "@", "`", "?", "é", "😀", "\u0000", "\u2028", "~", ".", "_", "/"];
const WORDS = ["yes", "no", "true", "false", "null", "~", "1", "-1", "0.5", "1e5", ".nan", "0x1", "on", "off", "", " ", "-", "---", "a: b", "x #y", "key:"];

function genString(rnd: () => number): string {
  if (rnd() < 0.25) return WORDS[Math.floor(rnd() * WORDS.length)]!;
  const len = Math.floor(rnd() * 12);
  let s = "";
  for (let i = 0; i < len; i++) s += rnd() < 0.6 ? String.fromCharCode(97 + Math.floor(rnd() * 26)) : CHARS[Math.floor(rnd() * CHARS.length)]!;
  return s;
}

function genValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (depth > 3 || r < 0.45) {
    const k = rnd();
    if (k < 0.55) return genString(rnd);
    if (k < 0.7) return Math.floor((rnd() - 0.5) * 1e6);
    if (k < 0.8) return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 30 - 10);
    if (k < 0.9) return rnd() < 0.5;
    return null;
  }
  if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 4) }, () => genValue(rnd, depth + 1));
  return genMap(rnd, depth + 1);
}

function genMap(rnd: () => number, depth: number): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  const n = Math.floor(rnd() * 5);
  for (let i = 0; i < n; i++) {
    const key = rnd() < 0.7 ? `k${Math.floor(rnd() * 100)}` : genString(rnd);
    Object.defineProperty(obj, key, { value: genValue(rnd, depth), enumerable: true, writable: true, configurable: true });
  }
  return obj;
}

test("round-trip property on 3000 generated documents", () => {
  const rnd = prng(42);
  for (let i = 0; i < 3000; i++) {
    const value = genMap(rnd, 0);
    const yaml = stringifyYaml(value);
    let back: unknown;
    try {
      back = parseYaml(yaml);
    } catch (e) {
      assert.fail(`case ${i}: ${String(e)}\n${yaml}`);
    }
    assert.deepEqual(back ?? {}, value, `case ${i}:\n${yaml}`);
    const doc = stringifyFrontmatter(value, "body\n");
    assert.deepEqual(parseFrontmatter(doc).data, value);
  }
});

test("seeded fuzz: mutated frontmatter yields data or YamlError", () => {
  const rnd = prng(7);
  const base = stringifyFrontmatter({ name: "s", description: "multi\nline", list: [1, { a: "b" }], m: { x: "y: z" } }, "body\n");
  let parsed = 0;
  for (let i = 0; i < 4000; i++) {
    let s = base;
    for (let m = 0; m < 3; m++) {
      const at = Math.floor(rnd() * (s.length + 1));
      const r = rnd();
      if (r < 0.4) s = s.slice(0, at) + s.slice(at + 1);
      else if (r < 0.8) s = s.slice(0, at) + CHARS[Math.floor(rnd() * CHARS.length)] + s.slice(at);
      else s = s.slice(0, at) + "  " + s.slice(at);
    }
    try {
      parseFrontmatter(s);
      parsed++;
    } catch (e) {
      assert.ok(e instanceof YamlError, `unexpected ${String(e)} for ${JSON.stringify(s)}`);
      assert.ok(e.line >= 1);
    }
  }
  // both outcomes are exercised
  assert.ok(parsed > 100 && parsed < 4000, `mutations that still parse: ${parsed}`);
});
