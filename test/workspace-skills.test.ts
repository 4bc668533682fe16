// Skills discovery (project/global, domain folders, walk-up bounded by the authorized root,
// trigger, skipped), commands (workspace/global), plugins and MCP listings, and hostile names.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pendingApprovals, startServer, type TestServer } from "./helpers/server.ts";
import { snapshotTree } from "./helpers/fs-snapshot.ts";

const skill = (name: string, description: string, extra = "", body = "") => `---\nname: ${name}\ndescription: ${description}\n${extra}---\n${body}`;
const url = (s: TestServer, p: string) => `/workspace/${s.workspaceId}/${p}`;

async function put(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), content);
  }
}

test("skills: discovery, domain folders, .claude, de-dup, trigger, skipped", async () => {
  const s = await startServer({
    files: {
      ".opencode/skills/alpha/SKILL.md": skill("alpha", "First", "trigger: when alpha\n"),
      ".opencode/skills/beta/SKILL.md": skill("beta", "Second", "", "# Beta\n\n## When to use\n\n- 1. ignored marker? no: first line\n"),
      ".opencode/skills/tools/gamma/SKILL.md": skill("gamma", "In a domain folder", "when: gamma time\n"),
      ".opencode/skills/bad-yaml/SKILL.md": "---\nname: bad-yaml\ndescription: [unclosed\n---\n",
      ".opencode/skills/mismatch/SKILL.md": skill("other", "x"),
      ".opencode/skills/nodesc/SKILL.md": "---\nname: nodesc\n---\n",
      ".opencode/skills/nofront/SKILL.md": "# no frontmatter\n",
      ".opencode/skills/empty-folder/readme.txt": "x",
      ".claude/skills/alpha/SKILL.md": skill("alpha", "Shadowed by .opencode"),
      ".claude/skills/delta/SKILL.md": skill("delta", "From .claude", "", "## When to use\n* When delta is needed\n"),
    },
  });
  try {
    const res = await s.request("GET", url(s, "skills"));
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.items, [
      { name: "alpha", description: "First", path: "/.opencode/skills/alpha/SKILL.md", scope: "project", trigger: "when alpha" },
      { name: "beta", description: "Second", path: "/.opencode/skills/beta/SKILL.md", scope: "project", trigger: "1. ignored marker? no: first line" },
      { name: "gamma", description: "In a domain folder", path: "/.opencode/skills/tools/gamma/SKILL.md", scope: "project", trigger: "gamma time" },
      { name: "delta", description: "From .claude", path: "/.claude/skills/delta/SKILL.md", scope: "project", trigger: "When delta is needed" },
    ]);
    // Workspace-rooted paths keep the app's "OpenWork" badge (it looks for "/.opencode/skills/")
    // without telling a remote caller where the workspace lives on the host (spec 40 §8.5).
    assert.ok(res.json.items.every((i: any) => i.path.startsWith("/") && !i.path.includes(s.workspace)));
    const skipped = Object.fromEntries(res.json.skipped.map((x: any) => [x.path, x.reason]));
    assert.match(skipped[".opencode/skills/bad-yaml/SKILL.md"], /invalid frontmatter.*line 3/);
    assert.equal(skipped[".opencode/skills/mismatch/SKILL.md"], "name does not match folder");
    assert.equal(skipped[".opencode/skills/nodesc/SKILL.md"], "missing description");
    assert.equal(skipped[".opencode/skills/nofront/SKILL.md"], "missing frontmatter");
    assert.equal(skipped[".opencode/skills/empty-folder/SKILL.md"], "missing SKILL.md");

    const one = await s.request("GET", url(s, "skills/gamma"));
    assert.equal(one.status, 200);
    assert.equal(one.json.item.name, "gamma");
    assert.equal(one.json.content, skill("gamma", "In a domain folder", "when: gamma time\n"));
    const missing = await s.request("GET", url(s, "skills/nope"));
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, "skill_not_found");

    // Global skills only with includeGlobal; project names win.
    await put(s.home, {
      ".config/opencode/skills/glob-one/SKILL.md": skill("glob-one", "Global one"),
      ".claude/skills/alpha/SKILL.md": skill("alpha", "Global alpha"),
      ".agents/skills/glob-two/SKILL.md": skill("glob-two", "Global two"),
    });
    const noGlobal = await s.request("GET", url(s, "skills"));
    assert.equal(noGlobal.json.items.length, 4);
    const withGlobal = await s.request("GET", url(s, "skills?includeGlobal=true"));
    const globals = withGlobal.json.items.filter((i: any) => i.scope === "global");
    assert.deepEqual(globals.map((i: any) => [i.name, i.path]), [
      ["glob-one", "~/.config/opencode/skills/glob-one/SKILL.md"],
      ["glob-two", "~/.agents/skills/glob-two/SKILL.md"],
    ]);
    const g = await s.request("GET", url(s, "skills/glob-two"));
    assert.equal(g.json.item.scope, "global");
  } finally {
    await s.close();
  }
});

