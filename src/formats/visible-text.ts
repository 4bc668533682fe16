/**
 * Characters that make text lie on a terminal or in a prompt: C0/C1 controls and DEL (cursor
 * moves, fake line ends, colour), bidi overrides/isolates/marks and zero-width characters (a name
 * that reads as another one). One definition for the places that refuse them (file names, plugin
 * specs) and the places that print client text to the host (the approvals CLI).
 */
export const CONTROL_CHARS_RE = /[\u0000-\u001f\u007f-\u009f]/;
export const DECEPTIVE_CHARS_RE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
const ANY_UNSAFE_RE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** Text as the host must see it: every unsafe character shown as a visible \u{…} escape. */
export function visible(text: string): string {
  return text.replace(ANY_UNSAFE_RE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
