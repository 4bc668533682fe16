// Other services that answer their headers and then drip the body (a byte every 0.5 s): the
// engine, the skills hub and the orchestrator's control endpoint. The body read is part of the
// request's timeout — it used to escape as an unhandled abort, a 500.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./helpers/server.ts";
import { startUpstream } from "./helpers/upstream.ts";

test("an engine, hub or control endpoint that drips its answer: 504 opencode_timeout / 502 hub_unreachable / 502 runtime_control_unreachable at the timeout, never a 500", { timeout: 60_000 }, async () => {
  const up = await startUpstream();
  up.handle((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write("[");
    const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(" ")), 500);
  });
  const s = await startServer({
    approval: "auto",
    proxyHeadersTimeoutMs: 1_500,
    env: { OPENWORK_OPENCODE_BASE_URL: up.url, OPENWORK_HUB_API_URL: up.url, OPENWORK_HUB_RAW_URL: up.url, OPENWORK_CONTROL_BASE_URL: `${up.url}/`, OPENWORK_CONTROL_TOKEN: "control-secret" },
  });
  try {
    const viewer = await s.mintToken("viewer");
    const [engine, listing, install, runtime] = await Promise.all([
      s.request("GET", "/opencode/config", { token: viewer }), // a viewer's read is fetched whole (to redact it)
      s.request("GET", "/hub/skills"),
      s.request("POST", `/workspace/${s.workspaceId}/skills/hub/pdf-tools`, { json: {} }),
      s.request("GET", "/runtime/versions"),
    ]);
    assert.deepEqual([engine.status, engine.json.code], [504, "opencode_timeout"], engine.text);
    assert.deepEqual([listing.status, listing.json.code, listing.json.details.cause], [502, "hub_unreachable", "timeout"], listing.text);
    assert.deepEqual([install.status, install.json.code], [502, "hub_unreachable"], install.text);
    assert.deepEqual([runtime.status, runtime.json.code, runtime.json.details.cause], [502, "runtime_control_unreachable", "timeout"], runtime.text);
    assert.ok(!s.logs.some((l) => l.msg === "unhandled error"), "nothing escaped as an unhandled error");
  } finally {
    await s.close();
    await up.close();
  }
});
