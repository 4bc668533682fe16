// Seeded fuzz over the whole route table: every route is called with hostile path parameters,
// query values, bodies and credentials. Whatever comes in, the server answers within the client's
// deadline, never with a 500, always with a JSON error carrying a code when it refuses, keeps
// serving /health, logs no unhandled error, and changes nothing outside the workspace (a canary
// folder beside it stays byte-identical). A second run, with a host who denies everything, checks
// that input is refused before the host is asked. FUZZ_REQUESTS sets the count (default 3000; the
// second run sends half), FUZZ_SEED the seed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { allRoutes } from "../src/routes/index.ts";
import { prng } from "./helpers/prng.ts";
import { startServer, type TestResponse, type TestServer } from "./helpers/server.ts";
import type { RouteDef } from "../src/http/route.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

const COUNT = Number(process.env.FUZZ_REQUESTS ?? 3000);

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
  "healthPort", "services", "repo", "skills", "commands", "items", "mode",
];
/** Refused by the body parser wherever they appear: used sparingly so most bodies reach the handlers. */
const FORBIDDEN_KEYS = ["__proto__", "constructor", "prototype"];
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
    for (let i = 0; i < n; i++) Object.defineProperty(out, rnd() < 0.03 ? pick(FORBIDDEN_KEYS) : pick(KEYS), { value: value(depth), enumerable: true, configurable: true, writable: true });
    return out;
  };
  const nasty = () => pick(NASTY_STRINGS);
  // Bodies shaped like the real ones, with hostile values where it matters, by the route they suit.
  const SHAPES: Array<[RegExp, () => Record<string, unknown>]> = [
    [/\/write-batch$/, () => ({ writes: [{ path: nasty(), contentBase64: pick(["aGk=", "!!!", "", nasty()]), ...(rnd() < 0.3 ? { ifMatchRevision: nasty() } : {}) }] })],
    [/\/ops$/, () => ({ operations: [pick([{ type: "mkdir", path: nasty() }, { type: "delete", path: nasty(), recursive: rnd() < 0.5 }, { type: "rename", from: nasty(), to: nasty(), overwrite: rnd() < 0.5 }])] })],
    [/\/read-batch$/, () => ({ paths: [nasty(), nasty()] })],
    [/\/files\/content$/, () => ({ path: nasty(), content: nasty() })],
    [/\/skills$/, () => ({ name: nasty(), content: nasty(), description: nasty() })],
    [/\/commands$/, () => ({ name: nasty(), template: nasty(), description: nasty() })],
    [/\/plugins$/, () => ({ spec: nasty() })],
    [/\/mcp$/, () => ({ name: nasty(), config: { type: pick(["local", "remote", nasty()]), command: [nasty()], url: nasty(), environment: { [nasty()]: nasty() } } })],
    [/\/config$/, () => ({ opencode: { [pick(["plugin", "mcp", "model", nasty()])]: value(2) }, openwork: { [nasty()]: value(2) } })],
    [/\/import$/, () => ({ skills: [{ name: nasty(), content: nasty() }], commands: [{ name: nasty(), template: nasty() }], opencode: value(2) })],
    [/^\/tokens$/, () => ({ scope: pick(["viewer", "collaborator", "owner", "host", nasty()]), label: nasty(), ttlSeconds: pick([1, -1, 1e12, nasty()]) })],
    [/\/files\/sessions$/, () => ({ ttlSeconds: pick([0, 1, 86_400 * 365, -5, nasty()]), write: pick([true, false, nasty()]) })],
  ];
  const shaped = (routePath: string): Record<string, unknown> => {
    const fits = SHAPES.filter(([re]) => re.test(routePath));
    return (fits.length > 0 && rnd() < 0.8 ? pick(fits) : pick(SHAPES))[1]();
  };
  const body = (routePath: string): string | undefined => {
    const r = rnd();
    if (r < 0.15) return undefined;
    if (r < 0.25) return pick(["{", "[]", "null", "1", "\"x\"", "{\"a\":", "\u0000", "{\"__proto__\":{\"polluted\":1}}", "[".repeat(100) + "]".repeat(100)]);
    if (r < 0.7) return JSON.stringify(shaped(routePath));
    return JSON.stringify(object(0));
  };
  return { rnd, pick, body };
}

interface FuzzServer {
  s: TestServer;
  owner: string;
  viewer: string;
  routes: RouteDef[];
  sessions: string[];
}

/** A server for the fuzz: outside services on a closed local port (never the internet), real file sessions. */
async function fuzzServer(approval: "auto" | "manual"): Promise<FuzzServer> {
  const closed = "http://127.0.0.1:9";
  const s = await startServer({
    approval,
    env: { OPENWORK_HUB_API_URL: closed, OPENWORK_HUB_RAW_URL: closed, OPENWORK_TELEGRAM_API_URL: closed },
    files: { "notes/a.md": "# a\n", ".opencode/skills/skill-creator/SKILL.md": "---\nname: skill-creator\ndescription: d\n---\n" },
  });
  const owner = await s.mintToken("owner");
  const viewer = await s.mintToken("viewer");
  // Not the proxies (no engine here), not the approvals feed (a stream by design) and not the
  // removal of the workspace itself (the rest would only 404).
  const routes = allRoutes().filter((r) => !r.path.includes("opencode") && r.method !== "*" && r.path !== "/approvals/events" && !(r.method === "DELETE" && r.path === "/workspaces/:id"));
  // Real file sessions (one of the client, one of the owner) so that session routes get past the lookup.
  const sessions: string[] = [];
  for (const token of [s.clientToken, owner]) {
    const res = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { token, json: { write: true, ttlSeconds: 3600 } });
    assert.equal(res.status, 200, res.text);
    sessions.push(res.json.session.id);
  }
  return { s, owner, viewer, routes, sessions };
}

