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

test("the widened rows: bearer, passwd, pwd, credentials, cookie, positional tokens, NAME=value in sh -c, the value after -k", () => {
  const input = {
    headers2: { bearer: "abc" },
    db: { passwd: "p1", pwd: "p2", credentials: { user: "u", secret: "s" }, cookie: "sid=1" },
    mcp: {
      gh: { type: "local", command: ["npx", "-y", "gh-mcp", "ghp_0123456789abcdefghijklmn"] },
      raw: { type: "local", command: ["node", "srv.js", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8"] },
      sh: { type: "local", command: ["sh", "-c", "API_KEY=sk-abcdef123456 exec mcp-server --verbose"] },
      curl: { type: "local", command: ["curl", "-k", "insecure-token-value", "https://example.com/mcp"] },
      auth: { type: "local", command: ["run", "--header", "Authorization: Bearer abcdefgh12345678"] },
    },
    model: "anthropic/claude-sonnet-4",
    maxTokens: 4096,
  };
  const out = redactSecrets(input) as any;
  const text = JSON.stringify(out);
  for (const secret of ["abc\"", "p1", "p2", "sid=1", "ghp_0123", "a1b2c3d4e5f6", "sk-abcdef", "insecure-token-value", "abcdefgh12345678"]) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.equal(out.mcp.sh.command[2], "API_KEY=[redacted] exec mcp-server --verbose");
  assert.deepEqual(out.mcp.gh.command.slice(0, 3), ["npx", "-y", "gh-mcp"], "ordinary arguments stay");
  assert.equal(out.model, "anthropic/claude-sonnet-4");
  assert.equal(out.maxTokens, 4096);
});
