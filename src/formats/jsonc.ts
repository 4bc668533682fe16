/**
 * JSONC (JSON with comments): a hand-written parser that keeps positions, and
 * comment-preserving edits of top-level keys.
 *
 * Accepted on top of JSON: `//` and `/* *\/` comments, trailing commas in objects and arrays,
 * a leading UTF-8 BOM, CRLF line endings. Errors carry offset (UTF-16 code units into the
 * original text), 1-based line and column, and an error name in the style of VS Code's
 * jsonc-parser (`InvalidSymbol`, `CommaExpected`, …) so clients see familiar codes.
 */
import { LIMITS } from "../limits.ts";

/** One parse error as reported in `invalid_jsonc` details. */
export interface JsoncErrorInfo {
  offset: number;
  line: number;
  column: number;
  error: string;
}

/** The only error this module throws for bad input. */
export class JsoncParseError extends Error {
  readonly errors: JsoncErrorInfo[];
  constructor(errors: JsoncErrorInfo[]) {
    const e = errors[0]!;
    super(`${e.error} at line ${e.line}, column ${e.column}`);
    this.name = "JsoncParseError";
    this.errors = errors;
  }
}

export type JsoncNode =
  | { type: "object"; start: number; end: number; props: JsoncProperty[] }
  | { type: "array"; start: number; end: number; items: JsoncNode[] }
  | { type: "string" | "number" | "boolean" | "null"; start: number; end: number };

export interface JsoncProperty {
  key: string;
  keyStart: number;
  keyEnd: number;
  value: JsoncNode;
  /** Offset just after the comma following the value, when there is one. */
  commaEnd?: number;
}

export interface JsoncDocument {
  /** The parsed value, or undefined for an empty (whitespace/comments only) document. */
  value: unknown;
  /** Position tree of the root value (undefined for an empty document). */
  root: JsoncNode | undefined;
  text: string;
}


