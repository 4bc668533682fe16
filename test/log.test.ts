import { test } from "node:test";
import { waitFor } from "./helpers/wait.ts";
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

test("json: one OpenTelemetry-style object per line (the orchestrator passes these through), with time, level, msg", () => {
  const s = sink();
  const log = createLogger({ format: "json", verbose: false, stream: s.stream, resource: { version: "9.9.9", runId: "run-1" } });
  log.info("request", { method: "GET", path: "/status", status: 200, durationMs: 1.5 });
  log.warn("careful", { n: 1, nested: { a: [1, 2] } });
  const [a, b] = s.lines().map((l) => JSON.parse(l));
  assert.deepEqual(Object.keys(a), ["timeUnixNano", "severityText", "severityNumber", "body", "attributes", "resource", "time", "level", "msg"]);
  assert.equal(typeof a.timeUnixNano, "string");
  assert.ok(Math.abs(Number(BigInt(a.timeUnixNano) / 1_000_000n) - Date.now()) < 5000);
  assert.equal(a.severityText, "INFO");
  assert.equal(a.severityNumber, 9);
  assert.equal(a.body, "request");
  assert.deepEqual(a.attributes, { method: "GET", path: "/status", status: 200, durationMs: 1.5 });
  assert.deepEqual(a.resource, { "service.name": "openwork-server", "service.version": "9.9.9", "service.instance.id": "run-1" });
  assert.equal(a.level, "info");
  assert.equal(a.msg, "request");
  assert.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.deepEqual(b.attributes.nested, { a: [1, 2] });
  assert.equal(b.severityNumber, 13);
  assert.equal(b.level, "warn");
});

test("info and warn go to the info stream, errors to the error stream (after the info lines before them)", () => {
  const info = sink();
  const errs = sink();
  const log = createLogger({ format: "pretty", verbose: false, stream: info.stream, errorStream: errs.stream });
  log.info("one");
  log.warn("two");
  log.error("three");
  assert.deepEqual(info.lines().map((l) => l.replace(/^\S+ /, "")), ["INFO  one", "WARN  two"]);
  assert.deepEqual(errs.lines().map((l) => l.replace(/^\S+ /, "")), ["ERROR three"]);
});

test("buffered: lines are batched into one write (not one per line or per turn), in order, and flush() writes the rest", async () => {
  const s = sink();
  let writes = 0;
  const counting = new Writable({ write(chunk, enc, cb) { writes++; s.stream.write(chunk, enc, cb); } });
  const log = createLogger({ format: "pretty", verbose: false, stream: counting, buffered: true });
  for (let i = 0; i < 50; i++) log.info("request", { method: "GET", path: `/n${i}`, status: 200, durationMs: 1 });
  await new Promise((r) => setImmediate(r));
  for (let i = 50; i < 100; i++) log.request!("GET", `/n${i}`, 200, 1);
  assert.equal(s.lines().length, 0, "nothing written synchronously");
  await waitFor(() => writes > 0, { what: "the batch written" });
  assert.equal(writes, 1, "one write for the batch, across event-loop turns");
  assert.deepEqual(s.lines().map((l) => l.split(/ +/)[3]), Array.from({ length: 100 }, (_, i) => `/n${i}`));
  log.info("last words");
  log.flush();
  assert.match(s.lines().at(-1)!, /last words$/);
});

test("the request line's fast path writes what info('request', …) writes, in both formats", () => {
  for (const format of ["pretty", "json"] as const) {
    const s = sink();
    const log = createLogger({ format, verbose: false, stream: s.stream });
    log.info("request", { method: "POST", path: "/w/ws_1/files", status: 201, durationMs: 2.5 });
    log.request!("POST", "/w/ws_1/files", 201, 2.5);
    const [a, b] = s.lines();
    const strip = (l: string) => (format === "json" ? JSON.stringify({ ...JSON.parse(l), timeUnixNano: 0, time: 0 }) : l.slice(13));
    assert.equal(strip(b!), strip(a!));
  }
});

test("secrets never reach a line: credential-like keys masked, query strings cut, reserved keys kept", () => {
  const s = sink();
  const log = createLogger({ format: "json", verbose: false, stream: s.stream });
  log.info("request", { method: "GET", path: "/w/x/status?token=SECRET1", url: "http://h/x?access_token=SECRET2#frag" });
  log.info("x", { token: "SECRET3", hostToken: "SECRET4", headers: { Authorization: "Bearer SECRET5", cookie: "SECRET6" }, password: "SECRET7", msg: "overwrite", level: "fatal" });
  const text = s.lines().join("\n");
  for (let i = 1; i <= 7; i++) assert.ok(!text.includes(`SECRET${i}`), `SECRET${i} leaked: ${text}`);
  const [a, b] = s.lines().map((l) => JSON.parse(l));
  assert.equal(a.attributes.path, "/w/x/status");
  assert.equal(a.attributes.url, "http://h/x");
  assert.equal(b.attributes.token, "[redacted]");
  assert.equal(b.attributes.headers.Authorization, "[redacted]");
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
