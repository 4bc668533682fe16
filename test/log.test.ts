import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../src/log.ts";

function sink(): { stream: Writable; lines: () => string[] } {
  let out = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  return { stream, lines: () => out.split("\n").filter(Boolean) };
}

test("json: one object per line with time, level, msg and attributes", () => {
  const s = sink();
  const log = createLogger({ format: "json", verbose: false, stream: s.stream });
  log.info("request", { method: "GET", path: "/status", status: 200, durationMs: 1.5 });
  log.warn("careful", { n: 1, nested: { a: [1, 2] } });
  const [a, b] = s.lines().map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(a), ["time", "level", "msg", "method", "path", "status", "durationMs"]);
  assert.equal(a.level, "info");
  assert.equal(a.msg, "request");
  assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(a.time) - Date.now()) < 5000);
  assert.deepEqual(b.nested, { a: [1, 2] });
  assert.equal(b.level, "warn");
});

test("secrets never reach a line: credential-like keys masked, query strings cut, reserved keys kept", () => {
  const s = sink();
  const log = createLogger({ format: "json", verbose: false, stream: s.stream });
  log.info("request", { method: "GET", path: "/w/x/status?token=SECRET1", url: "http://h/x?access_token=SECRET2#frag" });
  log.info("x", { token: "SECRET3", hostToken: "SECRET4", headers: { Authorization: "Bearer SECRET5", cookie: "SECRET6" }, password: "SECRET7", msg: "overwrite", level: "fatal" });
  const text = s.lines().join("\n");
  for (let i = 1; i <= 7; i++) assert.ok(!text.includes(`SECRET${i}`), `SECRET${i} leaked: ${text}`);
  const [a, b] = s.lines().map((l) => JSON.parse(l));
  assert.equal(a.path, "/w/x/status");
  assert.equal(a.url, "http://h/x");
  assert.equal(b.token, "[redacted]");
  assert.equal(b.headers.Authorization, "[redacted]");
  assert.equal(b.msg, "x");
  assert.equal(b.level, "info");
});

test("pretty: request lines are compact; debug only when verbose; errors carry their stack", () => {
  const s = sink();
  const quiet = createLogger({ format: "pretty", verbose: false, stream: s.stream });
  quiet.debug("hidden");
  quiet.info("request", { method: "POST", path: "/tokens?x=1", status: 201, durationMs: 2.345 });
  quiet.error("boom", { error: new Error("bad thing") });
  const loud = createLogger({ format: "pretty", verbose: true, stream: s.stream });
  loud.debug("shown", { k: "two words" });
  const lines = s.lines();
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} INFO  POST \/tokens 201 2\.3ms$/);
  assert.match(lines[1]!, /ERROR boom error=Error: bad thing/);
  assert.ok(lines.some((l) => /DEBUG shown k="two words"$/.test(l)));
  assert.ok(!lines.some((l) => l.includes("hidden")));
});

test("a broken log stream never throws into the caller", () => {
  const log = createLogger({ format: "json", verbose: false, stream: { write() { throw new Error("EPIPE"); } } as unknown as NodeJS.WritableStream });
  assert.doesNotThrow(() => log.error("x", { big: 1n }));
});
