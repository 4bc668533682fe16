// Structural guarantees over the whole route table: a mutating route cannot forget read-only
// mode, the approval gate/audit sequence, scope, or workspace authorization.
import { test } from "node:test";
import assert from "node:assert/strict";
import { allRoutes } from "../src/routes/index.ts";
import { startServer } from "./helpers/server.ts";

/**
 * Non-GET routes that deliberately have no gate, each with its reason.
 */
const NOT_WRITES: Record<string, string> = {
  // Answering an approval writes nothing itself; the write it releases runs through the gate.
  "POST /approvals/:id": "approval reply",
  // File-session lifecycle: in-memory handles, nothing on disk.
  "POST /workspace/:id/files/sessions": "session create",
  "POST /files/sessions/:sessionId/renew": "session renew",
  "DELETE /files/sessions/:sessionId": "session close",
  // A read that uses POST for its list of paths.
  "POST /files/sessions/:sessionId/read-batch": "batch read",
};

/** Proxies forward every method to an engine with its own permission prompts; their handlers enforce read-only mode (tested in the proxy tests). */
const isProxy = (path: string) => /\/opencode(-router)?\/\*$/.test(path);

test("every non-GET route has a gate unless it is on the commented allow-list", () => {
  const offenders: string[] = [];
  for (const r of allRoutes()) {
    if (r.method === "GET" || r.method === "HEAD") continue;
    if (r.method === "*" && isProxy(r.path)) continue;
    const key = `${r.method} ${r.path}`;
    if (!r.gate && !(key in NOT_WRITES)) offenders.push(key);
  }
  assert.deepEqual(offenders, []);
});

test("no GET route is gated, and gated routes are never unauthenticated or viewer-scoped", () => {
  for (const r of allRoutes()) {
    const key = `${r.method} ${r.path}`;
    if (r.method === "GET") assert.ok(!r.gate, key);
    if (r.gate) {
      assert.notEqual(r.auth, "none", key);
      // The engine proxy admits viewers for reads; its policy table refuses them every write (engine-policy tests).
      if (r.gate === "owner-or-approval" && isProxy(r.path)) continue;
      if (r.auth === "client") assert.ok(r.scope === "collaborator" || r.scope === "owner", `${key} needs collaborator scope`);
    }
  }
});

test("every route with a workspace id resolves and authorizes it (workspace: true)", () => {
  const scoped = allRoutes().filter((r) => /^\/(workspace|w)\/:id(\/|$)/.test(r.path));
  assert.ok(scoped.length > 10, `workspace routes found: ${scoped.length}`);
  for (const r of scoped) assert.equal(r.workspace, true, `${r.method} ${r.path}`);
});

test("no two routes share a method and path", () => {
  const seen = new Set<string>();
  for (const r of allRoutes()) {
    const key = `${r.method} ${r.path}`;
    assert.ok(!seen.has(key), `duplicate route ${key}`);
    seen.add(key);
  }
});

test("on a read-only server every write route answers 403 read_only before anything else", async () => {
  const s = await startServer({ readOnly: true });
  try {
    const writes = allRoutes().filter((r) => r.gate && !r.readOnlyAllowed);
    assert.ok(writes.length > 0);
    for (const r of writes) {
      const path = r.path
        .replace(":id", s.workspaceId)
        .replace(/:(\w+)/g, "x")
        .replace("/*", "/x");
      const res = await s.request(r.method === "*" ? "POST" : r.method, path, { json: {} });
      assert.equal(res.status, 403, `${r.method} ${r.path}: ${res.text}`);
      assert.equal(res.json.code, "read_only", `${r.method} ${r.path}`);
    }
  } finally {
    await s.close();
  }
});
