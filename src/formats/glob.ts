/**
 * A tiny glob matcher: `*` matches any run of characters (including none, including `.` and
 * `:`); every other character matches itself. Linear-time backtracking on the last star, so a
 * hostile pattern like `*a*a*a*…b` cannot blow up (no regular expressions are built).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === "*") {
      starP = p++;
      starT = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}
