/**
 * Runtime control: the orchestrator's private control endpoint (OPENWORK_CONTROL_BASE_URL with
 * OPENWORK_CONTROL_TOKEN), which reports component versions and upgrades them. The control token
 * never appears in answers or logs.
 */
import { ApiError } from "./errors.ts";
import { isPlainObject } from "./formats/jsonc.ts";
import { LIMITS } from "./limits.ts";
import type { ServerConfig } from "./context.ts";
import { parseJsonBounded } from "./formats/json-nesting.ts";
import { readCapped } from "./engine.ts";
import { deadline } from "./deadline.ts";

/** One call of the control endpoint; its JSON on 2xx, else the spec's errors. */
export async function callControl(config: ServerConfig, method: "GET" | "POST", pathname: string, body?: unknown): Promise<unknown> {
  const control = config.control;
  if (!control) throw new ApiError("runtime_upgrade_unavailable", "Worker runtime control is not configured on this host");
  let res: Response;
  let text: string;
  const limit = deadline(method === "GET" ? LIMITS.controlReadTimeoutMs : LIMITS.controlWriteTimeoutMs);
  try {
    res = await fetch(`${control.baseUrl}${pathname}`, {
      method,
      headers: { authorization: `Bearer ${control.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: limit.signal,
    });
    // Capped, and inside the try: an answer without end must not fill our memory, one that drips
    // past the timeout is unreachable like one that never comes (it was an unhandled abort, a 500).
    text = await readCapped(res, LIMITS.engineRelayMaxBytes);
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    throw new ApiError("runtime_control_unreachable", "The worker's runtime control is unreachable", { cause: e.name === "TimeoutError" ? "timeout" : (e.cause?.code ?? e.name ?? "unknown") });
  } finally {
    limit.done();
  }
  let data: unknown;
  try {
    data = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch {
    throw new ApiError("runtime_upgrade_failed", "The worker's runtime control answered something that is not JSON", { status: res.status });
  }
  if (!res.ok) throw new ApiError("runtime_upgrade_failed", "The worker's runtime control refused the request", data, { status: res.status >= 400 ? res.status : 502 });
  return data;
}

/** The versions snapshot; viewers get it without host paths (worker.workspace, services[].path). */
export async function runtimeVersions(config: ServerConfig, viewer: boolean): Promise<unknown> {
  const snap = await callControl(config, "GET", "/runtime/versions");
  if (!viewer || !isPlainObject(snap)) return snap;
  const out: Record<string, unknown> = { ...snap };
  if (isPlainObject(snap.worker)) {
    const { workspace: _hidden, ...worker } = snap.worker;
    out.worker = worker;
  }
  if (Array.isArray(snap.services)) out.services = snap.services.map((s) => (isPlainObject(s) ? (({ path: _p, ...rest }) => rest)(s) : s));
  return out;
}

/** Validates an upgrade body: `services`, when present, is an array of strings. */
export function upgradeBody(body: Record<string, unknown>): Record<string, unknown> {
  if (body.services !== undefined && (!Array.isArray(body.services) || !body.services.every((s) => typeof s === "string"))) {
    throw new ApiError("invalid_payload", "services must be an array of strings");
  }
  return body;
}
