/**
 * Where a workspace's OpenCode engine lives and how to authenticate to it.
 * Shared by the proxy, session deletion and engine reload so the rules exist once.
 */
import { ApiError } from "./errors.ts";
import type { ServerConfig } from "./context.ts";
import type { Workspace } from "./types.ts";
import { parseJsonBounded } from "./formats/json-nesting.ts";
import { deadline } from "./deadline.ts";
import { LIMITS } from "./limits.ts";

export interface OpencodeTarget {
  /** Base URL including any base path (kept when proxying). */
  baseUrl: URL;
  /** The directory OpenCode should act on: always the workspace's, never the client's. */
  directory: string;
  /** `Basic …` when credentials are configured. */
  authorization?: string;
}

/** The workspace's OpenCode directory: explicit `directory`, else the global one, else its path. */
export function workspaceDirectory(config: ServerConfig, ws: Workspace): string {
  return ws.directory ?? config.opencode.directory ?? ws.path;
}

/** Throws 400 opencode_unconfigured when neither the workspace nor the server names a base URL. */
export function opencodeTarget(config: ServerConfig, ws: Workspace): OpencodeTarget {
  const raw = ws.baseUrl ?? config.opencode.baseUrl;
  if (!raw) throw new ApiError("opencode_unconfigured", "OpenCode base URL is not configured for this workspace");
  let baseUrl: URL;
  try {
    baseUrl = new URL(raw);
  } catch {
    throw new ApiError("opencode_unconfigured", "OpenCode base URL is not a valid URL");
  }
  const username = ws.opencodeUsername ?? config.opencode.username;
  const password = ws.opencodePassword ?? config.opencode.password;
  const target: OpencodeTarget = { baseUrl, directory: workspaceDirectory(config, ws) };
  if (username !== undefined || password !== undefined) {
    target.authorization = "Basic " + Buffer.from(`${username ?? ""}:${password ?? ""}`).toString("base64");
  }
  return target;
}

/** Joins the base URL's own path with a rest path ("/session/x"), keeping the base path prefix. */
export function upstreamUrl(target: OpencodeTarget, restPath: string, query?: URLSearchParams): URL {
  const url = new URL(target.baseUrl.href);
  const basePath = url.pathname.replace(/\/+$/, "");
  url.pathname = basePath + (restPath.startsWith("/") ? restPath : "/" + restPath);
  const params = new URLSearchParams(query);
  params.delete("directory");
  params.set("directory", target.directory);
  url.search = params.toString();
  return url;
}

/** `x-opencode-directory` value: the workspace directory, percent-encoded when not ASCII (header values must be). */
export function directoryHeader(directory: string): string {
  return /^[\x20-\x7e]*$/.test(directory) ? directory : encodeURIComponent(directory);
}

/** Our headers for OpenCode: the workspace directory (always ours) and upstream credentials. */
export function engineHeaders(target: OpencodeTarget): Record<string, string> {
  const headers: Record<string, string> = { "x-opencode-directory": directoryHeader(target.directory) };
  if (target.authorization) headers.authorization = target.authorization;
  return headers;
}

/** Reads at most `max` bytes of a fetch body (an engine's error page must not fill our memory). */
export async function readCapped(response: Response, max = 64 * 1024): Promise<string> {
  if (!response.body) return "";
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(Buffer.from(chunk));
    size += chunk.length;
    if (size >= max) break;
  }
  return Buffer.concat(chunks).toString("utf8").slice(0, max);
}

/** JSON when the text parses, else the text itself (for error details). */
export function jsonOrText(text: string): unknown {
  try {
    return parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch {
    return text;
  }
}

/**
 * One request to the workspace's engine (JSON in and out) with the spec's failure mapping:
 * unreachable → 502 opencode_unreachable, no answer within the timeout → 504 opencode_timeout.
 * Returns the status and the (capped) body text; callers decide what a non-2xx means.
 */
export async function engineRequest(
  target: OpencodeTarget,
  method: string,
  restPath: string,
  o: { body?: unknown; raw?: { bytes: Buffer; contentType?: string }; query?: URLSearchParams; signal?: AbortSignal; timeoutMs: number; maxBytes?: number },
): Promise<{ status: number; ok: boolean; text: string; contentType: string | undefined }> {
  const headers: Record<string, string> = { ...engineHeaders(target), accept: "application/json" };
  let body: string | Buffer | undefined;
  if (o.raw) {
    body = o.raw.bytes;
    if (o.raw.contentType) headers["content-type"] = o.raw.contentType;
  } else if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers["content-type"] = "application/json";
  }
  const limit = deadline(o.timeoutMs, o.signal);
  try {
    const res = await fetch(upstreamUrl(target, restPath, o.query), { method, headers, body, signal: limit.signal });
    // The body is read inside the try: an engine that drips its answer past the timeout is a
    // timeout like one that never answers (it was an unhandled abort, a 500).
    return { status: res.status, ok: res.ok, text: await readCapped(res, o.maxBytes), contentType: res.headers.get("content-type") ?? undefined };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    if (e.name === "TimeoutError") throw new ApiError("opencode_timeout", "OpenCode engine did not answer in time");
    throw new ApiError("opencode_unreachable", "OpenCode engine is unavailable", { cause: e.cause?.code ?? e.name ?? "unknown" });
  } finally {
    limit.done();
  }
}
