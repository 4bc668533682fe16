// Viewers never see secrets: raw reads of the files that hold configuration secrets are refused
// for viewer tokens (also through symlinks); other scopes read them as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { link, symlink } from "node:fs/promises";
import { join } from "node:path";
import { startServer } from "./helpers/server.ts";

test("viewer read-batch and files/content refuse opencode.json(c), openwork.json and .env files", async () => {
  const s = await startServer({
    files: {
      "opencode.json": '{"mcp":{"gh":{"type":"local","command":["x"],"environment":{"GITHUB_TOKEN":"ghp_secret"}}}}',
      ".opencode/openwork.json": '{"token":"ow-secret"}',
      "app/.env": "API_KEY=env-secret\n",
      "app/.env.local": "API_KEY=env-secret\n",
      "notes/readme.md": "hello",
    },
  });
  try {
    await symlink(join(s.workspace, "opencode.json"), join(s.workspace, "notes", "cfg-link"));
    const viewer = await s.mintToken("viewer");
    const session = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token: viewer, json: {} });
    assert.equal(session.status, 200);
    const paths = ["opencode.json", ".opencode/openwork.json", "app/.env", "app/.env.local", "notes/cfg-link", "notes/readme.md"];
    const read = await s.request("POST", `/files/sessions/${session.json.session.id}/read-batch`, { token: viewer, json: { paths } });
    assert.equal(read.status, 200);
    const codes = read.json.items.map((i: { ok: boolean; code?: string }) => (i.ok ? "ok" : i.code));
    assert.deepEqual(codes, ["protected_path", "protected_path", "protected_path", "protected_path", "protected_path", "ok"]);
    assert.ok(!read.text.includes(Buffer.from("ghp_secret").toString("base64").slice(0, 8)));

    const content = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=opencode.json`, { token: viewer });
    assert.equal(content.status, 403);
    assert.equal(content.json.code, "protected_path");

    // A collaborator reads them as before.
    const own = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {} });
    const full = await s.request("POST", `/files/sessions/${own.json.session.id}/read-batch`, { json: { paths } });
    assert.deepEqual(full.json.items.map((i: { ok: boolean }) => i.ok), paths.map(() => true), full.text);
    const c = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=opencode.json`);
    assert.equal(c.status, 200);
    assert.match(c.json.content, /ghp_secret/);
  } finally {
    await s.close();
  }
});

test("viewers get no secret by content class: inbox/outbox downloads, hard links, name variants, any folder, sniffed bytes", async () => {
  const s = await startServer({
    files: {
      "opencode.jsonc": '{"provider":{"x":{"options":{"apiKey":"sk-secret"}}}}',
      ".opencode/openwork/outbox/.env": "TOKEN=outbox-secret\n",
      ".opencode/openwork/outbox/report.md": "# report\n",
      ".opencode/openwork/outbox/back\\slash.txt": "literal backslash name\n",
      ".opencode/openwork/inbox/.env.local": "TOKEN=inbox-secret\n",
      "opencode.jsonc~": '{"apiKey":"backup-secret"}',
      "packages/app/opencode.json": '{"apiKey":"nested-secret"}',
      "deploy/settings.txt": "region=eu\nexport DEPLOY_API_KEY=sk-live-123\n",
      "deploy/tls.txt": "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
      "docs/plain.md": "nothing to hide\n",
    },
  });
  try {
    await link(join(s.workspace, "opencode.jsonc"), join(s.workspace, ".opencode/openwork/outbox/innocent.txt"));
    const viewer = await s.mintToken("viewer");
    const artifacts = await s.request("GET", `/workspace/${s.workspaceId}/artifacts`, { token: viewer });
    assert.equal(artifacts.status, 200);
    const idOf = (items: { id: string; path: string }[], path: string) => items.find((i) => i.path === path)!.id;
    for (const [path, status] of [[".env", 403], ["innocent.txt", 403], ["report.md", 200], ["back\\slash.txt", 200]] as const) {
      const res = await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${idOf(artifacts.json.items, path)}`, { token: viewer });
      assert.equal(res.status, status, `outbox ${path}: ${res.text}`);
      if (status === 403) assert.equal(res.json.code, "protected_path");
    }
    const inbox = await s.request("GET", `/workspace/${s.workspaceId}/inbox`, { token: viewer });
    const envLocal = await s.request("GET", `/workspace/${s.workspaceId}/inbox/${idOf(inbox.json.items, ".env.local")}`, { token: viewer });
    assert.equal(envLocal.status, 403);
    // The owner's client still downloads them.
    assert.equal((await s.request("GET", `/workspace/${s.workspaceId}/artifacts/${idOf(artifacts.json.items, "innocent.txt")}`)).status, 200);

    const session = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token: viewer, json: {} });
    const paths = ["opencode.jsonc~", "packages/app/opencode.json", "deploy/settings.txt", "deploy/tls.txt", "docs/plain.md"];
    const read = await s.request("POST", `/files/sessions/${session.json.session.id}/read-batch`, { token: viewer, json: { paths } });
    assert.deepEqual(read.json.items.map((i: { ok: boolean; code?: string }) => (i.ok ? "ok" : i.code)), ["protected_path", "protected_path", "protected_path", "protected_path", "ok"]);
    for (const secret of ["backup-secret", "nested-secret", "sk-live-123", "MIIB"]) assert.ok(!read.text.includes(Buffer.from(secret).toString("base64").slice(0, 6)), secret);
    const sniffed = await s.request("GET", `/workspace/${s.workspaceId}/files/content?path=deploy/settings.txt`, { token: viewer });
    assert.equal(sniffed.status, 403);
  } finally {
    await s.close();
  }
});
