// Reload events from fs.watch (changes made outside the server), the server's own writes
// (reported once), since/reset, long-poll, SSE, and the cache never serving stale lists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import { waitFor } from "./helpers/wait.ts";
import { openSseClient } from "./helpers/sse.ts";
import { WorkspaceState, classifyPath, isWatchedPath, mergeTriggers } from "../src/workspace/reload-events.ts";

const url = (s: TestServer, p: string) => `/workspace/${s.workspaceId}/${p}`;
const skill = (name: string, description: string) => `---\nname: ${name}\ndescription: ${description}\n---\n`;

async function events(s: TestServer, since = 0): Promise<any[]> {
  const res = await s.request("GET", url(s, `events?since=${since}`));
  assert.equal(res.status, 200);
  return res.json.items;
}

/**
 * Starts `GET …/events?since=0&wait=<waitS>` and resolves once the server holds it: a held long-poll
 * waits on the workspace's event log (so a change made next cannot beat the request in).
 */
async function heldLongPoll(s: TestServer, waitS: number) {
  const log = (await s.context.configs.state(s.context.workspaces.get(s.workspaceId)!)).log;
  const before = log.waiting;
  const pending = s.request("GET", url(s, `events?since=0&wait=${waitS}`));
  pending.catch(() => {}); // observed by the caller; not an unhandled rejection meanwhile
  await waitFor(() => log.waiting > before, { what: "long-poll held" });
  return { pending };
}

/** Waits for an event matching `pred` after `since`. */
function eventLike(s: TestServer, since: number, pred: (e: any) => boolean, what: string) {
  return waitFor(async () => (await events(s, since)).find(pred), { timeoutMs: 15_000, what });
}

test("plain fs changes outside the server become reload events", async () => {
  const s = await startServer({ files: { ".opencode/commands/old.md": "Old\n" } });
  try {
    const first = await s.request("GET", url(s, "events"));
    assert.deepEqual(first.json, { items: [], cursor: 0, workspaceId: s.workspaceId, disabled: false });

    await writeFile(join(s.workspace, "opencode.json"), '{"theme":"x"}');
    const cfg = await eventLike(s, 0, (e) => e.reason === "config", "config event");
    assert.deepEqual(cfg.trigger, { type: "config", action: "added", path: "opencode.json", name: "opencode.json" });
    assert.equal(cfg.workspaceId, s.workspaceId);
    assert.match(cfg.id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof cfg.timestamp, "number");

    // A new skill folder (its parent .opencode/skills did not exist either).
    await mkdir(join(s.workspace, ".opencode/skills/fresh"), { recursive: true });
    await writeFile(join(s.workspace, ".opencode/skills/fresh/SKILL.md"), skill("fresh", "Fresh"));
    const sk = await eventLike(s, 0, (e) => e.reason === "skills" && e.trigger.name === "fresh", "skill event");
    assert.equal(sk.trigger.type, "skill");
    assert.equal(sk.trigger.action, "added");

    await unlink(join(s.workspace, ".opencode/commands/old.md"));
    const cmd = await eventLike(s, 0, (e) => e.reason === "commands" && e.trigger.action === "removed", "command removed");
    assert.deepEqual(cmd.trigger, { type: "command", action: "removed", path: ".opencode/commands/old.md", name: "old" });

    await writeFile(join(s.workspace, "AGENTS.md"), "# Agents\n");
    await eventLike(s, 0, (e) => e.reason === "agents", "agents event");
    await mkdir(join(s.workspace, ".opencode/plugins"), { recursive: true });
    await writeFile(join(s.workspace, ".opencode/plugins/p.ts"), "export {}");
    const pl = await eventLike(s, 0, (e) => e.reason === "plugins" && e.trigger.name === "p.ts", "plugin event");
    assert.equal(pl.trigger.type, "plugin");

    // seq grows by one per event; since filters.
    const all = await events(s, 0);
    assert.deepEqual(all.map((e) => e.seq), all.map((_, i) => i + 1));
    assert.deepEqual((await events(s, all.length - 1)).map((e) => e.seq), [all.length]);
    // Noise is ignored; a later real change proves the noise was processed (and dropped) first.
    const cursor = all.length;
    await writeFile(join(s.workspace, ".opencode/skills/.DS_Store"), "x");
    await writeFile(join(s.workspace, ".opencode/skills/fresh/.SKILL.md.swp"), "x");
    await writeFile(join(s.workspace, "README.md"), "not watched");
    await writeFile(join(s.workspace, ".opencode/agents/x.md"), "barrier").catch(async () => {
      await mkdir(join(s.workspace, ".opencode/agents"));
      await writeFile(join(s.workspace, ".opencode/agents/x.md"), "barrier");
    });
    await eventLike(s, cursor, (e) => e.reason === "agents" && e.trigger.name === "x", "barrier event");
    const after = await events(s, cursor);
    assert.ok(after.every((e) => e.reason === "agents"), JSON.stringify(after));
  } finally {
    await s.close();
  }
});