/** Sets a key on a parsed object so that `__proto__` & co. stay plain data (never touch the prototype). */
export function setDataKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    // Assignment would replace the object's prototype; define an own data property instead.
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/** 1-based line and column of `offset` (CRLF, LF and lone CR each end a line). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || (c === 13 && text.charCodeAt(i + 1) !== 10)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  fail(error: string, offset = this.pos): never {
    const { line, column } = lineColumn(this.text, offset);
    throw new JsoncParseError([{ offset, line, column, error }]);
  }

  /** Skips whitespace and comments. */
  skip(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (c === 32 || c === 9 || c === 10 || c === 13 || c === 0xfeff && this.pos === 0) {
        this.pos++;
      } else if (c === 47 /* / */) {
        const n = t.charCodeAt(this.pos + 1);
        if (n === 47) {
          this.pos += 2;
          while (this.pos < t.length) {
            const d = t.charCodeAt(this.pos);
            if (d === 10 || d === 13) break;
            this.pos++;
          }
        } else if (n === 42 /* * */) {
          const close = t.indexOf("*/", this.pos + 2);
          if (close < 0) this.fail("UnexpectedEndOfComment", t.length);
          this.pos = close + 2;
        } else {
          this.fail("InvalidSymbol");
        }
      } else {
        return;
      }
    }
  }

  document(): JsoncDocument {
    this.skip();
    if (this.pos >= this.text.length) return { value: undefined, root: undefined, text: this.text };
    const { value, node } = this.value(0);
    this.skip();
    if (this.pos < this.text.length) this.fail("EndOfFileExpected");
    return { value, root: node, text: this.text };
  }

  value(depth: number): { value: unknown; node: JsoncNode } {
    if (depth > LIMITS.jsoncMaxDepth) this.fail("MaxDepthExceeded");
    const t = this.text;
    const start = this.pos;
    const c = t.charCodeAt(start);
    if (c === 123 /* { */) return this.object(depth);
    if (c === 91 /* [ */) return this.array(depth);
    if (c === 34 /* " */) {
      const value = this.string();
      return { value, node: { type: "string", start, end: this.pos } };
    }
    if (c === 45 || (c >= 48 && c <= 57)) {
      const value = this.number();
      return { value, node: { type: "number", start, end: this.pos } };
    }
    for (const [word, value] of [["true", true], ["false", false], ["null", null]] as const) {
      if (t.startsWith(word, start) && !isIdentChar(t.charCodeAt(start + word.length))) {
        this.pos += word.length;
        return { value, node: { type: value === null ? "null" : "boolean", start, end: this.pos } };
      }
    }
    if (start >= t.length) this.fail("ValueExpected");
    this.fail("InvalidSymbol");
  }

  object(depth: number): { value: unknown; node: JsoncNode } {
    const start = this.pos;
    this.pos++;
    const obj: Record<string, unknown> = {};
    const props: JsoncProperty[] = [];
    this.skip();
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 125 /* } */) break;
      if (this.pos >= this.text.length) this.fail("CloseBraceExpected");
      // Only reached at the start or after a comma (anything else after a value failed below).
      if (c !== 34) this.fail("PropertyNameExpected");
      const keyStart = this.pos;
      const key = this.string();
      const keyEnd = this.pos;
      this.skip();
      if (this.text.charCodeAt(this.pos) !== 58 /* : */) this.fail("ColonExpected");
      this.pos++;
      this.skip();
      const { value, node } = this.value(depth + 1);
      setDataKey(obj, key, value);
      const prop: JsoncProperty = { key, keyStart, keyEnd, value: node };
      props.push(prop);
      this.skip();
      const d = this.text.charCodeAt(this.pos);
      if (d === 44 /* , */) {
        this.pos++;
        prop.commaEnd = this.pos;
        this.skip();
      } else if (d !== 125) {
        if (this.pos >= this.text.length) this.fail("CloseBraceExpected");
        this.fail("CommaExpected");
      }
    }
    this.pos++;
    return { value: obj, node: { type: "object", start, end: this.pos, props } };
  }

  array(depth: number): { value: unknown; node: JsoncNode } {
    const start = this.pos;
    this.pos++;
    const arr: unknown[] = [];
    const items: JsoncNode[] = [];
    let needComma = false;
    this.skip();
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 93 /* ] */) break;
      if (this.pos >= this.text.length) this.fail("CloseBracketExpected");
      if (needComma) this.fail("CommaExpected");
      const { value, node } = this.value(depth + 1);
      arr.push(value);
      items.push(node);
      this.skip();
      if (this.text.charCodeAt(this.pos) === 44) {
        this.pos++;
        this.skip();
      } else {
        needComma = true;
      }
    }
    this.pos++;
    return { value: arr, node: { type: "array", start, end: this.pos, items } };
  }

  string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = "";
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("UnexpectedEndOfString");
      const c = t.charCodeAt(this.pos);
      if (c === 34) {
        out += t.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("InvalidCharacter");
      if (c === 92 /* \ */) {
        out += t.slice(chunkStart, this.pos);
        const e = t[this.pos + 1];
        switch (e) {
          case '"': out += '"'; break;
          case "\\": out += "\\"; break;
          case "/": out += "/"; break;
          case "b": out += "\b"; break;
          case "f": out += "\f"; break;
          case "n": out += "\n"; break;
          case "r": out += "\r"; break;
          case "t": out += "\t"; break;
          case "u": {
            const hex = t.slice(this.pos + 2, this.pos + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("InvalidUnicode", this.pos);
            out += String.fromCharCode(parseInt(hex, 16));
            this.pos += 4;
            break;
          }
          default:
            if (this.pos + 1 >= t.length) this.fail("UnexpectedEndOfString");
            this.fail("InvalidEscapeCharacter", this.pos);
        }
        this.pos += 2;
        chunkStart = this.pos;
        continue;
      }
      this.pos++;
    }
  }

  number(): number {
    const t = this.text;
    const start = this.pos;
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = start;
    const found = m.exec(t);
    if (!found || found[0] === "-") this.fail("InvalidNumberFormat", start);
    this.pos = start + found[0].length;
    // "01", "1.", "1e", "-x": the regex stopped early in front of more number-ish characters.
    if (isIdentChar(t.charCodeAt(this.pos)) || t[this.pos] === ".") this.fail("InvalidNumberFormat", start);
    return Number(found[0]);
  }
}

function isIdentChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c === 43 || c === 45;
}

/**
 * Parses JSONC text. Throws JsoncParseError (and nothing else) for bad input.
 * An empty or comments-only document yields `value: undefined`.
 */
export function parseJsonc(text: string): JsoncDocument {
  return new Parser(text).document();
}

/** Parses a JSONC document that must be an object; empty → {}. */
export function parseJsoncObject(text: string): Record<string, unknown> {
  const doc = parseJsonc(text);
  if (doc.value === undefined) return {};
  if (!isPlainObject(doc.value)) throw objectExpected(text, doc.root!.start);
  return doc.value;
}

function objectExpected(text: string, offset: number): JsoncParseError {
  const { line, column } = lineColumn(text, offset);
  return new JsoncParseError([{ offset, line, column, error: "ObjectExpected" }]);
}