test("skills: walk-up to the nearest .git, never above the authorized root", async () => {
  const files = {
    "../server.json": JSON.stringify({ authorizedRoots: ["."] }),
    "../.opencode/skills/upper/SKILL.md": skill("upper", "From the parent folder"),
  };
  const bounded = await startServer({ files });
  try {
    // Default authorized root = the workspace itself: the parent is never read.
    const res = await bounded.request("GET", url(bounded, "skills"));
    assert.deepEqual(res.json.items, []);
  } finally {
    await bounded.close();
  }
  const wide = await startServer({ files, argv: ["--config", "server.json"] });
  try {
    const res = await wide.request("GET", url(wide, "skills"));
    assert.deepEqual(res.json.items.map((i: any) => [i.name, i.path]), [["upper", "../.opencode/skills/upper/SKILL.md"]]);
    // A .git in the workspace stops the walk there.
    await mkdir(join(wide.workspace, ".git"));
    const stopped = await wide.request("GET", url(wide, "skills"));
    assert.deepEqual(stopped.json.items, []);
  } finally {
    await wide.close();
  }
});

test("commands: workspace list, global list for the host only", async () => {
  const s = await startServer({
    files: {
      ".opencode/commands/review.md": "---\nname: review\ndescription: Review\nagent: build\nmodel: m/x\nsubtask: true\n---\n\nReview $ARGUMENTS\n",
      ".opencode/commands/plain.md": "Just a template\n",
      ".opencode/commands/broken.md": "---\nname: [x\n---\n",
      ".opencode/commands/notes.txt": "ignored",
    },
  });
  try {
    const res = await s.request("GET", url(s, "commands"));
    assert.deepEqual(res.json.items, [
      { name: "plain", template: "Just a template", model: null, scope: "workspace" },
      { name: "review", description: "Review", template: "Review $ARGUMENTS", agent: "build", model: "m/x", subtask: true, scope: "workspace" },
    ]);
    await put(s.home, { ".config/opencode/commands/g.md": "---\nname: g\n---\n\nGlobal\n" });
    const denied = await s.request("GET", url(s, "commands?scope=global"));
    assert.equal(denied.status, 403);
    assert.equal(denied.json.code, "forbidden");
    const owner = await s.mintToken("owner");
    const global = await s.request("GET", url(s, "commands?scope=global"), { token: owner });
    assert.deepEqual(global.json.items, [{ name: "g", template: "Global", model: null, scope: "global" }]);
    const bad = await s.request("GET", url(s, "commands?scope=everything"));
    assert.equal(bad.status, 400);
  } finally {
    await s.close();
  }
});

test("plugins and MCP listings: dir plugins, includeGlobal, disabledByTools, broken config → 422", async () => {
  const s = await startServer({
    files: {
      "opencode.json": JSON.stringify({ plugin: "single@1", mcp: { shared: { type: "remote", url: "https://p" }, local: { type: "local", command: ["x"] } }, tools: { "mcp.local.*": false } }),
      ".opencode/plugins/mine.ts": "export default {}",
      ".opencode/plugins/readme.md": "not a plugin",
    },
  });
  try {
    await put(s.home, {
      ".config/opencode/opencode.jsonc": '{ // global\n "plugin": ["g@1"], "mcp": {"shared": {"type": "remote", "url": "https://g"}, "gonly": {"type": "remote", "url": "https://go"}}, "tools": {"mcp:gonly": false} }',
      ".config/opencode/plugins/gp.js": "",
    });
    const p = await s.request("GET", url(s, "plugins"));
    assert.deepEqual(p.json.items, [
      { spec: "single@1", source: "config", scope: "project" },
      { spec: "mine.ts", source: "dir.project", scope: "project", path: ".opencode/plugins/mine.ts" },
    ]);
    assert.deepEqual(p.json.loadOrder, ["config.global", "config.project", "dir.global", "dir.project"]);
    const pg = await s.request("GET", url(s, "plugins?includeGlobal=true"));
    assert.deepEqual(pg.json.items.map((i: any) => `${i.source}:${i.scope}:${i.spec}`), ["config:global:g@1", "config:project:single@1", "dir.global:global:gp.js", "dir.project:project:mine.ts"]);
    assert.equal(pg.json.items[2].path, "~/.config/opencode/plugins/gp.js");
    // Adding "single@2" is a duplicate by normalized name: no write.
    const dup = await s.request("POST", url(s, "plugins"), { json: { spec: "single@2" } });
    assert.equal(dup.status, 200);
    assert.equal((await s.request("GET", url(s, "audit"))).json.items.length, 0);

    const m = await s.request("GET", url(s, "mcp"));
    assert.deepEqual(m.json.items, [
      { name: "gonly", config: { type: "remote", url: "https://go" }, source: "config.global", disabledByTools: true },
      { name: "shared", config: { type: "remote", url: "https://p" }, source: "config.project" },
      { name: "local", config: { type: "local", command: ["x"] }, source: "config.project", disabledByTools: true },
    ]);

    await writeFile(join(s.workspace, "opencode.json"), '{\n  "plugin": [\n    "a",\n  ]\n  "x": 1\n}');
    for (const p of ["config", "plugins", "mcp", "export"]) {
      const bad = await s.request("GET", url(s, p));
      assert.equal(bad.status, 422, p);
      assert.equal(bad.json.code, "invalid_jsonc");
      assert.deepEqual(bad.json.details, [{ offset: 31, line: 5, column: 3, error: "CommaExpected" }]);
    }
    const w = await s.request("POST", url(s, "plugins"), { json: { spec: "new" } });
    assert.equal(w.status, 422);
    await writeFile(join(s.workspace, ".opencode/openwork.json"), "{oops");
    await writeFile(join(s.workspace, "opencode.json"), "{}");
    const ow = await s.request("GET", url(s, "config"));
    assert.equal(ow.status, 422);
    assert.equal(ow.json.code, "invalid_json");
  } finally {
    await s.close();
  }
});