test("watchers run from startup: a change before any request is reported", async () => {
  const s = await startServer({});
  try {
    await writeFile(join(s.workspace, "opencode.jsonc"), "{}");
    const e = await eventLike(s, 0, (x) => x.reason === "config", "startup config event");
    assert.equal(e.trigger.name, "opencode.jsonc");
  } finally {
    await s.close();
  }
});

test("the server's own writes are reported once; bursts are coalesced per reason", async () => {
  const s = await startServer({});
  try {
    await events(s); // starts the watcher
    const w = await s.request("POST", url(s, "skills"), { json: { name: "mine", content: "Body", description: "Mine" } });
    assert.equal(w.status, 200);
    // Barrier: an external change of another reason; the skill write's echo was delivered before it.
    await writeFile(join(s.workspace, "AGENTS.md"), "x");
    await eventLike(s, 0, (e) => e.reason === "agents", "barrier");
    const skills = (await events(s, 0)).filter((e) => e.reason === "skills");
    assert.equal(skills.length, 1, JSON.stringify(skills));
    assert.deepEqual(skills[0].trigger, { type: "skill", name: "mine", action: "added", path: ".opencode/skills/mine/SKILL.md" });

    // 20 quick external writes to one command: at most a leading and a trailing event.
    const cursor = (await s.request("GET", url(s, "events"))).json.cursor;
    await mkdir(join(s.workspace, ".opencode/commands"), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(s.workspace, ".opencode/commands/burst.md"), `v${i}\n`);
    await eventLike(s, cursor, (e) => e.reason === "commands", "burst event");
    await writeFile(join(s.workspace, "AGENTS.md"), "y");
    await eventLike(s, cursor, (e) => e.reason === "agents", "barrier 2");
    // The trailing event (if any) comes at most 750 ms after the leading one.
    const settled = await waitFor(async () => {
      const list = (await events(s, cursor)).filter((e) => e.reason === "commands");
      return list.length >= 1 ? list : undefined;
    });
    assert.ok(settled.length <= 2, `coalesced: ${settled.length}`);
  } finally {
    await s.close();
  }
});

test("lists are never stale after an outside change (served from the cache otherwise)", async () => {
  const s = await startServer({ files: { ".opencode/skills/s1/SKILL.md": skill("s1", "v0"), ".opencode/commands/c.md": "v0\n", "opencode.json": '{"theme":"v0"}' } });
  try {
    await events(s);
    for (let i = 1; i <= 15; i++) {
      await writeFile(join(s.workspace, ".opencode/skills/s1/SKILL.md"), skill("s1", `v${i}`));
      const sk = await s.request("GET", url(s, "skills"));
      assert.equal(sk.json.items[0].description, `v${i}`, `skills after write ${i}`);
      await writeFile(join(s.workspace, ".opencode/commands/c.md"), `v${i}\n`);
      const cm = await s.request("GET", url(s, "commands"));
      assert.equal(cm.json.items[0].template, `v${i}`, `commands after write ${i}`);
      await writeFile(join(s.workspace, "opencode.json"), JSON.stringify({ theme: `v${i}` }));
      const cf = await s.request("GET", url(s, "config"));
      assert.equal(cf.json.opencode.theme, `v${i}`, `config after write ${i}`);
    }
    // New and removed folders, and a brand-new commands folder after removal of the old one.
    await mkdir(join(s.workspace, ".opencode/skills/s2"));
    await writeFile(join(s.workspace, ".opencode/skills/s2/SKILL.md"), skill("s2", "two"));
    assert.deepEqual((await s.request("GET", url(s, "skills"))).json.items.map((i: any) => i.name), ["s1", "s2"]);
    await rm(join(s.workspace, ".opencode/skills/s1"), { recursive: true });
    assert.deepEqual((await s.request("GET", url(s, "skills"))).json.items.map((i: any) => i.name), ["s2"]);
    await rm(join(s.workspace, ".opencode/commands"), { recursive: true });
    assert.deepEqual((await s.request("GET", url(s, "commands"))).json.items, []);
    await mkdir(join(s.workspace, ".opencode/commands"));
    await writeFile(join(s.workspace, ".opencode/commands/n.md"), "new\n");
    assert.deepEqual((await s.request("GET", url(s, "commands"))).json.items.map((i: any) => i.name), ["n"]);
    await writeFile(join(s.workspace, ".opencode/commands/n.md"), "newer\n");
    assert.equal((await s.request("GET", url(s, "commands"))).json.items[0].template, "newer");
  } finally {
    await s.close();
  }
});

