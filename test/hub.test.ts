// Skills hub: catalog and install against a local fake of GitHub's API and raw-content hosts
// (a real HTTP server on listen(0)), never the internet.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, stat, writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { startServer, firstApproval, readAuditLog, type TestServer } from "./helpers/server.ts";
import { answerWithoutEnd, startUpstream, type TestUpstream } from "./helpers/upstream.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

const SKILL = (name: string, extra = "") => `---\nname: ${name}\ndescription: "  Makes\n  PDFs   "\n${extra}---\n# ${name}\n\n## When to use\n\n- when a PDF is needed\n`;

/** A fake GitHub: `skills/` listing, a recursive tree, and raw files, for repo different-ai/openwork-hub@main. */
async function fakeHub(files: Record<string, { text: string; mode?: string }>, opts: { listingStatus?: number } = {}): Promise<TestUpstream> {
  const hub = await startUpstream();
  hub.handle((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, body: unknown, type = "application/json") => {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      res.writeHead(status, { "content-type": type });
      res.end(text);
    };
    if (url.pathname === "/repos/different-ai/openwork-hub/contents/skills") {
      if (opts.listingStatus) return send(opts.listingStatus, { message: "nope" });
      const dirs = [...new Set(Object.keys(files).map((p) => p.split("/")[1]!))];
      return send(200, [...dirs.map((name) => ({ name, type: "dir" })), { name: "README.md", type: "file" }, { name: "Bad_Name", type: "dir" }]);
    }
    if (url.pathname === "/repos/different-ai/openwork-hub/git/trees/main") {
      return send(200, { tree: Object.entries(files).map(([path, f]) => ({ path, mode: f.mode ?? "100644", type: "blob" })) });
    }
    const raw = /^\/different-ai\/openwork-hub\/main\/(.+)$/.exec(url.pathname);
    if (raw && files[decodeURIComponent(raw[1]!)]) return send(200, files[decodeURIComponent(raw[1]!)]!.text, "text/plain");
    send(404, { message: "Not Found" });
  });
  return hub;
}

async function withHub(files: Record<string, { text: string; mode?: string }>, fn: (s: TestServer, hub: TestUpstream) => Promise<void>, o: { approval?: "auto" | "manual"; readOnly?: boolean; listingStatus?: number } = {}) {
  const hub = await fakeHub(files, o);
  const s = await startServer({ approval: o.approval ?? "auto", readOnly: o.readOnly, env: { OPENWORK_HUB_API_URL: hub.url, OPENWORK_HUB_RAW_URL: hub.url } });
  try {
    await fn(s, hub);
  } finally {
    await s.close();
    await hub.close();
  }
}

const HUB = {
  "skills/pdf-tools/SKILL.md": { text: SKILL("pdf-tools") },
  "skills/pdf-tools/scripts/run.sh": { text: "#!/bin/sh\necho hi\n", mode: "100755" },
  "skills/pdf-tools/link": { text: "/etc/passwd", mode: "120000" },
  "skills/other/SKILL.md": { text: SKILL("renamed") },
  "skills/broken/SKILL.md": { text: "---\nname: [\n---\n" },
};

test("catalog: valid skills sorted with collapsed descriptions and triggers; mismatched or broken ones dropped; cached; mounted too", async () => {
  await withHub(HUB, async (s, hub) => {
    const res = await s.request("GET", "/hub/skills");
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.items, [
      { name: "pdf-tools", description: "Makes PDFs", trigger: "when a PDF is needed", source: { owner: "different-ai", repo: "openwork-hub", ref: "main", path: "skills/pdf-tools" } },
    ]);
    const listings = () => hub.requests.filter((r) => r.url.includes("/contents/skills")).length;
    assert.equal(listings(), 1);
    assert.equal((await s.request("GET", "/hub/skills")).status, 200);
    assert.equal(listings(), 1, "the listing is cached");
    const mounted = await s.request("GET", `/w/${s.workspaceId}/hub/skills`);
    assert.deepEqual(mounted.json, res.json);
    const viewer = await s.mintToken("viewer");
    assert.equal((await s.request("GET", "/hub/skills", { token: viewer })).status, 200);
    assert.equal((await s.request("GET", "/hub/skills", { token: null })).status, 401);
    const caps = (await s.request("GET", "/capabilities")).json;
    assert.deepEqual(caps.hub, { skills: { read: true, install: true, repo: { owner: "different-ai", name: "openwork-hub", ref: "main" } } });
  });
});