const HOSTILE = ["../x", "x/y", "..", "%2e%2e", "/etc/passwd", "C:\\x", "a\u0000b", "a".repeat(65), "Skill", "ѕkill" /* Cyrillic s */, "ｓkill", "__proto__", "constructor", "prototype", "toString", "", " ", "a..b", "-lead"];

test("hostile names: the specified 400, nothing written anywhere", async () => {
  const s = await startServer({ files: { ".opencode/skills/keep/SKILL.md": skill("keep", "Keep"), ".opencode/commands/keep.md": "K\n" } });
  try {
    const outside = (rel: string) => rel === ".openwork" || rel.startsWith(".openwork/");
    const before = [await snapshotTree(s.parent), await snapshotTree(s.home, outside)];
    const check = (res: { status: number; json: any; text: string }, codes: string[], what: string) => {
      // A ".." URL segment is resolved by the client's URL parser before sending: no route matches.
      if (what.endsWith('".."') && res.status === 404 && res.json.code === "not_found") return;
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.ok(codes.includes(res.json.code), `${what}: ${res.json.code}`);
    };
    // Names that are valid for commands / MCP servers (their patterns allow upper case and "-").
    const commandOk = new Set(["Skill", "toString", "-lead"]);
    const mcpOk = new Set(["Skill", "toString"]);
    for (const name of HOSTILE) {
      const what = JSON.stringify(name);
      check(await s.request("POST", url(s, "skills"), { json: { name, content: "x", description: "d" } }), ["invalid_skill_name"], `skill ${what}`);
      check(await s.request("POST", url(s, "import"), { json: { skills: [{ name, content: "x", description: "d" }] } }), ["invalid_skill_name"], `import ${what}`);
      if (!commandOk.has(name)) {
        check(await s.request("POST", url(s, "commands"), { json: { name, template: "t" } }), ["invalid_command_name"], `command ${what}`);
        check(await s.request("POST", url(s, "import"), { json: { commands: [{ name, template: "t" }] } }), ["invalid_command_name"], `import command ${what}`);
      }
      if (!mcpOk.has(name)) {
        check(await s.request("POST", url(s, "mcp"), { json: { name, config: { type: "local", command: ["x"] } } }), ["invalid_mcp_name"], `mcp ${what}`);
      }
      if (name === "" || name === " ") continue;
      // Dots encoded too: the client would otherwise resolve ".." segments before sending.
      const enc = encodeURIComponent(name).replace(/\./g, "%2E");
      // In a URL the router may refuse the path itself (invalid_path) before the name check.
      check(await s.request("DELETE", url(s, `skills/${enc}`)), ["invalid_skill_name", "invalid_path"], `DELETE skill ${what}`);
      check(await s.request("GET", url(s, `skills/${enc}`)), ["invalid_skill_name", "invalid_path"], `GET skill ${what}`);
      if (!mcpOk.has(name)) check(await s.request("DELETE", url(s, `mcp/${enc}`)), ["invalid_mcp_name", "invalid_path"], `DELETE mcp ${what}`);
      if (!commandOk.has(name)) check(await s.request("DELETE", url(s, `commands/${enc}`)), ["invalid_command_name", "invalid_path"], `DELETE command ${what}`);
    }
    // Raw traversal in the URL never reaches a file either.
    for (const raw of ["skills/../../x", "skills/%2e%2e", "skills/..%2f..%2fetc", "commands/..%2fkeep"]) {
      const res = await s.request("DELETE", url(s, raw));
      assert.ok([400, 404].includes(res.status), `${raw}: ${res.status}`);
    }
    assert.deepEqual([await snapshotTree(s.parent), await snapshotTree(s.home, outside)], before);
    assert.deepEqual(await pendingApprovals(s), []);
    assert.equal((await s.request("GET", url(s, "skills"))).json.items.length, 1);
  } finally {
    await s.close();
  }
});