test("the reload watcher never follows a symlink out of the workspace; a re-created folder is watched again", async () => {
  const outside = await mkdtemp(join(tmpdir(), "ow-outside-"));
  const s = await startServer({ files: { ".opencode/skills/s1/SKILL.md": skill("s1", "v0") } });
  try {
    await events(s);
    await mkdir(join(outside, "ext"));
    await symlink(join(outside, "ext"), join(s.workspace, ".opencode/skills/ext"));
    const link = await eventLike(s, 0, (e) => e.reason === "skills" && e.trigger.name === "ext", "symlink added");
    assert.equal(link.trigger.action, "added");
    // Changes behind the link are outside the workspace: nothing is reported for them.
    let cursor = (await s.request("GET", url(s, "events"))).json.cursor;
    await writeFile(join(outside, "ext/SKILL.md"), skill("ext", "outside"));
    await writeFile(join(s.workspace, "AGENTS.md"), "barrier");
    await eventLike(s, cursor, (e) => e.reason === "agents", "barrier");
    assert.deepEqual((await events(s, cursor)).filter((e) => e.reason === "skills"), []);

    // The skills folder deleted and re-created: changes in the new one are reported.
    await rm(join(s.workspace, ".opencode/skills"), { recursive: true });
    await eventLike(s, cursor, (e) => e.reason === "skills" && e.trigger.action === "removed", "skills folder removed");
    await mkdir(join(s.workspace, ".opencode/skills"));
    await eventLike(s, cursor, (e) => e.reason === "skills" && e.trigger.action === "added", "skills folder re-created");
    cursor = (await s.request("GET", url(s, "events"))).json.cursor;
    await mkdir(join(s.workspace, ".opencode/skills/later"));
    await writeFile(join(s.workspace, ".opencode/skills/later/SKILL.md"), skill("later", "Later"));
    await eventLike(s, cursor, (e) => e.reason === "skills" && e.trigger.name === "later", "skill in the re-created folder");
    assert.deepEqual((await s.request("GET", url(s, "skills"))).json.items.map((i: any) => i.name), ["later"]);
  } finally {
    await s.close();
    await rm(outside, { recursive: true, force: true });
  }
});

test("since ahead of the buffer → reset; long-poll wait; bad since → 400", async () => {
  const s = await startServer({});
  try {
    const ahead = await s.request("GET", url(s, "events?since=999999"));
    assert.equal(ahead.json.reset, true);
    const bad = await s.request("GET", url(s, "events?since=abc"));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, "invalid_payload");

    // wait with nothing new: an empty answer after about a second.
    const t0 = Date.now();
    const empty = await s.request("GET", url(s, "events?since=0&wait=1"));
    assert.deepEqual(empty.json.items, []);
    assert.ok(Date.now() - t0 >= 900, "waited");

    // wait answered early by a change (written once the request is held, not before it arrives).
    const t1 = Date.now();
    const { pending } = await heldLongPoll(s, 25);
    await writeFile(join(s.workspace, "opencode.jsonc"), "{}");
    const res = await pending;
    assert.equal(res.json.items.length, 1);
    assert.equal(res.json.cursor, 1);
    assert.ok(Date.now() - t1 < 20_000);
  } finally {
    await s.close();
  }
});

test("a held long-poll does not delay shutdown", async () => {
  const s = await startServer({});
  const pending = (await heldLongPoll(s, 30)).pending.catch(() => undefined);
  const t0 = Date.now();
  await s.close();
  await pending;
  assert.ok(Date.now() - t0 < 5_000, `closed in ${Date.now() - t0} ms`);
});

