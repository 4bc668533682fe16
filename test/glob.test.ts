import { test } from "node:test";
import assert from "node:assert/strict";
import { globMatch } from "../src/formats/glob.ts";

test("globMatch: * matches any run, everything else is literal", () => {
  const table: [string, string, boolean][] = [
    ["mcp.*", "mcp.github", true],
    ["mcp.*", "mcp.", true],
    ["mcp.*", "mcp", false],
    ["*", "", true],
    ["*", "anything.at:all", true],
    ["", "", true],
    ["", "x", false],
    ["mcp.github", "mcp.github", true],
    ["mcp.github", "mcp.githubx", false],
    ["mcp.git*", "mcp.github.*", true],
    ["*.github.*", "mcp.github.*", true],
    ["mcp:*:*", "mcp:github:*", true],
    ["a*b*c", "abc", true],
    ["a*b*c", "axxbyyc", true],
    ["a*b*c", "axxbyy", false],
    ["a**", "a", true],
    ["?", "x", false], // only * is special
    ["?", "?", true],
    ["[ab]", "a", false],
    ["[ab]", "[ab]", true],
    ["a.b", "axb", false], // "." is literal (no regex)
    ["mcp_*", "MCP_x", false], // case-sensitive
  ];
  for (const [p, t, want] of table) assert.equal(globMatch(p, t), want, `${p} vs ${t}`);
});

test("globMatch: pathological patterns stay fast", () => {
  const pattern = "*a".repeat(50) + "b";
  const text = "a".repeat(5000);
  const start = process.hrtime.bigint();
  assert.equal(globMatch(pattern, text), false);
  assert.ok(Number(process.hrtime.bigint() - start) / 1e6 < 2000);
});
