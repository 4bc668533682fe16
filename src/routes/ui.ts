// Route table: the built-in UI (`/ui`, `/ui/assets/<file>`; under a mount `/w/<id>/ui` too).
import type { RouteContext, RouteDef, HandlerResult } from "../http/route.ts";
import { HANDLED } from "../http/route.ts";
import { ApiError } from "../errors.ts";
import { sendAsset, type StaticAsset } from "../http/static.ts";
import type { ServerContext } from "../context.ts";

/** The page may only load its own scripts and styles and talk to its own origin; nobody may frame it. */
export const UI_CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

const HTML_HEADERS: Record<string, string> = {
  "Content-Security-Policy": UI_CSP,
  "X-Content-Type-Options": "nosniff",
  // The token lives in the fragment and sessionStorage; never leak the page URL to anyone.
  "Referrer-Policy": "no-referrer",
  // The HTML is tiny and must never be served stale after an upgrade.
  "Cache-Control": "no-store",
};

const ASSET_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  // Revalidate every time (cheap 304 with the ETag): asset names carry no version.
  "Cache-Control": "no-cache",
};

/** Redirects carry no HTML at all and a CSP that forbids everything (hostile input P21). */
const REDIRECT_CSP = "default-src 'none'";

function assets(server: ServerContext): Promise<Map<string, StaticAsset>> {
  if (!server.uiAssets) throw new ApiError("ui_disabled", "The built-in UI is disabled");
  return server.uiAssets;
}

async function servePage(rc: RouteContext): Promise<HandlerResult> {
  const table = await assets(rc.server);
  const page = table.get("index.html");
  if (!page) throw new ApiError("not_found", "The UI is not installed (ui/index.html missing)");
  sendAsset(rc.req, rc.res, page, HTML_HEADERS);
  return HANDLED;
}

function redirect(rc: RouteContext, location: string): HandlerResult {
  rc.res.statusCode = 301;
  rc.res.setHeader("Location", location);
  rc.res.setHeader("Content-Security-Policy", REDIRECT_CSP);
  rc.res.setHeader("X-Content-Type-Options", "nosniff");
  rc.res.setHeader("Content-Length", "0");
  rc.res.end();
  return HANDLED;
}

/** `/ui/<rest>`: `assets/<name>` from the table; `/ui/` → `/ui`; anything else 404. */
async function serveUnderUi(rc: RouteContext): Promise<HandlerResult> {
  const table = await assets(rc.server);
  const rest = rc.params["*"] ?? ""; // raw, with its leading "/"
  // Under a mount the id is re-encoded, so nothing from the URL is injected into Location.
  if (rest === "" || rest === "/") return redirect(rc, rc.mount ? `/w/${encodeURIComponent(rc.mount.id)}/ui` : "/ui");
  // Exact match of the raw (undecoded) rest against the table: `..`, `%2e`, `//`, trailing
  // slashes and dotfiles cannot name anything (P16, P22), and no directory is ever listed (P21).
  if (rest.startsWith("/assets/")) {
    const asset = table.get(rest.slice("/assets/".length));
    if (asset) {
      sendAsset(rc.req, rc.res, asset, asset.contentType.startsWith("text/html") ? HTML_HEADERS : ASSET_HEADERS);
      return HANDLED;
    }
  }
  throw new ApiError("not_found", "Not found");
}

// GET only: the router answers HEAD from GET routes and 405 + Allow for every other method (P23).
export const routes: RouteDef[] = [
  { method: "GET", path: "/ui", auth: "none", handler: servePage },
  { method: "GET", path: "/ui/*", auth: "none", handler: serveUnderUi },
];