test("catalog errors: bad repo names 400 before any fetch; upstream 404 → 502 hub_fetch_failed; unreachable → 502 hub_unreachable; disabled → 404", async () => {
  await withHub(HUB, async (s, hub) => {
    for (const q of ["owner=..", "repo=a%2Fb", "ref=a/../b", "ref=a//b", "owner=" + "x".repeat(101)]) {
      const res = await s.request("GET", `/hub/skills?${q}`);
      assert.equal(res.status, 400, q);
      assert.equal(res.json.code, "invalid_hub_repo", q);
    }
    assert.equal(hub.requests.length, 0);
    const missing = await s.request("GET", "/hub/skills?owner=nobody");
    assert.equal(missing.status, 502);
    assert.equal(missing.json.code, "hub_fetch_failed");
    assert.equal(missing.json.details.status, 404);
  });
  await withHub(HUB, async (s) => {
    const limited = await s.request("GET", "/hub/skills");
    assert.equal(limited.status, 502);
    assert.equal(limited.json.details.status, 403);
  }, { listingStatus: 403 });
  const s = await startServer({ env: { OPENWORK_HUB_API_URL: "http://127.0.0.1:9", OPENWORK_HUB_RAW_URL: "http://127.0.0.1:9" } });
  try {
    const res = await s.request("GET", "/hub/skills");
    assert.equal(res.status, 502);
    assert.equal(res.json.code, "hub_unreachable");
  } finally {
    await s.close();
  }
  const off = await startServer({ env: { OPENWORK_HUB_ENABLED: "0" } });
  try {
    assert.equal((await off.request("GET", "/hub/skills")).json.code, "hub_disabled");
    assert.equal((await off.request("GET", "/capabilities")).json.hub.skills.read, false);
  } finally {
    await off.close();
  }
});

