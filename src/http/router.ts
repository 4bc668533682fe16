/**
 * A flat, precompiled route table scanned linearly (enough for ~100 routes).
 * Params are decoded inside try/catch (a bad `%` is a 400, never a crash); a trailing `*`
 * captures the raw rest of the path for proxies. 404 for unknown paths, 405 + Allow for
 * known paths with another method.
 *
 * Mounted base URLs: `/w/<M>/<rest>` is matched as `<rest>` with `mount` = the decoded `M`, so
 * every route also works under a worker's base URL without a copy of the table. A route that names
 * a workspace (`/workspace/:id…`, `/workspaces/:id…`) must name `M` itself, else 404.
 */
import { ApiError } from "../errors.ts";
import type { RouteDef } from "./route.ts";

interface CompiledRoute {
  def: RouteDef;
  segments: string[];
  wildcard: boolean;
}

export type RouteMatch =
  | { kind: "found"; route: RouteDef; params: Record<string, string>; path: string; mount: string | undefined }
  | { kind: "method_not_allowed"; allow: string[] }
  | { kind: "not_found" };

export class Router {
  private readonly compiled: CompiledRoute[];
  /** Paths without parameters whose first matching route is fixed: "METHOD path" → match. */
  private readonly exact = new Map<string, RouteMatch>();

  constructor(readonly routes: readonly RouteDef[]) {
    this.compiled = routes.map((def) => {
      const parts = def.path.split("/").slice(1);
      const wildcard = parts[parts.length - 1] === "*";
      if (wildcard) parts.pop();
      return { def, segments: parts, wildcard };
    });
    // Heartbeats and lists hit the same few literal paths: their answer from the scan is kept.
    for (const r of this.compiled) {
      if (r.wildcard || r.segments.some((s) => s.startsWith(":")) || r.def.method === "*") continue;
      for (const method of r.def.method === "GET" ? ["GET", "HEAD"] : [r.def.method]) {
        const key = `${method} ${r.def.path}`;
        if (!this.exact.has(key)) this.exact.set(key, this.scan(method, r.def.path));
      }
    }
  }

  /** `path` is the raw pathname (percent-encoded), already known to decode cleanly. */
  match(method: string, path: string): RouteMatch {
    const known = this.exact.get(`${method} ${path}`);
    // A shared answer: its params object is empty and never written by handlers of literal paths.
    return known ?? this.scan(method, path);
  }

  private scan(method: string, path: string): RouteMatch {
    let segments = path.split("/").slice(1);
    let mount: string | undefined;
    if (segments[0] === "w" && segments.length >= 2) {
      mount = decodeParam(segments[1]!);
      segments = segments.slice(2);
      // `/w/M`, `/w/M/` and a mount inside a mount name nothing.
      if (mount === "" || segments.length === 0 || segments[0] === "" || segments[0] === "w") return { kind: "not_found" };
    }
    const allow = new Set<string>();
    for (const route of this.compiled) {
      const params = matchSegments(route, segments);
      if (!params) continue;
      const m = route.def.method;
      if (m === "*" || m === method || (method === "HEAD" && m === "GET")) {
        if (mount !== undefined && names(route) && params.id !== mount) return { kind: "not_found" };
        return { kind: "found", route: route.def, params, path: mount === undefined ? path : "/" + segments.join("/"), mount };
      }
      allow.add(m);
      if (m === "GET") allow.add("HEAD");
    }
    if (allow.size > 0) return { kind: "method_not_allowed", allow: [...allow, "OPTIONS"] };
    return { kind: "not_found" };
  }
}

/** True for routes whose `:id` names a workspace (the mount must name the same one). */
function names(route: CompiledRoute): boolean {
  return route.segments[1] === ":id" && (route.segments[0] === "workspace" || route.segments[0] === "workspaces");
}

function matchSegments(route: CompiledRoute, segments: string[]): Record<string, string> | undefined {
  const pattern = route.segments;
  if (route.wildcard ? segments.length < pattern.length : segments.length !== pattern.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = segments[i]!;
    if (p.startsWith(":")) {
      if (s === "") return undefined;
      params[p.slice(1)] = decodeParam(s);
    } else if (p !== s) {
      return undefined;
    }
  }
  if (route.wildcard) {
    // The raw (still encoded) rest with its leading slash; "" when the path ends at the prefix.
    params["*"] = segments.length === pattern.length ? "" : "/" + segments.slice(pattern.length).join("/");
  }
  return params;
}

/** Decodes one path parameter; malformed percent-encoding is a client error. */
export function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError("invalid_path", "Malformed percent-encoding in path");
  }
}
