// Status routes, workspaces (list, activate, delete + persistence) and viewer redaction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startServer } from "./helpers/server.ts";
import { tempDir } from "./helpers/temp.ts";
import { workspaceId } from "../src/workspaces.ts";

test("health, status and capabilities have the specified shape", async () => {
  const s = await startServer({ env: { OPENWORK_SANDBOX_BACKEND: "docker" } });
  try {
    const health = await s.request("GET", "/health", { token: null });
    assert.equal(health.json.ok, true);
    assert.equal(health.json.version, "0.1.0");
    assert.equal(typeof health.json.uptimeMs, "number");
    const wHealth = await s.request("GET", `/w/${s.workspaceId}/health`, { token: null });
    assert.equal(wHealth.status, 200);
    assert.equal((await s.request("GET", "/w/ws_000000000000/health", { token: null })).json.code, "workspace_not_found");

    const status = (await s.request("GET", "/status")).json;
    assert.equal(status.readOnly, false);
    assert.deepEqual(status.approval, { mode: "auto", timeoutMs: 30000 });
    assert.deepEqual(status.corsOrigins, ["*"]);
    assert.equal(status.workspaceCount, 1);
    assert.equal(status.activeWorkspaceId, s.workspaceId);
    assert.equal(status.workspace.path, s.workspace);
    assert.deepEqual(status.authorizedRoots, [s.workspace]);
    assert.equal(status.server.port, Number(new URL(s.url).port));
    assert.equal(status.server.configPath, join(s.home, ".config", "openwork", "server.json"));
    assert.deepEqual(status.tokenSource, { client: "cli", host: "cli" });

    const caps = (await s.request("GET", "/capabilities")).json;
    assert.equal(caps.schemaVersion, 1);
    assert.deepEqual(caps.skills, { read: true, write: true, source: "openwork" });
    assert.deepEqual(caps.sandbox, { enabled: true, backend: "docker" });
    assert.deepEqual(caps.proxy, { opencode: false, opencodeRouter: false });
    assert.equal(caps.toolProviders.files.injection, true);
    assert.equal(caps.toolProviders.files.maxBytes, 50000000);
    assert.deepEqual(caps.events, { sse: true });
    assert.equal((await s.request("GET", `/w/${s.workspaceId}/capabilities`)).status, 200);
  } finally {
    await s.close();
  }
});

test("read-only mode shows in status and capabilities", async () => {
  const s = await startServer({ readOnly: true });
  try {
    assert.equal((await s.request("GET", "/status")).json.readOnly, true);
    const caps = (await s.request("GET", "/capabilities")).json;
    for (const area of ["skills", "plugins", "mcp", "commands", "config"]) assert.equal(caps[area].write, false, area);
    assert.equal(caps.toolProviders.files.injection, false);
  } finally {
    await s.close();
  }
});

async function configuredServer(t: { after(fn: () => Promise<void>): void }) {
  const root = await tempDir(t, "ow-cfg-");
  const a = join(root, "alpha");
  const b = join(root, "beta");
  const outside = await tempDir(t, "ow-outside-");
  await mkdir(a);
  await mkdir(b);
  const configPath = join(root, "server.json");
  await writeFile(configPath, JSON.stringify({
    custom: { keep: "me" },
    authorizedRoots: [a, b],
    workspaces: [
      { path: a, name: "Alpha", baseUrl: "http://127.0.0.1:4096", opencodeUsername: "oc-user", opencodePassword: "oc-secret" },
      { path: b },
      { path: outside, name: "Outside" },
    ],
  }, null, 2));
  const s = await startServer({ argv: ["--config", configPath], noDefaultWorkspace: true });
  return { s, a, b, outside, configPath };
}

test("viewers get workspace credentials redacted and no server paths; collaborators see them", async (t) => {
  const { s, a } = await configuredServer(t);
  try {
    const viewer = await s.mintToken("viewer");
    const v = (await s.request("GET", "/workspaces", { token: viewer })).json;
    const alpha = v.items.find((w: { id: string }) => w.id === workspaceId(a));
    assert.deepEqual(alpha.opencode, { baseUrl: "http://127.0.0.1:4096", directory: a, username: "[redacted]", password: "[redacted]" });
    const vs = (await s.request("GET", `/w/${workspaceId(a)}/status`, { token: viewer })).json;
    assert.equal(vs.workspace.opencode.password, "[redacted]");
    assert.equal(vs.authorizedRoots, undefined);
    assert.equal(vs.server.configPath, undefined);
    assert.equal(vs.workspaceCount, 1);
    assert.ok(!JSON.stringify(vs).includes("oc-secret"));
    const c = (await s.request("GET", "/workspaces")).json;
    assert.equal(c.items.find((w: { id: string }) => w.id === workspaceId(a)).opencode.password, "oc-secret");
    const caps = (await s.request("GET", "/capabilities")).json;
    assert.equal(caps.proxy.opencode, true);
  } finally {
    await s.close();
  }
});

test("workspace outside the authorized roots → 403 workspace_unauthorized; unknown → 404", async (t) => {
  const { s, outside } = await configuredServer(t);
  try {
    const res = await s.request("GET", `/w/${workspaceId(outside)}/status`);
    assert.equal(res.status, 403);
    assert.equal(res.json.code, "workspace_unauthorized");
    const unknown = await s.request("GET", "/w/ws_ffffffffffff/status");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.code, "workspace_not_found");
  } finally {
    await s.close();
  }
});

test("activate moves a workspace first; delete removes it and persists to server.json keeping unknown keys", async (t) => {
  const { s, a, b, configPath } = await configuredServer(t);
  try {
    const idB = workspaceId(b);
    assert.equal((await s.request("POST", `/workspaces/${idB}/activate`)).status, 401, "host only");
    const act = await s.request("POST", `/workspaces/${idB}/activate`, { token: null, host: true });
    assert.equal(act.status, 200);
    assert.equal(act.json.activeId, idB);
    assert.equal((await s.request("GET", "/workspaces")).json.activeId, idB);

    const del = await s.request("DELETE", `/workspaces/${workspaceId(a)}`, { token: null, host: true });
    assert.equal(del.status, 200);
    assert.equal(del.json.deleted, true);
    assert.equal(del.json.persisted, true);
    assert.ok(!del.json.items.some((w: { id: string }) => w.id === workspaceId(a)));
    const saved = JSON.parse(await readFile(configPath, "utf8"));
    assert.deepEqual(saved.custom, { keep: "me" });
    assert.ok(!saved.workspaces.some((w: { path: string }) => w.path === a));
    assert.equal(saved.workspaces.length, 2);
    const audit = await readFile(join(s.dataDir, "audit", `${workspaceId(a)}.jsonl`), "utf8");
    assert.match(audit, /"action":"workspace.delete"/);
    // An unknown id is a 404, as in the reference (spec 40 §8.4).
    const again = await s.request("DELETE", `/workspaces/${workspaceId(a)}`, { token: null, host: true });
    assert.equal(again.status, 404);
    assert.equal(again.json.code, "workspace_not_found");
  } finally {
    await s.close();
  }
});
