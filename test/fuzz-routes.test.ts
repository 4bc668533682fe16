// Seeded fuzz over the whole route table: every route is called with hostile path parameters,
// query values, bodies and credentials. Whatever comes in, the server answers within the client's
// deadline, never with a 500, always with a JSON error carrying a code when it refuses, keeps
// serving /health, logs no unhandled error, and changes nothing outside the workspace (a canary
// folder beside it stays byte-identical). FUZZ_REQUESTS raises the count (default 1500), FUZZ_SEED changes the seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { allRoutes } from "../src/routes/index.ts";
import { prng } from "./helpers/prng.ts";
import { startServer } from "./helpers/server.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

const COUNT = Number(process.env.FUZZ_REQUESTS ?? 1500);

const NASTY_SEGMENTS = [
  "..", "%2e%2e", "%2E%2e%2f", "a%2fb", "%5c..%5cx", "%00", "a%00b", "%ff", "%", "%zz", "%C0%AF", "~", ".", "-",
  "ws_000000000000", "x".repeat(300), "%F0%9F%98%80", "con", "nul", "a b", "%20", "__proto__", "constructor",
  "..%2f..%2fetc%2fpasswd", "%252e%252e", "skill-creator", "review", "notes.md", "a.txt", "%0d%0aSet-Cookie:x=1",
];
const NASTY_STRINGS = [
  "", " ", "..", "../x", "../../etc/passwd", "/etc/passwd", "C:\\Windows", "a/../../b", "a\u0000b", "\u202eevil",
  "x".repeat(5000), "notes/a.md", ".opencode/plugins/x.js", ".git/config", ".env", "a//b", "a/./b", "é", "e\u0301",
  "%2e%2e/x", "\\\\server\\share", "-rf", "$(id)", "`id`", "'; DROP", "{\"a\":1}", "null", "true", "1e400", "__proto__",
];
const KEYS = [
  "path", "paths", "writes", "operations", "type", "from", "to", "name", "content", "contentBase64", "spec", "config",
  "command", "template", "opencode", "openwork", "enabled", "token", "ttlSeconds", "write", "ifMatchRevision", "force",
  "recursive", "overwrite", "scope", "label", "reply", "description", "channel", "peerId", "botToken", "appToken",
  "healthPort", "services", "repo", "skills", "commands", "items", "mode", "__proto__", "constructor", "prototype",
];
const QUERY_KEYS = ["path", "since", "limit", "prefix", "after", "includeGlobal", "includeDirs", "scope", "channel", "healthPort", "token", "directory", "wait"];

function fuzzer(seed: number) {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const value = (depth: number): unknown => {
    const r = rnd();
    if (r < 0.25) return pick(NASTY_STRINGS);
    if (r < 0.35) return pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 64, 65, 10_000_000]);
    if (r < 0.42) return pick([true, false, null]);
    if (depth > 3) return pick(NASTY_STRINGS);
    if (r < 0.7) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const object = (depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    const n = Math.floor(rnd() * 5);
    for (let i = 0; i < n; i++) Object.defineProperty(out, pick(KEYS), { value: value(depth), enumerable: true, configurable: true, writable: true });
    return out;
  };
  const nasty = () => pick(NASTY_STRINGS);
  // Bodies shaped like the real ones, with hostile values where it matters.
  const shaped = (): Record<string, unknown> => pick([
    () => ({ writes: [{ path: nasty(), contentBase64: pick(["aGk=", "!!!", "", nasty()]), ...(rnd() < 0.3 ? { ifMatchRevision: nasty() } : {}) }] }),
    () => ({ operations: [pick([{ type: "mkdir", path: nasty() }, { type: "delete", path: nasty(), recursive: rnd() < 0.5 }, { type: "rename", from: nasty(), to: nasty(), overwrite: rnd() < 0.5 }])] }),
    () => ({ paths: [nasty(), nasty()] }),
    () => ({ path: nasty(), content: nasty() }),
    () => ({ name: nasty(), content: nasty(), description: nasty() }),
    () => ({ name: nasty(), template: nasty(), description: nasty() }),
    () => ({ spec: nasty() }),
    () => ({ name: nasty(), config: { type: pick(["local", "remote", nasty()]), command: [nasty()], url: nasty(), environment: { [nasty()]: nasty() } } }),
    () => ({ opencode: { [pick(["plugin", "mcp", "model", "__proto__", nasty()])]: value(2) }, openwork: { [nasty()]: value(2) } }),
    () => ({ skills: [{ name: nasty(), content: nasty() }], commands: [{ name: nasty(), template: nasty() }], opencode: value(2) }),
    () => ({ scope: pick(["viewer", "collaborator", "owner", "host", nasty()]), label: nasty(), ttlSeconds: pick([1, -1, 1e12, nasty()]) }),
    () => ({ ttlSeconds: pick([0, 1, 86_400 * 365, -5, nasty()]), write: pick([true, false, nasty()]) }),
  ])();
  const body = (): string | undefined => {
    const r = rnd();
    if (r < 0.15) return undefined;
    if (r < 0.55) return JSON.stringify(shaped());
    if (r < 0.22) return pick(["{", "[]", "null", "1", "\"x\"", "{\"a\":", "\u0000", "{\"__proto__\":{\"polluted\":1}}", "[".repeat(100) + "]".repeat(100)]);
    return JSON.stringify(object(0));
  };
  return { rnd, pick, body };
}