/** Sends `count` fuzzed requests one after another; `check` returns a failure text or undefined. */
async function drive(fz: FuzzServer, count: number, check: (where: string, res: TestResponse, route: RouteDef) => string | undefined): Promise<string[]> {
  const { s, owner, viewer, routes, sessions } = fz;
  const f = fuzzer(Number(process.env.FUZZ_SEED ?? 20261206));
  const failures: string[] = [];
  for (let i = 0; i < count && failures.length < 5; i++) {
    const route = f.pick(routes);
    const method = route.method as string;
    const path = route.path
      .split("/")
      .map((seg) => (seg === ":id" && f.rnd() < 0.5 ? s.workspaceId : seg === ":sessionId" && f.rnd() < 0.6 ? f.pick(sessions) : seg.startsWith(":") || seg === "*" ? f.pick(NASTY_SEGMENTS) : seg))
      .join("/");
    const query = f.rnd() < 0.4 ? "" : "?" + Array.from({ length: 1 + Math.floor(f.rnd() * 3) }, (_, n) => {
      // The first one is most often `path` (files, skills, downloads read it).
      const k = n === 0 && f.rnd() < 0.5 ? "path" : f.pick(QUERY_KEYS);
      // Long-polls answer at once with wait=0 (a fuzz run must not sit in them).
      return `${k}=${k === "wait" ? "0" : encodeURIComponent(String(f.pick(NASTY_STRINGS)))}`;
    }).join("&");
    const mounted = f.rnd() < 0.2 ? `/w/${f.rnd() < 0.8 ? s.workspaceId : f.pick(NASTY_SEGMENTS)}` : "";
    // Mostly valid credentials: refused ones stop at the door (and the limiter slows them).
    const credential = f.pick(["client", "client", "client", "owner", "owner", "host", "host", "viewer", "none", "bad"] as const);
    const body = method === "GET" || method === "DELETE" ? undefined : f.body(route.path);
    const headers: Record<string, string> = body === undefined ? {} : { "content-type": f.rnd() < 0.9 ? "application/json" : f.pick(["text/plain", "multipart/form-data; boundary=x", "application/json; charset=latin1"]) };
    const target = `${mounted}${path}${query}`;
    const res = await Promise.race([
      s.request(method, target, {
        // "host" sends both headers, as the app does when it holds the host token.
        token: credential === "client" || credential === "host" ? s.clientToken : credential === "owner" ? owner : credential === "viewer" ? viewer : credential === "bad" ? "not-a-token" : null,
        host: credential === "host",
        headers,
        ...(body === undefined ? {} : { body }),
      }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within 15 s: ${method} ${target}`)), 15_000).unref()),
    ]);
    const failure = check(`${method} ${target} (${credential}) body=${body?.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`, res, route);
    if (failure) failures.push(failure);
  }
  return failures;
}

test("seeded fuzz over every route: no 500, no hang, JSON errors with codes, nothing changes outside the workspace", { timeout: 600_000 }, async () => {
  const fz = await fuzzServer("auto");
  const { s } = fz;
  // A canary beside the workspace: the parent folder must look exactly the same afterwards.
  const canary = join(s.parent, "canary");
  await mkdir(canary, { recursive: true });
  await writeFile(join(canary, "secret.txt"), "outside\n");
  const outside = (rel: string) => rel === "workspace" || rel.startsWith("workspace/");
  const before = await snapshotTree(s.parent, outside);
  const answered = new Set<string>();
  try {
    const failures = await drive(fz, COUNT, (where, res, route) => {
      if (res.status < 300) answered.add(`${route.method} ${route.path}`);
      if (res.status >= 500 && res.status !== 501 && res.status !== 502 && res.status !== 503) return where;
      if (res.status >= 400 && !(res.json && typeof res.json.code === "string")) return `error without a JSON code: ${where}`;
      return undefined;
    });
    assert.deepEqual(failures, []);
    // The fuzz reached the handlers, not only the front door.
    assert.ok(answered.size >= fz.routes.length / 3, `only ${answered.size} of ${fz.routes.length} routes ever answered 2xx`);
    assert.equal((await s.request("GET", "/health", { token: null })).status, 200);
    assert.deepEqual(s.logs.filter((l) => l.level === "error"), [], "no unhandled error was logged");
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype pollution");
    assert.deepEqual(await snapshotTree(s.parent, outside), before, "nothing outside the workspace changed");
  } finally {
    await s.close();
  }
});

test("seeded fuzz with a host who denies everything: a request refused for its input never asked the host", { timeout: 600_000 }, async () => {
  const fz = await fuzzServer("manual");
  const { s } = fz;
  let asked = 0;
  // The host: every approval is counted and denied at once.
  const stop = s.context.approvals.subscribe((event) => {
    if (event.type !== "approval.requested") return;
    asked += 1;
    s.context.approvals.reply(event.item.id, false);
  });
  try {
    let askedBefore = 0;
    const failures = await drive(fz, Math.ceil(COUNT / 2), (where, res) => {
      const askedNow = asked - askedBefore;
      askedBefore = asked;
      if (res.status >= 400 && res.json?.code !== "write_denied" && askedNow > 0) return `asked the host, then refused for another reason: ${where}`;
      if (res.json?.code === "write_denied" && askedNow !== 1) return `denied without exactly one approval: ${where}`;
      return undefined;
    });
    assert.deepEqual(failures, []);
    assert.ok(asked > 0, "some fuzzed writes were valid enough to reach the host");
  } finally {
    stop();
    await s.close();
  }
});
