/** The one query-parameter parser: every route reads integers, booleans and waits the same way. */
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

/** A non-negative integer, or undefined when absent/blank; anything else → 400 invalid_payload. */
export function intParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name)?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new ApiError("invalid_payload", `${name} must be a non-negative integer`);
  return Number(raw);
}

/** true|1|yes / false|0|no (any case), or `dflt` when absent/blank; anything else → 400 invalid_payload. */
export function boolParam(query: URLSearchParams, name: string, dflt = false): boolean {
  const raw = query.get(name)?.trim().toLowerCase();
  if (raw === undefined || raw === "") return dflt;
  if (raw === "true" || raw === "1" || raw === "yes") return true;
  if (raw === "false" || raw === "0" || raw === "no") return false;
  throw new ApiError("invalid_payload", `${name} must be true or false`);
}

/** `?wait=S` (seconds, fractions allowed) as milliseconds, capped at the long-poll maximum; 0 when absent. */
export function waitParam(query: URLSearchParams): number {
  const raw = query.get("wait")?.trim();
  if (raw === undefined || raw === "") return 0;
  if (!/^\d{1,9}(\.\d{1,9})?$/.test(raw)) throw new ApiError("invalid_payload", "wait must be a number of seconds");
  return Math.min(Number(raw), LIMITS.longPollMaxSeconds) * 1000;
}

/**
 * Where an event stream starts: `Last-Event-ID` wins over `?since`; garbage in either means the
 * client's cursor is unusable ("reset"); neither means live.
 */
export function streamStart(lastEventId: string | undefined, query: URLSearchParams): number | "reset" | undefined {
  const raw = lastEventId ?? query.get("since")?.trim();
  if (raw === undefined || raw === "") return undefined;
  return /^\d{1,15}$/.test(raw) ? Number(raw) : "reset";
}