test("install: approval shows every file; symlinks skipped; 100755 → executes-code and mode 0755; existing files kept unless overwrite", async () => {
  await withHub(HUB, async (s) => {
    const url = `/workspace/${s.workspaceId}/skills/hub/pdf-tools`;
    const pending = s.request("POST", url, { json: {} });
    const approval = await firstApproval(s);
    assert.equal(approval.action, "skills.install_hub");
    assert.deepEqual(approval.risk, ["executes-code"]);
    assert.deepEqual(approval.change.files.map((f: any) => [f.path, f.mode, f.action]), [["SKILL.md", "100644", "write"], ["scripts/run.sh", "100755", "write"]]);
    assert.equal(approval.change.files[0].sha256.length, 64);
    assert.equal((await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } })).status, 200);
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true, name: "pdf-tools", path: "/.opencode/skills/pdf-tools", action: "added", written: 2, skipped: 0 });
    const dir = join(s.workspace, ".opencode/skills/pdf-tools");
    assert.equal(await readFile(join(dir, "SKILL.md"), "utf8"), SKILL("pdf-tools"));
    assert.equal((await stat(join(dir, "scripts/run.sh"))).mode & 0o777, 0o755);
    await assert.rejects(stat(join(dir, "link")), "symlink entries are never written");
    assert.equal((await readAuditLog(s)).at(-1)!.action, "skills.install_hub");
    const listed = await s.request("GET", `/workspace/${s.workspaceId}/skills`);
    assert.equal(listed.json.items[0].path, "/.opencode/skills/pdf-tools/SKILL.md");

    // Again: existing files are skipped; with overwrite they are replaced; others are left alone.
    await writeFile(join(dir, "SKILL.md"), SKILL("pdf-tools", "x: 1\n"));
    await writeFile(join(dir, "notes.txt"), "mine");
    const again = s.request("POST", url, { json: { overwrite: false } });
    const a2 = await firstApproval(s);
    assert.deepEqual(a2.change.files.map((f: any) => f.action), ["skip", "skip"]);
    await s.request("POST", `/approvals/${a2.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.deepEqual((await again).json, { ok: true, name: "pdf-tools", path: "/.opencode/skills/pdf-tools", action: "updated", written: 0, skipped: 2 });
    assert.match(await readFile(join(dir, "SKILL.md"), "utf8"), /x: 1/);
    const over = s.request("POST", url, { json: { overwrite: true } });
    await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal((await over).json.written, 2);
    assert.equal(await readFile(join(dir, "SKILL.md"), "utf8"), SKILL("pdf-tools"));
    assert.equal(await readFile(join(dir, "notes.txt"), "utf8"), "mine");
  }, { approval: "manual" });
});

test("install refusals change nothing: bad name, unknown skill, no SKILL.md, too many files, viewer, read-only, denied", async () => {
  const big: Record<string, { text: string }> = { "skills/huge/SKILL.md": { text: SKILL("huge") } };
  for (let i = 0; i < 257; i++) big[`skills/huge/f${i}.txt`] = { text: "x" };
  await withHub({ ...HUB, ...big, "skills/nomd/readme.txt": { text: "x" } }, async (s) => {
    const before = await snapshotTree(s.workspace);
    const url = (n: string) => `/workspace/${s.workspaceId}/skills/hub/${n}`;
    const cases: [string, unknown, number, string, string?][] = [
      ["Bad_Name", {}, 400, "invalid_skill_name"],
      ["missing", {}, 404, "hub_skill_not_found"],
      ["nomd", {}, 502, "hub_install_failed"],
      ["huge", {}, 413, "hub_skill_too_large"],
      ["pdf-tools", { overwrite: "yes" }, 400, "invalid_payload"],
      ["pdf-tools", { repo: { owner: "../x" } }, 400, "invalid_hub_repo"],
      ["pdf-tools", {}, 403, "forbidden", await s.mintToken("viewer")],
    ];
    for (const [name, body, status, code, token] of cases) {
      const res = await s.request("POST", url(name), { json: body, ...(token ? { token } : {}) });
      assert.equal(res.status, status, `${name}: ${res.text}`);
      assert.equal(res.json.code, code, name);
    }
    const denied = s.request("POST", url("pdf-tools"), { json: {} });
    await s.request("POST", `/approvals/${(await firstApproval(s)).id}`, { token: null, host: true, json: { reply: "deny" } });
    assert.equal((await denied).json.code, "write_denied");
    assert.deepEqual(await snapshotTree(s.workspace), before);
  }, { approval: "manual" });
  await withHub(HUB, async (s) => {
    const res = await s.request("POST", `/workspace/${s.workspaceId}/skills/hub/pdf-tools`, { json: {} });
    assert.equal(res.json.code, "read_only");
    assert.equal((await s.request("GET", "/capabilities")).json.hub.skills.install, false);
  }, { readOnly: true });
});

test("install: a skills folder that a symlink leads out of the workspace is refused before approval", async () => {
  await withHub(HUB, async (s) => {
    const outside = join(s.parent, "elsewhere");
    await mkdir(outside);
    await mkdir(join(s.workspace, ".opencode"), { recursive: true });
    const { symlink } = await import("node:fs/promises");
    await symlink(outside, join(s.workspace, ".opencode/skills"));
    const res = await s.request("POST", `/workspace/${s.workspaceId}/skills/hub/pdf-tools`, { json: {} });
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "path_outside_workspace");
  }, { approval: "manual" });
});

test("a hub that answers without end (a listing or tree growing past 32 MiB) is cut off: 502 hub_fetch_failed, not a buffer of whatever it sends", async () => {
  const hub = await startUpstream();
  const endless = answerWithoutEnd(hub);
  const s = await startServer({ approval: "auto", env: { OPENWORK_HUB_API_URL: hub.url, OPENWORK_HUB_RAW_URL: hub.url } });
  try {
    const listing = await s.request("GET", "/hub/skills");
    assert.equal(listing.status, 502, listing.text);
    assert.equal(listing.json.code, "hub_fetch_failed");
    assert.equal(listing.json.details.maxBytes, 32 * 1024 * 1024);
    const install = await s.request("POST", `/workspace/${s.workspaceId}/skills/hub/pdf-tools`, { json: {} });
    assert.equal(install.status, 502, install.text);
    assert.equal(install.json.code, "hub_fetch_failed");
    assert.ok(endless.most() < 100 * 1024 * 1024, `the server stopped reading (at most ${endless.most()} bytes sent to one request)`);
    assert.equal((await s.request("GET", "/health")).status, 200);
  } finally {
    await s.close();
    await hub.close();
  }
});
