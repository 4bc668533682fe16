/**
 * YAML frontmatter of SKILL.md and command files: the YAML subset these files use, parsed and
 * serialized by hand (no dependency).
 *
 * Supported: block mappings and sequences by indentation, plain / single-quoted / double-quoted
 * scalars (with escapes and line folding), `|` and `>` block scalars with chomping and
 * indentation indicators, flow sequences and mappings, comments. Core-schema resolution of
 * plain scalars (null, true/false, ints incl. 0x/0o, floats, .inf/.nan); `yes`/`no` stay
 * strings (YAML 1.2) but the serializer quotes them for YAML 1.1 readers. Anchors, aliases,
 * tags, directives and complex keys are refused with a line-numbered error. Mapping keys are
 * always strings, duplicate keys are an error, `__proto__` is plain data.
 */
import { setDataKey } from "./jsonc.ts";
import { LIMITS } from "../limits.ts";

/** The only error thrown for bad YAML / frontmatter; `line` is 1-based within the file. */
export class YamlError extends Error {
  readonly line: number;
  constructor(message: string, line: number) {
    super(`${message} (line ${line})`);
    this.name = "YamlError";
    this.line = line;
  }
}


interface Line {
  indent: number;
  text: string;
}

class FlowEof extends Error {}

function isBlank(s: string): boolean {
  return /^[ \t]*$/.test(s);
}

/** Count of leading spaces (tabs never indent). */
function indentOf(raw: string): number {
  let n = 0;
  while (raw.charCodeAt(n) === 32) n++;
  return n;
}

function isSeqText(t: string): boolean {
  return t[0] === "-" && (t.length === 1 || t[1] === " " || t[1] === "\t");
}

