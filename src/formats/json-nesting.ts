/**
 * Bounded JSON nesting. V8's JSON.parse accepts any depth, but JSON.stringify and every recursive
 * walk (redaction, canonical hashing) overflow the stack somewhere past a few thousand levels: a
 * 50,000-deep `.opencode/openwork.json` answered `GET …/config` with a 500. Text from files and from
 * other services is therefore parsed only when its nesting is bounded.
 */

/** Maximum bracket nesting of JSON text, ignoring brackets inside strings. Linear, no recursion. */
export function maxNesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return max;
}

/** JSON.parse, with nesting deeper than `maxDepth` a SyntaxError like any other malformed text. */
export function parseJsonBounded(text: string, maxDepth: number): unknown {
  if (maxNesting(text) > maxDepth) throw new SyntaxError(`JSON is nested deeper than ${maxDepth} levels`);
  return JSON.parse(text);
}