test("SSE on the same URL: live events, Last-Event-ID replay, garbage → reset", async () => {
  const s = await startServer({});
  const auth = () => ({ authorization: `Bearer ${s.clientToken}` });
  try {
    const live = await openSseClient(`${s.url}${url(s, "events")}`, auth());
    assert.equal(live.status, 200);
    assert.match(String(live.headers["content-type"]), /text\/event-stream/);
    await writeFile(join(s.workspace, "opencode.json"), "{}");
    await waitFor(() => live.events.find((e) => e.event === "reload"), { timeoutMs: 15_000, what: "sse reload" });
    const ev = live.events.find((e) => e.event === "reload")!;
    const data = JSON.parse(ev.data);
    assert.equal(ev.id, String(data.seq));
    assert.equal(data.reason, "config");
    live.close();

    const replay = await openSseClient(`${s.url}${url(s, "events")}`, { ...auth(), "last-event-id": "0" });
    await waitFor(() => replay.events.find((e) => e.event === "reload"), { what: "replayed event" });
    replay.close();

    const garbage = await openSseClient(`${s.url}${url(s, "events")}`, { ...auth(), "last-event-id": "999999999" });
    await waitFor(() => garbage.events.find((e) => e.event === "reset"), { what: "reset event" });
    garbage.close();

    const viewer = await s.mintToken("viewer");
    const v = await openSseClient(`${s.url}${url(s, "events")}`, { authorization: `Bearer ${viewer}` });
    assert.equal(v.status, 200);
    v.close();
    const none = await openSseClient(`${s.url}${url(s, "events")}`, {});
    assert.equal(none.status, 401);
    none.close();
  } finally {
    await s.close();
  }
});

