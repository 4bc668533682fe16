/**
 * Parsing write content without copying it three times. A 60 MB write-batch is mostly a few long
 * base64 strings; parsed the ordinary way it exists as the body bytes, the decoded text, and the
 * parsed strings at once (~200 MB for one request). Here long strings made only of plain ASCII
 * (no escapes — base64 never needs one) are lifted out of the bytes before parsing: the parser
 * sees a short placeholder, and the parsed value holds a `LiftedString` that views the original
 * bytes (no copy). Only routes that ask for it get lifted values; every other check of the body
 * (UTF-8, nesting, forbidden keys, numbers) still runs on the rest of the text.
 */
import { randomBytes } from "node:crypto";

/** A long JSON string, as its raw ASCII bytes (a view into the request body). */
export class LiftedString {
  constructor(readonly bytes: Buffer) {}

  toString(): string {
    return this.bytes.toString("latin1");
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Splits `bytes` into JSON text with placeholders and the lifted strings. A placeholder is a
 * string with a per-request random prefix, so a client cannot forge one.
 */
export function liftLongStrings(bytes: Buffer, minLength: number): { text: Buffer; lifted: Buffer[]; prefix: string } {
  const prefix = `\u0001lifted-${randomBytes(8).toString("hex")}-`;
  const lifted: Buffer[] = [];
  const parts: Buffer[] = [];
  let copiedTo = 0;
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] !== QUOTE) {
      i++;
      continue;
    }
    // A string starts at i: find its end, noting escapes and non-ASCII bytes.
    let j = i + 1;
    let plain = true;
    while (j < bytes.length && bytes[j] !== QUOTE) {
      const b = bytes[j]!;
      if (b === BACKSLASH) {
        plain = false;
        j += 2;
        continue;
      }
      if (b < 0x20 || b > 0x7e) plain = false;
      j++;
    }
    if (j >= bytes.length) break; // unterminated: the parser reports it
    if (plain && j - i - 1 >= minLength) {
      parts.push(bytes.subarray(copiedTo, i), Buffer.from(JSON.stringify(prefix + lifted.length)));
      lifted.push(bytes.subarray(i + 1, j));
      copiedTo = j + 1;
    }
    i = j + 1;
  }
  if (lifted.length === 0) return { text: bytes, lifted, prefix };
  parts.push(bytes.subarray(copiedTo));
  return { text: Buffer.concat(parts), lifted, prefix };
}

/** The JSON.parse reviver that puts the lifted strings back as LiftedString values. */
export function restoreLifted(lifted: Buffer[], prefix: string): (key: string, value: unknown) => unknown {
  return (_key, value) => {
    if (typeof value !== "string" || !value.startsWith(prefix)) return value;
    const bytes = lifted[Number(value.slice(prefix.length))];
    return bytes === undefined ? value : new LiftedString(bytes);
  };
}