/** Resolves a plain scalar with the YAML 1.2 core schema. */
export function resolvePlain(s: string): unknown {
  if (s === "" || s === "~" || s === "null" || s === "Null" || s === "NULL") return null;
  if (s === "true" || s === "True" || s === "TRUE") return true;
  if (s === "false" || s === "False" || s === "FALSE") return false;
  if (/^[-+]?[0-9]+$/.test(s)) return Number(s);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

class YamlParser {
  private i = 0;
  private readonly overrides = new Map<number, Line>();
  constructor(
    private readonly lines: string[],
    private readonly lineOffset: number,
  ) {}

  err(msg: string, idx: number): never {
    throw new YamlError(msg, Math.min(idx, Math.max(this.lines.length - 1, 0)) + 1 + this.lineOffset);
  }

  line(idx: number): Line {
    const o = this.overrides.get(idx);
    if (o) return o;
    const raw = this.lines[idx]!;
    const n = indentOf(raw);
    return { indent: n, text: raw.slice(n) };
  }

  /** Index of the next line that is neither blank nor a comment (lines.length when none). */
  nextSig(from = this.i): number {
    for (let k = from; k < this.lines.length; k++) {
      const l = this.line(k);
      const t = l.text.replace(/^[ \t]+/, "");
      if (t === "" || t[0] === "#") continue;
      if (l.text[0] === "\t") this.err("tabs are not allowed for indentation", k);
      return k;
    }
    return this.lines.length;
  }

  document(): unknown {
    const j = this.nextSig();
    if (j >= this.lines.length) return null;
    const l = this.line(j);
    const value = this.node(l.indent, j, 0, -1);
    const k = this.nextSig();
    if (k < this.lines.length) this.err("unexpected content (check the indentation)", k);
    return value;
  }

  /** A node whose first line is `j`, at indentation `ind`, inside a parent at `parentInd`. */
  node(ind: number, j: number, depth: number, parentInd: number): unknown {
    if (depth > LIMITS.yamlMaxDepth) this.err("nesting too deep", j);
    const l = this.line(j);
    if (/^---(?:[ \t]|$)/.test(l.text) && ind === 0) this.err("multiple documents are not supported", j);
    if (isSeqText(l.text)) return this.sequence(ind, depth);
    if (this.splitKey(l.text, j)) return this.mapping(ind, depth);
    this.i = j + 1;
    return this.value(l.text, parentInd, j, depth, false);
  }

  /** The next significant line of a block collection at indentation `ind`; -1 when the block has ended. */
  nextEntry(ind: number, what: string): number {
    const j = this.nextSig();
    if (j >= this.lines.length) return -1;
    const indent = this.line(j).indent;
    if (indent < ind) return -1;
    if (indent > ind) this.err(`bad indentation of ${what}`, j);
    return j;
  }

  mapping(ind: number, depth: number): Record<string, unknown> {
    const obj: Record<string, unknown> = {};
    const seen = new Set<string>();
    for (;;) {
      const j = this.nextEntry(ind, "a mapping entry");
      if (j < 0) break;
      const l = this.line(j);
      if (isSeqText(l.text)) this.err("a sequence item is not allowed here", j);
      const entry = this.splitKey(l.text, j);
      if (!entry) this.err("expected a 'key: value' mapping entry", j);
      if (seen.has(entry.key)) this.err(`duplicate key "${entry.key}"`, j);
      seen.add(entry.key);
      this.i = j + 1;
      setDataKey(obj, entry.key, this.value(entry.rest, ind, j, depth, true));
    }
    return obj;
  }

  sequence(ind: number, depth: number): unknown[] {
    const arr: unknown[] = [];
    for (;;) {
      const j = this.nextEntry(ind, "a sequence item");
      if (j < 0) break;
      const l = this.line(j);
      if (!isSeqText(l.text)) break;
      const after = l.text.slice(1);
      let sp = 0;
      while (after[sp] === " " || after[sp] === "\t") sp++;
      const rest = after.slice(sp);
      this.i = j + 1;
      if (rest !== "" && rest[0] !== "#" && (isSeqText(rest) || this.splitKey(rest, j))) {
        // "- key: v" / "- - x": the item is a block node starting mid-line.
        const inner = ind + 1 + sp;
        this.overrides.set(j, { indent: inner, text: rest });
        this.i = j;
        arr.push(this.node(inner, j, depth + 1, ind));
        this.overrides.delete(j);
      } else {
        arr.push(this.value(rest, ind, j, depth, false));
      }
    }
    return arr;
  }

  /** Splits `key: rest`; null when the line is not a mapping entry. */
  splitKey(text: string, j: number): { key: string; rest: string } | null {
    const q = text[0];
    if (q === '"' || q === "'") {
      const end = q === '"' ? findDoubleEnd(text, 1) : findSingleEnd(text, 1);
      if (end < 0) return null;
      let k = end + 1;
      while (text[k] === " " || text[k] === "\t") k++;
      if (text[k] !== ":" || !(k + 1 === text.length || text[k + 1] === " " || text[k + 1] === "\t")) return null;
      const key = q === '"' ? decodeDouble(text.slice(1, end), () => this.err("invalid escape in quoted key", j)) : decodeSingle(text.slice(1, end));
      return { key, rest: text.slice(k + 1).replace(/^[ \t]+/, "") };
    }
    if ("[]{}#&*!|>%@`,".includes(q ?? "")) return null;
    if ((q === "?" || q === "-") && (text.length === 1 || text[1] === " " || text[1] === "\t")) return null;
    for (let k = text.indexOf(":"); k >= 0; k = text.indexOf(":", k + 1)) {
      if (k + 1 === text.length || text[k + 1] === " " || text[k + 1] === "\t") {
        const keyText = text.slice(0, k);
        if (/[ \t]#/.test(keyText)) return null;
        const key = keyText.replace(/[ \t]+$/, "");
        if (key === "") return null;
        return { key, rest: text.slice(k + 1).replace(/^[ \t]+/, "") };
      }
    }
    return null;
  }

  /** The value after `key:` or `- ` (rest of line `j`), with the parent's indentation `ind`. */
  value(rest: string, ind: number, j: number, depth: number, isMapValue: boolean): unknown {
    if (depth > LIMITS.yamlMaxDepth) this.err("nesting too deep", j);
    if (rest === "" || rest[0] === "#") {
      const k = this.nextSig();
      if (k < this.lines.length) {
        const l = this.line(k);
        if (l.indent > ind) return this.node(l.indent, k, depth + 1, ind);
        // YAML allows a mapping's sequence value at the key's own indentation.
        if (isMapValue && l.indent === ind && isSeqText(l.text)) return this.sequence(ind, depth + 1);
      }
      return null;
    }
    const c = rest[0]!;
    if (c === "|" || c === ">") return this.blockScalar(rest, ind, j);
    if (c === '"' || c === "'") return this.quoted(rest, ind, j);
    if (c === "[" || c === "{") return this.flow(rest, ind, j);
    if ("&*!%@`".includes(c)) this.err(`unsupported YAML feature ("${c}")`, j);
    if ("]},".includes(c)) this.err(`unexpected character "${c}"`, j);
    if ((c === "?" || c === ":") && (rest.length === 1 || rest[1] === " " || rest[1] === "\t")) this.err("complex keys are not supported", j);
    return this.plain(rest, ind);
  }

  plain(first: string, ind: number): unknown {
    let [text, ended] = stripComment(first);
    let out = text.trim();
    let multi = false;
    let blanks = 0;
    let k = this.i;
    while (!ended && k < this.lines.length) {
      const raw = this.lines[k]!;
      if (this.overrides.has(k)) break;
      if (isBlank(raw)) {
        blanks++;
        k++;
        continue;
      }
      const n = indentOf(raw);
      if (n <= ind) break;
      const t = raw.slice(n).replace(/^\t+/, "");
      if (t[0] === "#") break;
      // A more-indented "key: value" under a scalar is an indentation mistake, not text.
      if (this.splitKey(t, k)) this.err("mapping values are not allowed here (check the indentation)", k);
      [text, ended] = stripComment(t);
      out += blanks > 0 ? "\n".repeat(blanks) : " ";
      out += text.trim();
      multi = true;
      blanks = 0;
      k++;
      this.i = k;
    }
    return multi ? out : resolvePlain(out);
  }

  quoted(rest: string, ind: number, j: number): string {
    const q = rest[0]!;
    let buf = rest;
    let lastLine = j;
    let end = q === '"' ? findDoubleEnd(buf, 1) : findSingleEnd(buf, 1);
    while (end < 0) {
      lastLine = this.i;
      buf += "\n" + this.continuation(ind, j, "unterminated quoted string");
      end = q === '"' ? findDoubleEnd(buf, 1) : findSingleEnd(buf, 1);
    }
    const after = buf.slice(end + 1);
    if (!/^(?:[ \t]*|[ \t]+#.*)$/.test(after)) this.err("unexpected characters after a quoted string", lastLine);
    const inner = buf.slice(1, end);
    return q === '"' ? decodeDouble(inner, () => this.err("invalid escape sequence in a double-quoted string", j)) : decodeSingle(inner);
  }

  flow(rest: string, ind: number, j: number): unknown {
    let buf = rest;
    for (;;) {
      try {
        return new FlowParser(buf, (m) => this.err(m, j)).document();
      } catch (e) {
        if (!(e instanceof FlowEof)) throw e;
        buf += "\n" + this.continuation(ind, j, "unterminated flow collection");
      }
    }
  }

  /** Consumes the next raw line of a scalar or flow collection begun on line `j` (more indented than `ind`, or blank). */
  continuation(ind: number, j: number, unterminated: string): string {
    if (this.i >= this.lines.length || this.overrides.has(this.i)) this.err(unterminated, j);
    const raw = this.lines[this.i]!;
    if (!isBlank(raw) && indentOf(raw) <= ind) this.err(unterminated, j);
    this.i++;
    return raw;
  }

  blockScalar(header: string, ind: number, j: number): string {
    const m = /^([|>])([-+]?)([1-9]?)([-+]?)(?:[ \t]+#.*|[ \t]*)$/.exec(header);
    if (!m || (m[2] && m[4])) this.err("invalid block scalar header", j);
    const folded = m[1] === ">";
    const chomp = m[2] || m[4] || "";
    let contentIndent = m[3] ? Math.max(ind, 0) + Number(m[3]) : -1;
    const n = this.lines.length;
    if (contentIndent < 0) {
      for (let k = this.i; k < n; k++) {
        const raw = this.lines[k]!;
        if (isBlank(raw)) continue;
        contentIndent = indentOf(raw);
        break;
      }
      if (contentIndent <= ind) contentIndent = -1; // no content lines
    }
    const lines: { empty: boolean; text: string }[] = [];
    let k = this.i;
    if (contentIndent >= 0) {
      for (; k < n; k++) {
        if (this.overrides.has(k)) break;
        const raw = this.lines[k]!;
        const s = indentOf(raw);
        if (isBlank(raw) && s <= contentIndent) {
          lines.push({ empty: true, text: "" });
          continue;
        }
        if (s < contentIndent) break;
        lines.push({ empty: false, text: raw.slice(contentIndent) });
      }
    } else {
      while (k < n && isBlank(this.lines[k]!)) {
        lines.push({ empty: true, text: "" });
        k++;
      }
    }
    this.i = k;
    let last = -1;
    for (let x = 0; x < lines.length; x++) if (!lines[x]!.empty) last = x;
    const trailing = lines.length - 1 - last;
    if (last < 0) return chomp === "+" ? "\n".repeat(lines.length) : "";
    let body = "";
    if (!folded) {
      body = lines.slice(0, last + 1).map((l) => l.text).join("\n");
    } else {
      let empties = 0;
      let started = false;
      let prevMore = false;
      for (let x = 0; x <= last; x++) {
        const l = lines[x]!;
        if (l.empty) {
          empties++;
          continue;
        }
        const more = l.text[0] === " " || l.text[0] === "\t";
        if (!started) body += "\n".repeat(empties);
        else if (more || prevMore) body += "\n".repeat(empties + 1);
        else body += empties === 0 ? " " : "\n".repeat(empties);
        body += l.text;
        started = true;
        prevMore = more;
        empties = 0;
      }
    }
    if (chomp === "-") return body;
    if (chomp === "+") return body + "\n" + "\n".repeat(trailing);
    return body + "\n";
  }
}

/** Cuts a ` #comment`; returns [text, hadComment]. */
function stripComment(s: string): [string, boolean] {
  const m = /[ \t]#/.exec(s);
  return m ? [s.slice(0, m.index), true] : [s, false];
}

/** Index of the closing `"` (skipping escapes), or -1. */
function findDoubleEnd(s: string, from: number): number {
  for (let k = from; k < s.length; k++) {
    if (s[k] === "\\") k++;
    else if (s[k] === '"') return k;
  }
  return -1;
}

/** Index of the closing `'` (`''` is an escaped quote), or -1. */
function findSingleEnd(s: string, from: number): number {
  for (let k = from; k < s.length; k++) {
    if (s[k] === "'") {
      if (s[k + 1] === "'") k++;
      else return k;
    }
  }
  return -1;
}

/** Line folding of quoted scalars: a break becomes a space, n blank lines become n newlines. */
function foldQuoted(lines: string[], decodeLine: (s: string, isLast: boolean) => { text: string; joined: boolean }): string {
  let out = "";
  let blanks = 0;
  let pendingJoin = false;
  for (let x = 0; x < lines.length; x++) {
    let l = lines[x]!;
    const first = x === 0;
    const lastLine = x === lines.length - 1;
    if (!first) l = l.replace(/^[ \t]+/, "");
    // Trailing blanks are folded away, but not an escaped one ("\\ ").
    if (!lastLine) l = l.replace(/(?<!\\)[ \t]+$/, "");
    if (!first && !lastLine && l === "") {
      blanks++;
      continue;
    }
    if (!first && !pendingJoin) out += blanks > 0 ? "\n".repeat(blanks) : " ";
    else if (!first && blanks > 0) out += "\n".repeat(blanks);
    blanks = 0;
    const d = decodeLine(l, lastLine);
    out += d.text;
    pendingJoin = d.joined;
  }
  return out;
}

function decodeSingle(inner: string): string {
  if (!inner.includes("\n")) return inner.replace(/''/g, "'");
  return foldQuoted(inner.split("\n"), (s) => ({ text: s.replace(/''/g, "'"), joined: false }));
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "0": "\0", a: "\x07", b: "\b", t: "\t", "\t": "\t", n: "\n", v: "\v", f: "\f", r: "\r", e: "\x1b",
  " ": " ", '"': '"', "/": "/", "\\": "\\", N: "\u0085", _: "\u00a0", L: "\u2028", P: "\u2029",
};

function decodeDouble(inner: string, bad: () => never): string {
  const decodeLine = (s: string): { text: string; joined: boolean } => {
    let out = "";
    for (let k = 0; k < s.length; k++) {
      const c = s[k]!;
      if (c !== "\\") {
        out += c;
        continue;
      }
      if (k + 1 === s.length) return { text: out, joined: true }; // escaped line break
      const e = s[++k]!;
      if (e in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[e];
        continue;
      }
      const len = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
      const hex = s.slice(k + 1, k + 1 + len);
      if (len === 0 || hex.length !== len || !/^[0-9a-fA-F]+$/.test(hex)) bad();
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) bad();
      out += len === 4 ? String.fromCharCode(cp) : String.fromCodePoint(cp);
      k += len;
    }
    return { text: out, joined: false };
  };
  if (!inner.includes("\n")) {
    const d = decodeLine(inner);
    if (d.joined) bad();
    return d.text;
  }
  // A trailing backslash on a line joins without a space; keep the raw trailing whitespace before it.
  return foldQuoted(inner.split("\n"), (s) => decodeLine(s));
}

/** Flow collections (`[a, b]`, `{k: v}`) over one buffer; throws FlowEof when the buffer ends early. */
class FlowParser {
  private p = 0;
  constructor(
    private readonly s: string,
    private readonly fail: (msg: string) => never,
  ) {}

  ws(): void {
    for (;;) {
      const c = this.s[this.p];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") this.p++;
      else if (c === "#" && (this.p === 0 || /[ \t\n]/.test(this.s[this.p - 1]!))) {
        while (this.p < this.s.length && this.s[this.p] !== "\n") this.p++;
      } else return;
    }
  }

  /** The next significant character (whitespace and comments skipped); FlowEof at the end of the buffer. */
  peek(): string {
    this.ws();
    if (this.p >= this.s.length) throw new FlowEof();
    return this.s[this.p]!;
  }

  document(): unknown {
    const v = this.value(0);
    this.ws();
    if (this.p < this.s.length) this.fail("unexpected characters after a flow collection");
    return v;
  }

  value(depth: number): unknown {
    if (depth > LIMITS.yamlMaxDepth) this.fail("nesting too deep");
    const c = this.peek();
    if (c === "[") return this.seq(depth);
    if (c === "{") return this.map(depth);
    if (c === '"' || c === "'") return this.quoted();
    return this.plain(false);
  }

  quoted(): string {
    const q = this.s[this.p]!;
    const end = q === '"' ? findDoubleEnd(this.s, this.p + 1) : findSingleEnd(this.s, this.p + 1);
    if (end < 0) throw new FlowEof();
    const inner = this.s.slice(this.p + 1, end);
    this.p = end + 1;
    return q === '"' ? decodeDouble(inner, () => this.fail("invalid escape sequence")) : decodeSingle(inner);
  }

  plain(isKey: boolean): unknown {
    const start = this.p;
    const c = this.s[start]!;
    if ("&*!%@`|>".includes(c)) this.fail(`unsupported YAML feature ("${c}")`);
    if ("]},:".includes(c) && !(c === ":" && /[^ \t\n,\]}]/.test(this.s[start + 1] ?? " "))) this.fail(`unexpected character "${c}"`);
    while (this.p < this.s.length) {
      const d = this.s[this.p]!;
      if (d === "," || d === "[" || d === "]" || d === "{" || d === "}") break;
      if (d === ":" && /[ \t\n,\]}]/.test(this.s[this.p + 1] ?? " ")) break;
      if (d === "#" && /[ \t\n]/.test(this.s[this.p - 1]!)) break;
      this.p++;
    }
    const text = this.s.slice(start, this.p).replace(/\s+/g, " ").trim();
    return isKey ? text : resolvePlain(text);
  }

  seq(depth: number): unknown[] {
    this.p++;
    const arr: unknown[] = [];
    for (;;) {
      if (this.peek() === "]") {
        this.p++;
        return arr;
      }
      arr.push(this.value(depth + 1));
      const c = this.peek();
      if (c === ":") this.fail("mappings inside flow sequences are not supported");
      if (c === ",") this.p++;
      else if (c !== "]") this.fail("expected ',' or ']' in a flow sequence");
    }
  }

  map(depth: number): Record<string, unknown> {
    this.p++;
    const obj: Record<string, unknown> = {};
    const seen = new Set<string>();
    for (;;) {
      const c = this.peek();
      if (c === "}") {
        this.p++;
        return obj;
      }
      const key = c === '"' || c === "'" ? this.quoted() : (this.plain(true) as string);
      if (seen.has(key)) this.fail(`duplicate key "${key}"`);
      seen.add(key);
      let v: unknown = null;
      if (this.peek() === ":") {
        this.p++;
        const d = this.peek();
        if (d !== "," && d !== "}") v = this.value(depth + 1);
      }
      setDataKey(obj, key, v);
      const e = this.peek();
      if (e === ",") this.p++;
      else if (e !== "}") this.fail("expected ',' or '}' in a flow mapping");
    }
  }
}

