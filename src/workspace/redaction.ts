/**
 * Viewer redaction: secrets in configuration never reach viewer-scope tokens.
 * A string under a key that names a secret (key, token, secret, password, auth) becomes
 * "[redacted]"; every value inside an `environment`, `env` or `headers` object does too (MCP
 * servers and providers keep credentials there under arbitrary names).
 */
export const REDACTED = "[redacted]";

const SECRET_KEY = /key|token|secret|password|auth/i;
const SECRET_BAGS = new Set(["environment", "env", "headers"]);

/** A deep copy of `value` with secrets replaced (strings only: numbers such as maxTokens are not secrets). */
export function redactSecrets<T>(value: T): T {
  return redact(value, false) as T;
}

function redact(value: unknown, inBag: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, inBag));
  if (typeof value !== "object" || value === null) return inBag && value !== null && value !== undefined ? REDACTED : value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    let r: unknown;
    if (SECRET_BAGS.has(k) && typeof v === "object" && v !== null) r = redact(v, true);
    else if (typeof v === "string" && (inBag || SECRET_KEY.test(k))) r = REDACTED;
    else r = redact(v, inBag);
    // defineProperty: a "__proto__" key read from a config file stays a plain data key.
    Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
