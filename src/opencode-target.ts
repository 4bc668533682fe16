/**
 * Where a workspace's OpenCode engine lives and how to authenticate to it.
 * Shared by the proxy, session deletion and engine reload so the rules exist once.
 */
import { ApiError } from "./http/errors.ts";
import type { ServerConfig } from "./context.ts";
import type { Workspace } from "./types.ts";

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
  if (!raw) throw new ApiError(400, "opencode_unconfigured", "OpenCode base URL is not configured for this workspace");
  let baseUrl: URL;
  try {
    baseUrl = new URL(raw);
  } catch {
    throw new ApiError(400, "opencode_unconfigured", "OpenCode base URL is not a valid URL");
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
