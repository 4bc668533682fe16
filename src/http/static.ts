/**
 * A fixed table of static assets, read once from a folder and served from memory.
 * No part of a request URL ever reaches the filesystem: a request names an entry of the table
 * (exact string match) or gets a 404.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";

/**
 * <pkg>/ui/ — resolved from this module's own location, so it is the same folder whether the
 * server runs from src/http/ (tsx) or dist/http/ (the published package).
 */
export const UI_DIR = fileURLToPath(new URL("../../ui/", import.meta.url));

export interface StaticAsset {
  /** Folder-relative name with "/" separators, e.g. "views/files.js". */
  name: string;
  body: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Content-Type for a file name; unknown extensions are served as opaque bytes. */
export function contentTypeFor(name: string): string {
  const dot = name.lastIndexOf(".");
  const ext = dot >= 0 ? name.slice(dot).toLowerCase() : "";
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/** Names allowed in the table: plain segments only (dotfiles and odd characters are never served). */
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/**
 * Reads every regular file under `dir` (recursively, symlinks and dotfiles skipped) into a
 * table keyed by relative name. Runs once per server, off the request path's hot loop.
 */
export async function loadAssetTable(dir: string, maxDepth = 4): Promise<Map<string, StaticAsset>> {
  const table = new Map<string, StaticAsset>();
  async function walk(rel: string, depth: number): Promise<void> {
    let entries;
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return; // a missing ui/ folder yields an empty table (every asset 404s)
    }
    for (const entry of entries) {
      // Dotfiles, editor leftovers and odd names are never exposed (hostile input P16).
      if (!SAFE_SEGMENT.test(entry.name)) continue;
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (depth < maxDepth) await walk(name, depth + 1);
      } else if (entry.isFile()) {
        const body = await readFile(join(dir, name));
        const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
        table.set(name, { name, body, contentType: contentTypeFor(name), etag });
      }
    }
  }
  await walk("", 0);
  return table;
}

/** True when an If-None-Match header matches the ETag (weak comparison, lists and `*`). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = etag.replace(/^W\//, "");
  return ifNoneMatch.split(",").some((candidate) => {
    const c = candidate.trim();
    return c === "*" || c.replace(/^W\//, "") === bare;
  });
}

/** Sends an asset with its ETag; answers 304 on a matching If-None-Match; no body for HEAD. */
export function sendAsset(req: IncomingMessage, res: ServerResponse, asset: StaticAsset, headers: Record<string, string>): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader("ETag", asset.etag);
  const inm = req.headers["if-none-match"];
  if (etagMatches(Array.isArray(inm) ? inm.join(",") : inm, asset.etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader("Content-Type", asset.contentType);
  res.setHeader("Content-Length", String(asset.body.length));
  if (req.method === "HEAD") res.end();
  else res.end(asset.body);
}
