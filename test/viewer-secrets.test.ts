// Viewers never see secrets: raw reads of the files that hold configuration secrets are refused
// for viewer tokens (also through symlinks); other scopes read them as before.
import { test } from "node:test";
import assert from "node:assert/strict";
import { symlink } from "node:fs/promises";
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
