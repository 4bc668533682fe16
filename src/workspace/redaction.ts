/**
 * Viewer redaction: secrets in configuration never reach viewer-scope tokens.
 * A string under a key that names a secret (key, token, secret, password, auth) becomes
 * "[redacted]"; every value inside an `environment`, `env` or `headers` object does too (MCP
 * servers and providers keep credentials there under arbitrary names).
 */
export const REDACTED = "[redacted]";

const SECRET_KEY = /key|token|secret|password|auth/i;
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

/** A flag that announces a secret: `--api-key`, `-token`, `--password` … */
const SECRET_FLAG = /^--?[A-Za-z0-9_-]*(key|token|secret|password|auth)[A-Za-z0-9_-]*$/i;

/** Lists (e.g. MCP `command` arrays): the element after a secret flag is redacted as well. */
function redactList(list: unknown[], inBag: boolean, underSecretKey: boolean): unknown[] {
  return list.map((v, i) => {
    const prev = list[i - 1];
    if (typeof v === "string" && typeof prev === "string" && SECRET_FLAG.test(prev)) return REDACTED;
    return redact(v, inBag, underSecretKey);
  });
}

/** Credentials embedded in a plain string: `--flag=value`, URL userinfo and secret query params. */
export function redactEmbedded(text: string): string {
  const flag = /^(--?[A-Za-z0-9_-]*(?:key|token|secret|password|auth)[A-Za-z0-9_-]*)=.+$/i.exec(text);
  if (flag) return `${flag[1]}=${REDACTED}`;
  if (!text.includes("://")) return text;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  let changed = false;
  if (url.username || url.password) {
    // Brackets would be percent-encoded inside a URL; a plain word reads better there.
    url.username = "redacted";
    url.password = "";
    changed = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_KEY.test(name)) {
      url.searchParams.set(name, REDACTED);
      changed = true;
    }
  }
  return changed ? url.href : text;
}
