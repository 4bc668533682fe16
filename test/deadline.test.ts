// The deadline of calls to other services must fire even after a garbage collection. In Node 20,
// AbortSignal.any([AbortSignal.timeout(ms)]) holds the timeout weakly and then never fires: a hub
// that sent its headers and stalled held a skill install forever.
import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { deadline } from "../src/deadline.ts";
import { waitFor } from "./helpers/wait.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

test("a deadline fires after garbage collections, as a TimeoutError; done() clears it; another signal aborts it at once", async () => {
  const limit = deadline(100);
  gc();
  gc();
  await waitFor(() => limit.signal.aborted || undefined, { timeoutMs: 5_000, what: "the deadline firing after GC" });
  assert.equal((limit.signal.reason as Error).name, "TimeoutError");

  const cleared = deadline(50);
  cleared.done();
  const later = deadline(150);
  await waitFor(() => later.signal.aborted || undefined, { timeoutMs: 5_000, what: "a later deadline" });
  assert.equal(cleared.signal.aborted, false, "done() before the time: never aborted");

  const outer = new AbortController();
  const linked = deadline(60_000, undefined, outer.signal);
  outer.abort(new Error("client went away"));
  assert.equal(linked.signal.aborted, true);
  assert.equal((linked.signal.reason as Error).message, "client went away");
  linked.done();

  const already = deadline(60_000, AbortSignal.abort(new Error("gone")));
  assert.equal(already.signal.aborted, true);
  already.done();
});
