/**
 * The UI's static route over HTTP: headers (CSP, nosniff, referrer, cache), ETag/304, the asset
 * table (no URL path reaches the filesystem), hostile paths (P16, P21–P23, P25), ui_disabled.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { UI_CSP } from "../src/routes/ui.ts";
import { UI_DIR } from "../src/http/static.ts";
import { contentTypeFor, etagMatches, loadAssetTable } from "../src/http/static.ts";

let s: TestServer;

/** GET with the path sent byte for byte (`new URL` would normalise `..` and `//` away first). */
function rawRequest(base: string, method: string, path: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

before(async () => {
  s = await startServer({
    files: {
      "x.html": "<script>alert(document.domain)</script>\n",
      "x.svg": '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n',
      ".opencode/openwork/outbox/x.html": "<script>alert(document.domain)</script>\n",
      ".opencode/openwork/outbox/x.svg": '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n',
    },
  });
});
after(async () => {
  await s?.close();
});

test("/ui serves index.html with the CSP and security headers, no auth needed", async () => {
  const res = await s.request("GET", "/ui", { token: null });
  assert.equal(res.status, 200);
  assert.equal(res.headers["content-type"], "text/html; charset=utf-8");
  assert.equal(res.headers["content-security-policy"], UI_CSP);
  assert.equal(
    UI_CSP,
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  );
  assert.equal(res.headers["x-content-type-options"], "nosniff");
  assert.equal(res.headers["referrer-policy"], "no-referrer");
  assert.equal(res.headers["cache-control"], "no-store");
  assert.ok(res.headers.etag, "ETag");
  assert.equal(res.text, await readFile(join(UI_DIR, "index.html"), "utf8"));
  // CORS headers ride on every response, UI included.
  assert.ok(res.headers["access-control-allow-origin"]);
});

test("/w/:id/ui serves the same page for a known workspace", async () => {
  const a = await s.request("GET", `/w/${s.workspaceId}/ui`, { token: null });
  assert.equal(a.status, 200);
  assert.equal(a.headers["content-security-policy"], UI_CSP);
  const b = await s.request("GET", "/ui", { token: null });
  assert.equal(a.text, b.text);
});

test("the HTML has no inline script or style (the CSP would block them)", async () => {
  const html = (await s.request("GET", "/ui", { token: null })).text;
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "every <script> has a src");
  assert.doesNotMatch(html, /<style/i);
  assert.doesNotMatch(html, /\sstyle=/i);
  assert.doesNotMatch(html, /\son[a-z]+=/i, "no inline event handlers");
  assert.doesNotMatch(html, /https?:\/\//i, "no external URL");
  for (const file of ["app.js", "lib.js", ...(await readdir(join(UI_DIR, "views"))).map((f) => `views/${f}`)]) {
    const js = await readFile(join(UI_DIR, file), "utf8");
    assert.doesNotMatch(js, /\.innerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function/, `${file} builds DOM without HTML strings`);
    assert.doesNotMatch(js, /(fetch|open|import)\(\s*["'`]https?:|from\s+["']https?:|\/\/cdn|fonts\.googleapis/, `${file} makes no external request`);
  }
  const css = await readFile(join(UI_DIR, "styles.css"), "utf8");
  assert.doesNotMatch(css, /@import|url\(\s*['"]?https?:/i, "no external stylesheet or font");
});

test("assets: correct Content-Type, nosniff, ETag and 304", async () => {
  const cases: Array<[string, string]> = [
    ["/ui/assets/app.js", "text/javascript; charset=utf-8"],
    ["/ui/assets/views/approvals.js", "text/javascript; charset=utf-8"],
    ["/ui/assets/styles.css", "text/css; charset=utf-8"],
  ];
  for (const [path, type] of cases) {
    const res = await s.request("GET", path, { token: null });
    assert.equal(res.status, 200, path);
    assert.equal(res.headers["content-type"], type, path);
    assert.equal(res.headers["x-content-type-options"], "nosniff");
    const etag = res.headers.etag as string;
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const again = await s.request("GET", path, { token: null, headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, path);
    assert.equal(again.text, "");
    const weak = await s.request("GET", path, { token: null, headers: { "if-none-match": `"nope", W/${etag}` } });
    assert.equal(weak.status, 304, "weak and listed ETags match");
    const stale = await s.request("GET", path, { token: null, headers: { "if-none-match": '"stale"' } });
    assert.equal(stale.status, 200);
  }
  const page = await s.request("GET", "/ui", { token: null });
  const cached = await s.request("GET", "/ui", { token: null, headers: { "if-none-match": page.headers.etag as string } });
  assert.equal(cached.status, 304);
});

test("HEAD answers the headers without a body", async () => {
  const res = await s.request("HEAD", "/ui/assets/app.js", { token: null });
  assert.equal(res.status, 200);
  assert.equal(res.text, "");
  assert.equal(res.headers["content-type"], "text/javascript; charset=utf-8");
  assert.ok(Number(res.headers["content-length"]) > 0);
});

test("unknown assets, traversal, encoded and dotfile paths are 404 and never touch the disk (P16, P22)", async () => {
  const paths = [
    "/ui/assets/nope.js",
    "/ui/assets/../package.json",
    "/ui/assets/../../package.json",
    "/ui/assets/%2e%2e/package.json",
    "/ui/assets/%2E%2E%2Fpackage.json",
    "/ui/assets/..%2f..%2fpackage.json",
    "/ui/assets/views/../app.js",
    "/ui/assets//app.js",
    "/ui/assets/app.js/",
    "/ui/assets/app.js%00",
    "/ui/assets/.hidden",
    "/ui/.hidden",
    "/ui/assets/.env",
    "/ui/assets/.git/config",
    "/ui/index.html/",
    "/ui/assets/index.html/",
    "/ui/assets/APP.JS",
    "/ui/assets/app.js%20",
    "/ui/assets/%61pp.js",
    "/ui/assets",
    "/ui/assets/",
    "/ui/assets/views",
    "/ui/assets/views/",
    "/ui/x",
  ];
  for (const path of paths) {
    // Raw request: the HTTP client must not normalise `..` away before it reaches the server.
    const res = await rawRequest(s.url, "GET", path);
    assert.equal(res.status, 404, `${path} → ${res.status}`);
    assert.equal(JSON.parse(res.body).code, "not_found", path);
    assert.doesNotMatch(res.body, /"name":\s*"openwork-server"/, "package.json never served");
  }
});

test("malformed percent-encoding on the static route is a 400 invalid_path, not a crash", async () => {
  for (const path of ["/ui/assets/%", "/ui/assets/%zz", "/w/%zz/ui"]) {
    const res = await rawRequest(s.url, "GET", path);
    assert.equal(res.status, 400, path);
    assert.equal(JSON.parse(res.body).code, "invalid_path");
  }
  assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
});

test("trailing-slash forms of the page redirect with an encoded Location and a deny-all CSP (P21)", async () => {
  const a = await rawRequest(s.url, "GET", "/ui/");
  assert.equal(a.status, 301);
  assert.equal(a.headers.location, "/ui");
  assert.equal(a.headers["content-security-policy"], "default-src 'none'");
  assert.equal(a.body, "", "no HTML body, so nothing to inject into");

  const b = await rawRequest(s.url, "GET", `/w/${s.workspaceId}/ui/`);
  assert.equal(b.status, 301);
  assert.equal(b.headers.location, `/w/${s.workspaceId}/ui`);
  assert.equal(b.headers["content-security-policy"], "default-src 'none'");
  assert.equal(b.body, "");

  // An id from the URL is never reflected: unknown ids are a JSON 404 before any redirect, and
  // protocol-relative targets are never produced.
  for (const id of [encodeURIComponent('"><script>alert(1)</script>'), "%2F%2Fevil.example", "ws_000000000000"]) {
    for (const suffix of ["/ui", "/ui/"]) {
      const res = await rawRequest(s.url, "GET", `/w/${id}${suffix}`);
      assert.equal(res.status, 404, `${id}${suffix}`);
      assert.equal(JSON.parse(res.body).code, "workspace_not_found");
      assert.equal(res.headers.location, undefined);
      assert.doesNotMatch(res.body, /<script>/);
    }
  }
});

test("methods other than GET/HEAD are 405 with Allow: GET, HEAD (P23); OPTIONS is the CORS preflight", async () => {
  for (const method of ["PUT", "POST", "DELETE", "PATCH"]) {
    for (const path of ["/ui", "/ui/assets/app.js", `/w/${s.workspaceId}/ui`]) {
      const res = await s.request(method, path, { token: null, body: "x" });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.json.code, "method_not_allowed");
      const allow = String(res.headers.allow).split(/,\s*/);
      assert.ok(allow.includes("GET") && allow.includes("HEAD"), `Allow: ${res.headers.allow}`);
      assert.ok(!allow.includes("PUT") && !allow.includes("POST"));
    }
  }
  // The spec wins over P23's OPTIONS row: every OPTIONS is a 204 CORS answer without auth.
  const pre = await s.request("OPTIONS", "/ui", { token: null });
  assert.equal(pre.status, 204);
});

test("workspace files named .html/.svg come back from the file-read API as JSON text, never as a page (P25)", async () => {
  for (const name of ["x.html", "x.svg"]) {
    const res = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=${name}`);
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers["content-type"]), /^application\/json/);
    assert.match(res.json.content, /<script>/, "the markup is data inside JSON");
  }
  // Downloads of such files are opaque attachments that a browser will not render in our origin.
  const list = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`);
  assert.equal(list.status, 200);
  const names = list.json.items.map((i: { path: string }) => i.path).sort();
  assert.deepEqual(names, ["x.html", "x.svg"]);
  for (const item of list.json.items as Array<{ id: string; path: string }>) {
    const res = await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${item.id}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/octet-stream");
    assert.equal(res.headers["x-content-type-options"], "nosniff");
    assert.match(String(res.headers["content-disposition"]), /^attachment;/);
  }
});

test("OPENWORK_TOY_UI=0 → 404 ui_disabled on every UI path", async () => {
  const off = await startServer({ env: { OPENWORK_TOY_UI: "0" } });
  try {
    for (const path of ["/ui", "/ui/assets/app.js", `/w/${off.workspaceId}/ui`, "/ui/"]) {
      const res = await off.request("GET", path, { token: null });
      assert.equal(res.status, 404, path);
      assert.equal(res.json.code, "ui_disabled", path);
    }
    assert.equal((await off.request("GET", "/health", { token: null })).status, 200);
  } finally {
    await off.close();
  }
});

test("the asset table skips dotfiles and odd names; ETag matching handles lists, weak tags and *", async () => {
  const table = await loadAssetTable(UI_DIR);
  assert.ok(table.has("index.html") && table.has("app.js") && table.has("views/approvals.js"));
  for (const name of table.keys()) assert.doesNotMatch(name, /(^|\/)\./);
  assert.equal((await loadAssetTable("/nonexistent/ui-folder")).size, 0);
  // ui/ holds no dotfile, so the loop above alone could not fail: build a folder that does.
  const dir = await mkdtemp(join(tmpdir(), "ui-assets-"));
  try {
    await mkdir(join(dir, "sub"));
    await mkdir(join(dir, ".git"));
    for (const name of ["ok.js", ".env", "bad name.js", "~backup.js", "sub/x.css", "sub/.hidden", ".git/config"]) {
      await writeFile(join(dir, name), "x");
    }
    await symlink(join(dir, "ok.js"), join(dir, "link.js"));
    assert.deepEqual([...(await loadAssetTable(dir)).keys()].sort(), ["ok.js", "sub/x.css"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(contentTypeFor("a.JS"), "text/javascript; charset=utf-8");
  assert.equal(contentTypeFor("a.bin"), "application/octet-stream");
  assert.equal(contentTypeFor("Makefile"), "application/octet-stream");
  assert.ok(etagMatches('"a", "b"', '"b"'));
  assert.ok(etagMatches("*", '"b"'));
  assert.ok(etagMatches('W/"b"', '"b"'));
  assert.ok(!etagMatches('"c"', '"b"'));
  assert.ok(!etagMatches(undefined, '"b"'));
});