test("ring buffer keeps the last 500 events; since older than the buffer → reset", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ow-ring-"));
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  const state = new WorkspaceState({ id: "ws_test", name: "t", path: dir, workspaceType: "local", authorized: true }, log, [], 0);
  try {
    await state.ready;
    for (let i = 0; i < 620; i++) state.record("skills", { type: "skill", name: `s${i}`, action: "updated" });
    assert.equal(state.cursor, 620);
    const old = state.since(5);
    assert.equal(old.reset, true);
    assert.equal(old.items.length, 500);
    assert.equal(old.items[0]!.seq, 121);
    const edge = state.since(120);
    assert.equal(edge.reset, false);
    assert.equal(edge.items.length, 500);
    const recent = state.since(615);
    assert.deepEqual(recent.items.map((e) => e.seq), [616, 617, 618, 619, 620]);
    assert.equal(state.since(621).reset, true);
  } finally {
    state.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("classifyPath: reasons, triggers and ignored names", () => {
  assert.deepEqual(classifyPath(".opencode/skills/group/name/SKILL.md"), { kinds: ["skills"], reason: "skills", type: "skill", name: "name" });
  assert.deepEqual(classifyPath(".opencode/skills/x/scripts/a.py"), { kinds: ["skills"], reason: "skills", type: "skill", name: "x" });
  assert.deepEqual(classifyPath(".opencode/commands/review.md"), { kinds: ["commands"], reason: "commands", type: "command", name: "review" });
  assert.deepEqual(classifyPath(".opencode/agent/a.md"), { kinds: [], reason: "agents", type: "agent", name: "a" });
  assert.deepEqual(classifyPath("opencode.jsonc"), { kinds: ["config"], reason: "config", type: "config", name: "opencode.jsonc" });
  assert.deepEqual(classifyPath(".opencode/openwork.json"), { kinds: ["config"] });
  assert.deepEqual(classifyPath("src/index.ts"), { kinds: [] });
  assert.deepEqual(classifyPath(".opencode/skills/x/.SKILL.md.swp"), { kinds: [] });
  assert.deepEqual(classifyPath(".opencode/skills/Thumbs.db"), { kinds: [] });
  assert.deepEqual(classifyPath(".opencode/skills/.openwork-12345678-1234-1234-1234-123456789abc.tmp"), { kinds: [] });
  assert.deepEqual(classifyPath("../.opencode/skills/up/SKILL.md"), { kinds: ["skills"], reason: "skills", type: "skill", name: "up" });
  assert.deepEqual(classifyPath("../opencode.json"), { kinds: [] });
});

test("isWatchedPath: what the reload watcher mirrors (nothing below a path it leaves out)", () => {
  for (const p of ["opencode.json", "opencode.jsonc", "AGENTS.md", ".git", ".opencode", ".opencode/openwork.json", ".opencode/agent/a.md", ".opencode/skills/x/scripts/a.py", ".claude/skills/x/SKILL.md", "../.opencode/skills/up/SKILL.md", "../.claude", "../.git"]) {
    assert.equal(isWatchedPath(p), true, p);
  }
  for (const p of ["README.md", "src", "src/opencode.json", ".git/index", ".opencode/node_modules", ".opencode/node_modules/x", ".opencode/openwork.json/x", ".claude/settings.json", "../opencode.json", "../ws", "../ws/.opencode", "../.opencode/commands/c.md", ".opencode/skills/x/.SKILL.md.swp", ".opencode/skills/a/b/c/d/e/f/g/h"]) {
    assert.equal(isWatchedPath(p), false, p);
  }
});

test("mergeTriggers: the net effect of one window", () => {
  const t = (action: "added" | "updated" | "removed", name?: string) => ({ type: "skill" as const, action, ...(name ? { name } : {}) });
  assert.equal(mergeTriggers(t("added", "a"), t("updated", "a")).action, "added");
  assert.equal(mergeTriggers(t("updated", "a"), t("removed", "a")).action, "removed");
  assert.equal(mergeTriggers(t("removed", "a"), t("added", "a")).action, "updated");
  assert.deepEqual(mergeTriggers(t("added", "a"), t("updated", "b")), t("updated", "b"));
  assert.deepEqual(mergeTriggers(t("added", "a"), t("updated")), t("added", "a"));
});

test("query parameters: bad wait/since/limit are 400, large ones are clamped", async () => {
  const s = await startServer({});
  try {
    for (const q of ["events?wait=abc", "events?wait=-1", "events?since=-1", "events?since=1.5", "audit?limit=abc", "audit?limit=-3", "audit?limit=1e3"]) {
      const r = await s.request("GET", url(s, q));
      assert.equal(r.status, 400, q);
      assert.equal(r.json.code, "invalid_payload", q);
    }
    for (let i = 0; i < 3; i++) assert.equal((await s.request("POST", url(s, "plugins"), { json: { spec: `p${i}` } })).status, 200);
    assert.equal((await s.request("GET", url(s, "audit?limit=0"))).json.items.length, 1);
    assert.equal((await s.request("GET", url(s, "audit?limit=2"))).json.items.length, 2);
    const all = (await s.request("GET", url(s, "audit?limit=100000"))).json.items;
    assert.deepEqual(all.map((e: any) => e.target), ["p2", "p1", "p0"]);
    // Each write's write-ahead intent sits just before its entry in the chain (and is not listed).
    assert.deepEqual(all.map((e: any) => e.seq), [6, 4, 2]);
  } finally {
    await s.close();
  }
});

test("an outside edit of opencode.json that only touches mcp or plugin is reported as such", async () => {
  const s = await startServer({ files: { "opencode.json": JSON.stringify({ theme: "a", plugin: ["p1"], mcp: {} }) } });
  try {
    await writeFile(join(s.workspace, "opencode.json"), JSON.stringify({ theme: "a", plugin: ["p1"], mcp: { gh: { type: "remote", url: "https://x" } } }));
    const m = await eventLike(s, 0, (e) => e.reason === "mcp", "mcp event");
    assert.deepEqual(m.trigger, { type: "mcp", action: "added", path: "opencode.json", name: "gh" });
    await writeFile(join(s.workspace, "opencode.json"), JSON.stringify({ theme: "a", plugin: ["p1", "p2"], mcp: { gh: { type: "remote", url: "https://x" } } }));
    const p = await eventLike(s, 0, (e) => e.reason === "plugins", "plugins event");
    assert.deepEqual(p.trigger, { type: "plugin", action: "added", path: "opencode.json", name: "p2" });
    await writeFile(join(s.workspace, "opencode.json"), JSON.stringify({ theme: "b", plugin: ["p1", "p2"], mcp: { gh: { type: "remote", url: "https://x" } } }));
    const c = await eventLike(s, 0, (e) => e.reason === "config", "config event");
    assert.equal(c.trigger.type, "config");
  } finally {
    await s.close();
  }
});