/** A JSON object (not null, not an array). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The file's line ending: CRLF when its first line break is CRLF, else LF. */
export function detectEol(text: string): "\n" | "\r\n" {
  const i = text.indexOf("\n");
  return i > 0 && text[i - 1] === "\r" ? "\r\n" : "\n";
}

/** Leading whitespace of the line holding `offset`. */
function lineIndent(text: string, offset: number): string {
  const s = lineStartOf(text, offset);
  let e = s;
  while (e < text.length && (text[e] === " " || text[e] === "\t")) e++;
  return text.slice(s, e);
}

/** JSON text of `value` (2-space indent) with continuation lines prefixed by `indent`. */
function formatValue(value: unknown, indent: string, eol: string): string {
  const json = JSON.stringify(value, null, 2) ?? "null";
  return json.split("\n").join(eol + indent);
}

/**
 * Returns `text` with top-level key `key` set to `value`, editing only that key's text:
 * an existing key's value is rewritten in place (the last occurrence, the one that wins);
 * a new key is appended at the end of the root object. Everything else stays byte-for-byte.
 * Empty documents become `{\n  "key": value\n}\n`. Throws JsoncParseError for unparsable
 * text or a root that is not an object.
 */
export function setTopLevelKey(text: string, key: string, value: unknown): string {
  const doc = parseJsonc(text);
  const eol = detectEol(text);
  if (doc.root === undefined) {
    // Keep any leading comments/BOM of a comments-only file; add the object after them.
    const body = `{${eol}  ${JSON.stringify(key)}: ${formatValue(value, "  ", eol)}${eol}}${eol}`;
    const trimmed = text.replace(/[ \t\r\n]+$/, "");
    return trimmed.length === 0 || trimmed === "\ufeff" ? trimmed + body : trimmed + eol + body;
  }
  const root = doc.root;
  if (root.type !== "object") throw objectExpected(text, root.start);
  let existing: JsoncProperty | undefined;
  for (const p of root.props) if (p.key === key) existing = p;
  if (existing) {
    const indent = lineIndent(text, existing.keyStart);
    return text.slice(0, existing.value.start) + formatValue(value, indent, eol) + text.slice(existing.value.end);
  }
  const closing = root.end - 1; // offset of "}"
  const last = root.props[root.props.length - 1];
  const trailingComma = last?.commaEnd !== undefined;
  // Indentation of the new entry: that of the last key, else the closing brace's plus two spaces.
  const closeIndent = lineIndent(text, closing);
  const closeOnOwnLine = text.slice(lineStartOf(text, closing), closing).trim() === "";
  const indent = last ? lineIndent(text, last.keyStart) : closeIndent + "  ";
  const entry = `${JSON.stringify(key)}: ${formatValue(value, indent, eol)}`;
  if (closeOnOwnLine && (last === undefined || lineStartOf(text, closing) > last.value.end)) {
    // Multi-line object: a comma after the last value, the new entry on its own line before "}".
    const at = lineStartOf(text, closing);
    let out = text;
    out = out.slice(0, at) + indent + entry + (trailingComma ? "," : "") + eol + out.slice(at);
    if (last && !trailingComma) out = out.slice(0, last.value.end) + "," + out.slice(last.value.end);
    return out;
  }
  if (!last) {
    // `{}` or `{ /* c */ }` on one line: open it up.
    const inner = text.slice(root.start + 1, closing);
    const innerTrim = inner.trim();
    const keep = innerTrim ? " " + innerTrim : "";
    return text.slice(0, root.start + 1) + keep + eol + closeIndent + "  " + entry + eol + closeIndent + text.slice(closing);
  }
  // Single-line object (`{"a": 1}`): insert after the last value (or its trailing comma).
  const after = trailingComma ? last.commaEnd! : last.value.end;
  const insert = trailingComma ? ` ${entry},` : `, ${entry}`;
  return text.slice(0, after) + insert + text.slice(after);
}

/** Offset of the start of the line holding `offset`. */
function lineStartOf(text: string, offset: number): number {
  let s = offset;
  while (s > 0 && text[s - 1] !== "\n" && text[s - 1] !== "\r") s--;
  return s;
}

/**
 * Applies several top-level key updates in order (each comment-preserving).
 * Keys whose current value already deep-equals the new one are left untouched.
 */
export function setTopLevelKeys(text: string, updates: Record<string, unknown>): string {
  let out = text;
  const current = parseJsoncObject(text);
  for (const key of Object.keys(updates)) {
    const next = updates[key];
    if (Object.prototype.hasOwnProperty.call(current, key) && jsonEqual(current[key], next)) continue;
    out = setTopLevelKey(out, key, next);
  }
  return out;
}

/** Structural equality of JSON values (key order of objects ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(ao[k], bo[k]));
}