test("seeded fuzz over every route: no 500, no hang, JSON errors with codes, nothing changes outside the workspace", { timeout: 600_000 }, async () => {
  const s = await startServer({ approval: "auto", files: { "notes/a.md": "# a\n", ".opencode/skills/skill-creator/SKILL.md": "---\nname: skill-creator\ndescription: d\n---\n" } });
  // A canary beside the workspace: the parent folder must look exactly the same afterwards.
  const canary = join(s.parent, "canary");
  await mkdir(canary, { recursive: true });
  await writeFile(join(canary, "secret.txt"), "outside\n");
  const before = await snapshotTree(s.parent, (rel) => rel === "workspace" || rel.startsWith("workspace/"));
  const owner = await s.mintToken("owner");
  const viewer = await s.mintToken("viewer");
  // Not the proxies (no engine here), not the approvals feed (a stream by design) and not the
  // removal of the workspace itself (the rest would only 404).
  const routes = allRoutes().filter((r) => !r.path.includes("opencode") && r.method !== "*" && r.path !== "/approvals/events" && !(r.method === "DELETE" && r.path === "/workspaces/:id"));
  const f = fuzzer(Number(process.env.FUZZ_SEED ?? 20261206));
  const failures: string[] = [];
  const answered = new Set<string>();
  // Real file sessions (one of the client, one of the owner) so that session routes get past the lookup.
  const sessions: string[] = [];
  for (const token of [s.clientToken, owner]) {
    const res = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token, json: { write: true, ttlSeconds: 3600 } });
    assert.equal(res.status, 200, res.text);
    sessions.push(res.json.session.id);
  }
  try {
    for (let i = 0; i < COUNT && failures.length < 5; i++) {
      const route = f.pick(routes);
      const method = route.method === "*" ? f.pick(["GET", "POST", "DELETE"]) : route.method;
      const path = route.path
        .split("/")
        .map((seg) => (seg === ":id" && f.rnd() < 0.5 ? s.workspaceId : seg === ":sessionId" && f.rnd() < 0.6 ? f.pick(sessions) : seg.startsWith(":") || seg === "*" ? f.pick(NASTY_SEGMENTS) : seg))
        .join("/");
      const query = f.rnd() < 0.5 ? "" : "?" + Array.from({ length: 1 + Math.floor(f.rnd() * 3) }, () => {
        const k = f.pick(QUERY_KEYS);
        // Long-polls answer at once with wait=0 (a fuzz run must not sit in them).
        return `${k}=${k === "wait" ? "0" : encodeURIComponent(String(f.pick(NASTY_STRINGS)))}`;
      }).join("&");
      const mounted = f.rnd() < 0.2 ? `/w/${f.rnd() < 0.8 ? s.workspaceId : f.pick(NASTY_SEGMENTS)}` : "";
      const credential = f.pick(["client", "host", "owner", "viewer", "none", "bad"] as const);
      const body = method === "GET" || method === "DELETE" ? undefined : f.body();
      const headers: Record<string, string> = body === undefined ? {} : { "content-type": f.rnd() < 0.9 ? "application/json" : f.pick(["text/plain", "multipart/form-data; boundary=x", "application/json; charset=latin1"]) };
      const target = `${mounted}${path}${query}`;
      const res = await Promise.race([
        s.request(method, target, {
          token: credential === "client" ? s.clientToken : credential === "owner" ? owner : credential === "viewer" ? viewer : credential === "bad" ? "not-a-token" : null,
          host: credential === "host",
          headers,
          ...(body === undefined ? {} : { body }),
        }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within 15 s: ${method} ${target}`)), 15_000).unref()),
      ]);
      if (res.status < 300) answered.add(`${route.method} ${route.path}`);
      const where = `${method} ${target} (${credential}) body=${body?.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;
      if (res.status >= 500 && res.status !== 501 && res.status !== 502 && res.status !== 503) failures.push(where);
      else if (res.status >= 400 && !(res.json && typeof res.json.code === "string")) failures.push(`error without a JSON code: ${where}`);
    }
    assert.deepEqual(failures, []);
    // The fuzz reached the handlers, not only the front door.
    assert.ok(answered.size >= routes.length / 3, `only ${answered.size} of ${routes.length} routes ever answered 2xx`);
    assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
    const errors = s.logs.filter((l) => l.level === "error");
    assert.deepEqual(errors, [], "no unhandled error was logged");
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype pollution");
    const after = await snapshotTree(s.parent, (rel) => rel === "workspace" || rel.startsWith("workspace/"));
    assert.deepEqual(after, before, "nothing outside the workspace changed");
  } finally {
    await s.close();
  }
});
