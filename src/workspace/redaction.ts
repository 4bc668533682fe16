/**
 * Viewer redaction: secrets in configuration never reach viewer-scope tokens.
 * A string under a key that names a secret (key, token, secret, password/passwd/pwd/pass,
 * credentials, cookie, bearer, auth, private) becomes "[redacted]"; every value inside an
 * `environment`, `env` or `headers` object does too (MCP servers and providers keep credentials
 * there under arbitrary names). Inside any string, what looks like a credential is cut as well
 * (see redactEmbedded).
 */
export const REDACTED = "[redacted]";

const WORDS = "key|token|secret|passw|pwd|credential|cookie|bearer|auth|private";
const SECRET_KEY = new RegExp(`${WORDS}|^pass$`, "i");
const SECRET_BAGS = new Set(["environment", "env", "headers"]);
/**
 * A deep copy of `value` with secrets replaced. Strings are redacted under secret-looking keys
 * (at any depth below such a key: `"auth": {"user": …, "pass": …}`, `"tokens": [...]`) and in
 * environment/header bags; numbers such as `maxTokens` are not secrets and stay. Credentials
 * embedded in strings are cut too: `user:password@` in URLs, secret-looking query parameters, and
 * the value after a `--api-key`/`--token=`-style flag in command lines.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, false, false) as T;
}

function redact(value: unknown, inBag: boolean, underSecretKey: boolean): unknown {
  if (Array.isArray(value)) return redactList(value, inBag, underSecretKey);
  if (typeof value === "string") return inBag || underSecretKey ? REDACTED : redactEmbedded(value);
  if (typeof value !== "object" || value === null) return inBag && value !== null && value !== undefined ? REDACTED : value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const r = SECRET_BAGS.has(k) && typeof v === "object" && v !== null
      ? redact(v, true, underSecretKey)
      : redact(v, inBag, underSecretKey || SECRET_KEY.test(k));
    // defineProperty: a "__proto__" key read from a config file stays a plain data key.
    Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** A flag that announces a secret: `--api-key`, `-token`, `--password`, and the short `-k`, `-p`, `-u` of curl/mysql/redis-cli. */
const SECRET_FLAG = new RegExp(`^(--?[A-Za-z0-9_-]*(${WORDS})[A-Za-z0-9_-]*|-[kpu])$`, "i");

/** Lists (e.g. MCP `command` arrays): the element after a secret flag is redacted as well. */
function redactList(list: unknown[], inBag: boolean, underSecretKey: boolean): unknown[] {
  return list.map((v, i) => {
    const prev = list[i - 1];
    if (typeof v === "string" && typeof prev === "string" && SECRET_FLAG.test(prev)) return REDACTED;
    return redact(v, inBag, underSecretKey);
  });
}

const QUOTED_OR_WORD = `("[^"]*"|'[^']*'|[^\s"']+)`;
/** Replacements applied to every string, in order (each keeps what names the secret). */
const EMBEDDED: [RegExp, string][] = [
  // NAME=value and --flag=value anywhere (`sh -c "API_KEY=… run"`, `--token=…`).
  [new RegExp(`((?:^|[\\s;&|(])(?:--?)?[A-Za-z0-9_.-]*(?:${WORDS})[A-Za-z0-9_.-]*)=${QUOTED_OR_WORD}`, "gi"), `$1=${REDACTED}`],
  // --flag value and -k value inside a command string.
  [new RegExp(`((?:^|\\s)(?:--?[A-Za-z0-9_-]*(?:${WORDS})[A-Za-z0-9_-]*|-[kpu]))\\s+${QUOTED_OR_WORD}`, "gi"), `$1 ${REDACTED}`],
  // Authorization schemes.
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, `$1 ${REDACTED}`],
  // Credentials in URLs anywhere in the text.
  [/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, "$1redacted@"],
  // Well-known token shapes (GitHub, GitLab, Slack, OpenAI/Stripe, AWS, Google, Hugging Face, npm).
  [/\b(?:gh[oprsu]_|github_pat_|glpat-|xox[abprs]-|sk-|sk_live_|rk_live_|AKIA|ASIA|AIza|hf_|npm_)[A-Za-z0-9_-]{8,}/g, REDACTED],
];

/** A whole string that looks like a bare token: long, no spaces or slashes, letters and digits mixed. */
function looksLikeToken(text: string): boolean {
  return /^[A-Za-z0-9_+=.-]{32,}$/.test(text) && /\d/.test(text) && /[A-Za-z]/.test(text) && !/^[\w.-]+\.[a-z]{2,4}$/i.test(text);
}

/**
 * Credentials embedded in a plain string: positional tokens (an MCP command's bare API key),
 * `NAME=value` and `--flag value` pairs, authorization headers, URL userinfo, well-known token
 * shapes and secret-looking URL query parameters.
 */
export function redactEmbedded(text: string): string {
  if (looksLikeToken(text)) return REDACTED;
  let out = text;
  for (const [re, replacement] of EMBEDDED) out = out.replace(re, replacement);
  if (!out.includes("://")) return out;
  let url: URL;
  try {
    url = new URL(out);
  } catch {
    return out;
  }
  let changed = false;
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_KEY.test(name)) {
      url.searchParams.set(name, REDACTED);
      changed = true;
    }
  }
  return changed ? url.href : out;
}
