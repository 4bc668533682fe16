// Hostile *contents* in the files the server parses by itself (OpenCode and OpenWork config,
// SKILL.md, command files, Agent Lab's store). JSON.parse accepts any depth but serializing such a
// value back overflowed the stack (a 50,000-deep openwork.json made GET …/config a 500).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startServer } from "./helpers/server.ts";

const CONTENTS: Record<string, string | Buffer> = {
  deep: "[".repeat(100_000),
  deepObj: '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000),
  proto: '{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},"mcp":{"__proto__":{"type":"local","command":["x"]}}}',
  dup: '{"mcp":1,"mcp":{"a":{"type":"remote","url":"http://x"}}}',
  bom: "\uFEFF{\"share\":\"manual\"}",
  nul: Buffer.from('{"a":"\u0000"}\u0000'),
  badutf8: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
  bignum: '{"a":1e400,"b":-1e400,"c":123456789012345678901234567890}',
  longline: '{"a":"' + "x".repeat(5_000_000) + '"}',
  plugins: '{"plugin":[1,null,{},["a"],"ok@1"]}',
  mcpweird: '{"mcp":{"a":null,"b":1,"c":"s","d":[],"e":{"type":"local","command":"notarray"},"f":{"type":"remote","url":5,"headers":"x"}}}',
  comments: "// c\n/* unterminated",
  empty: "",
  spaces: "   \n\t ",
  array: "[1,2]",
  yamlFlowDeep: "---\nname: foo\ndescription: d\nx: " + "[".repeat(50_000) + "]".repeat(50_000) + "\n---\nbody",
  yamlFlowMapDeep: "---\nname: foo\ndescription: d\nx: " + "{a: ".repeat(20_000) + "1" + "}".repeat(20_000) + "\n---\nbody",
  yamlBlockDeep: "---\nname: foo\ndescription: d\n" + Array.from({ length: 5_000 }, (_, i) => " ".repeat(i) + "k:").join("\n") + " 1\n---\nbody",
  yamlSeqDeep: "---\nname: foo\ndescription: d\nx:\n" + Array.from({ length: 5_000 }, (_, i) => " ".repeat(i * 2) + "-").join("\n") + " 1\n---\nbody",
};

test("hostile contents in every config file the server parses (nesting 50,000 deep in JSON and YAML, __proto__ keys, duplicate keys, BOM, NUL, invalid UTF-8, 1e400, a 5 MB line, wrong types): every read and write route answers, never a 5xx or a polluted prototype", { timeout: 300_000 }, async () => {
  const findings: string[] = [];
  for (const [name, content] of Object.entries(CONTENTS)) {
    for (const file of ["opencode.json", ".opencode/openwork.json", ".opencode/skills/foo/SKILL.md", ".opencode/commands/hi.md", ".opencode/openwork/agentlab/automations.json"]) {
      const s = await startServer({ approval: "auto" });
      try {
        await mkdir(path.dirname(path.join(s.workspace, file)), { recursive: true });
        await writeFile(path.join(s.workspace, file), content);
        const w = `/workspace/${s.workspaceId}`;
        for (const r of [`${w}/config`, `${w}/mcp`, `${w}/plugins`, `${w}/skills`, `${w}/skills/foo`, `${w}/commands`, `${w}/export`, `${w}/agentlab/automations`, "/status", "/workspaces"]) {
          const res = await Promise.race([s.request("GET", r), new Promise<"stuck">((ok) => setTimeout(ok, 10000, "stuck").unref())]);
          if (res === "stuck") findings.push(`${name} ${file} ${r}: stuck`);
          else if (res.status >= 500) findings.push(`${name} ${file} ${r}: ${res.status} ${res.text.slice(0, 150)}`);
        }
        for (const [m, r, json] of [["PATCH", `${w}/config`, { opencode: { share: "manual" } }], ["POST", `${w}/plugins`, { spec: "p@1" }], ["POST", `${w}/mcp`, { name: "m", config: { type: "remote", url: "http://127.0.0.1:1" } }], ["POST", `${w}/skills`, { name: "foo", content: "---\nname: foo\ndescription: d\n---\nx" }], ["POST", `${w}/commands`, { name: "hi", template: "t" }]] as const) {
          const res = await Promise.race([s.request(m, r, { json }), new Promise<"stuck">((ok) => setTimeout(ok, 10000, "stuck").unref())]);
          if (res === "stuck") findings.push(`${name} ${file} ${m} ${r}: stuck`);
          else if (res.status >= 500) findings.push(`${name} ${file} ${m} ${r}: ${res.status} ${res.text.slice(0, 150)}`);
        }
        const polluted = ({} as Record<string, unknown>).polluted;
        if (polluted !== undefined) findings.push(`${name} ${file}: prototype polluted`);
      } finally {
        await s.close();
      }
    }
  }
  assert.deepEqual(findings, []);
});