/**
 * Parses a YAML text of the supported subset. `lineOffset` is added to reported line numbers
 * (the frontmatter block starts on line 2 of its file). Throws YamlError only.
 */
export function parseYaml(text: string, lineOffset = 0): unknown {
  const lines = text.split(/\r?\n/);
  // A final line break ends the last line; it does not start an empty one (matters for `|+`).
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  try {
    return new YamlParser(lines, lineOffset).document();
  } catch (e) {
    if (e instanceof YamlError) throw e;
    // Defensive: any unexpected failure is still a per-file parse error, never a crash.
    throw new YamlError(e instanceof RangeError ? "nesting too deep" : "invalid YAML", 1 + lineOffset);
  }
}

// ---------------------------------------------------------------------------------------------
// Frontmatter documents

export interface Frontmatter {
  data: Record<string, unknown>;
  /** Everything after the closing `---` line. */
  body: string;
  hasFrontmatter: boolean;
}

const FENCE = /^---[ \t]*$/;

/**
 * Splits and parses a markdown document with YAML frontmatter. A document that does not start
 * with a `---` line has no frontmatter (`data` {}, the whole text is the body). Throws YamlError
 * for an unterminated block, YAML errors, or frontmatter that is not a mapping.
 */
export function parseFrontmatter(text: string): Frontmatter {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const firstEnd = src.indexOf("\n");
  const firstLine = (firstEnd < 0 ? src : src.slice(0, firstEnd)).replace(/\r$/, "");
  if (!FENCE.test(firstLine)) return { data: {}, body: text, hasFrontmatter: false };
  if (firstEnd < 0) throw new YamlError("unterminated frontmatter (no closing ---)", 1);
  let pos = firstEnd + 1;
  const yamlLines: string[] = [];
  for (;;) {
    if (pos >= src.length) throw new YamlError("unterminated frontmatter (no closing ---)", 1);
    const nl = src.indexOf("\n", pos);
    const line = (nl < 0 ? src.slice(pos) : src.slice(pos, nl)).replace(/\r$/, "");
    if (FENCE.test(line)) {
      const body = nl < 0 ? "" : src.slice(nl + 1);
      const value = parseYaml(yamlLines.length ? yamlLines.join("\n") + "\n" : "", 1);
      if (value === null) return { data: {}, body, hasFrontmatter: true };
      if (typeof value !== "object" || Array.isArray(value)) throw new YamlError("frontmatter must be a mapping", 2);
      return { data: value as Record<string, unknown>, body, hasFrontmatter: true };
    }
    yamlLines.push(line);
    if (nl < 0) throw new YamlError("unterminated frontmatter (no closing ---)", 1);
    pos = nl + 1;
  }
}

