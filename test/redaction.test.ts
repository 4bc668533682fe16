// Viewer redaction of secrets in configuration values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { redactSecrets, redactEmbedded, REDACTED } from "../src/workspace/redaction.ts";

test("strings under secret-looking keys are redacted at any depth; numbers stay", () => {
  const input = {
    provider: { openai: { options: { apiKey: "sk-1", baseURL: "https://api.example" } } },
    auth: { user: "u", pass: "p", port: 443 },
    tokens: ["t1", "t2"],
    maxTokens: 4096,
    mcp: { s: { type: "local", command: ["x"], environment: { GITHUB: "ghp_1", N: 3 }, headers: { Authorization: "Bearer z" } } },
  };
  const out = redactSecrets(input);
  assert.equal(out.provider.openai.options.apiKey, REDACTED);
  assert.equal(out.provider.openai.options.baseURL, "https://api.example");
  assert.deepEqual(out.auth, { user: REDACTED, pass: REDACTED, port: 443 });
  assert.deepEqual(out.tokens, [REDACTED, REDACTED]);
  assert.equal(out.maxTokens, 4096);
  assert.deepEqual(out.mcp.s.environment, { GITHUB: REDACTED, N: REDACTED });
  assert.deepEqual(out.mcp.s.headers, { Authorization: REDACTED });
  assert.equal(input.auth.user, "u", "the input is not modified");
});

test("credentials inside strings: command-line flags, URL userinfo, secret query parameters", () => {
  const out = redactSecrets({
    command: ["npx", "mcp-server", "--api-key", "abc123", "--token=xyz", "--verbose", "on"],
    url: "https://alice:s3cret@mcp.example/sse?access_token=q1&mode=x",
  });
  assert.deepEqual(out.command, ["npx", "mcp-server", "--api-key", REDACTED, `--token=${REDACTED}`, "--verbose", "on"]);
  assert.ok(!out.url.includes("s3cret") && !out.url.includes("alice") && !out.url.includes("q1"), out.url);
  assert.match(out.url, /mode=x/);
  assert.equal(redactEmbedded("plain text with :// but no url"), "plain text with :// but no url");
  assert.equal(redactEmbedded("http://127.0.0.1:4096"), "http://127.0.0.1:4096");
});

test("__proto__ keys read from a config file stay plain data keys", () => {
  const parsed = JSON.parse('{"__proto__":{"polluted":"yes"},"apiKey":"k"}');
  const out = redactSecrets(parsed) as Record<string, unknown>;
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.ok(Object.hasOwn(out, "__proto__"));
  assert.equal(out.apiKey, REDACTED);
});