/** `---\n<yaml>---\n<body>`: the inverse of parseFrontmatter. */
export function stringifyFrontmatter(data: Record<string, unknown>, body: string): string {
  return `---\n${stringifyYaml(data)}---\n${body}`;
}

// ---------------------------------------------------------------------------------------------
// Serializer

const YAML11_WORDS = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$/;

function hasBadChars(s: string): boolean {
  // Control characters, NEL/LS/PS, BOM and lone surrogates are written as escapes.
  return /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/** True when `s` can be written as a plain scalar and reads back as the same string. */
function plainSafe(s: string): boolean {
  if (s === "" || hasBadChars(s) || /[\n\t]/.test(s)) return false;
  if (/^[\s\-?:,\[\]{}#&*!|>'"%@`]/.test(s) || /\s$/.test(s) || s.endsWith(":")) return false;
  if (s.includes(": ") || s.includes(" #")) return false;
  if (YAML11_WORDS.test(s)) return false;
  // Anything that resolves to a non-string (numbers, .inf, 0x…) or number-ish 1.1 forms (1_000, 1:20) is quoted.
  if (typeof resolvePlain(s) !== "string" || /^[-+.]?[0-9]/.test(s)) return false;
  return true;
}

function quoteDouble(s: string): string {
  let out = '"';
  for (let k = 0; k < s.length; k++) {
    const c = s[k]!;
    const code = c.charCodeAt(0);
    if (c === '"') out += '\\"';
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\t") out += "\\t";
    else if (c === "\r") out += "\\r";
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) out += "\\x" + code.toString(16).padStart(2, "0");
    else if (code === 0x2028) out += "\\L";
    else if (code === 0x2029) out += "\\P";
    else if (code === 0xfeff || (code >= 0xd800 && code <= 0xdfff && !isPairedSurrogate(s, k))) out += "\\u" + code.toString(16).padStart(4, "0");
    else if (code >= 0xd800 && code <= 0xdbff) {
      out += c + s[k + 1];
      k++;
    } else out += c;
  }
  return out + '"';
}

function isPairedSurrogate(s: string, k: number): boolean {
  const c = s.charCodeAt(k);
  if (c >= 0xd800 && c <= 0xdbff) {
    const n = s.charCodeAt(k + 1);
    return n >= 0xdc00 && n <= 0xdfff;
  }
  return false; // a low surrogate reached here was not consumed by a preceding high one
}

/** Multi-line text that a literal block scalar (`|`) reproduces exactly. */
function literalSafe(s: string): boolean {
  if (!s.includes("\n") || hasBadChars(s) || s.includes("\r")) return false;
  if (/^[ \t\n]/.test(s)) return false;
  const content = s.replace(/\n+$/, "");
  // Trailing whitespace on a line, or whitespace-only lines, would be ambiguous with indentation.
  return content.split("\n").every((l) => !/[ \t]$/.test(l));
}

function scalar(v: unknown): string | undefined {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return ".nan";
    if (v === Infinity) return ".inf";
    if (v === -Infinity) return "-.inf";
    if (Object.is(v, -0)) return "-0";
    return String(v);
  }
  if (typeof v === "string") return plainSafe(v) ? v : undefined;
  return undefined;
}

function keyText(k: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/.test(k) && !k.endsWith(":") ? k : quoteDouble(k);
}

/** Lines of `v` written after `prefix` ("key:" or "-"), at indentation `ind` for nested blocks. */
function emitValue(prefix: string, v: unknown, ind: number, out: string[]): void {
  const pad = " ".repeat(ind);
  if (Array.isArray(v)) {
    if (v.length === 0) out.push(`${pad}${prefix} []`);
    else {
      out.push(`${pad}${prefix}`);
      for (const item of v) emitValue("-", item, ind + 2, out);
    }
    return;
  }
  if (typeof v === "object" && v !== null) {
    const keys = Object.keys(v);
    if (keys.length === 0) out.push(`${pad}${prefix} {}`);
    else {
      out.push(`${pad}${prefix}`);
      emitMap(v as Record<string, unknown>, ind + 2, out);
    }
    return;
  }
  const sc = scalar(v);
  if (sc !== undefined) {
    out.push(`${pad}${prefix} ${sc}`);
    return;
  }
  const s = String(v);
  if (literalSafe(s)) {
    const trailing = /\n+$/.exec(s)?.[0].length ?? 0;
    const chomp = trailing === 0 ? "-" : trailing === 1 ? "" : "+";
    out.push(`${pad}${prefix} |${chomp}`);
    const content = s.slice(0, s.length - trailing);
    for (const l of content.split("\n")) out.push(l === "" ? "" : `${pad}  ${l}`);
    for (let x = 1; x < trailing; x++) out.push("");
    return;
  }
  out.push(`${pad}${prefix} ${quoteDouble(s)}`);
}

function emitMap(obj: Record<string, unknown>, ind: number, out: string[]): void {
  for (const k of Object.keys(obj)) {
    if (obj[k] === undefined) continue;
    emitValue(`${keyText(k)}:`, obj[k], ind, out);
  }
}

/**
 * Serializes a mapping (values: strings, numbers, booleans, null, arrays, nested mappings) so
 * that parseYaml reads back the same value. Returns "" for an empty mapping; otherwise lines end
 * with "\n".
 */
export function stringifyYaml(data: Record<string, unknown>): string {
  const out: string[] = [];
  emitMap(data, 0, out);
  return out.length ? out.join("\n") + "\n" : "";
}
