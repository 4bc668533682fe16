// Two servers may share a data dir (the default one): startup recovery touches only what belongs
// to processes that are gone, and the audit logs of the workspaces this server serves.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recoverJournals } from "../src/fs/journal.ts";
import { silentLogger } from "../src/log.ts";
import { Staging } from "../src/files/staging.ts";

/** A pid that certainly belongs to no running process: one that has just exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

test("journals and staged content of a live other process are left alone; those of gone processes are recovered", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "ow-shared-"));
  try {
    const journals = join(dataDir, "journal");
    await mkdir(journals, { recursive: true });
    const live = { version: 1, state: "prepared", pid: process.ppid, entries: [], madeDirs: [] };
    const gone = { version: 1, state: "prepared", pid: deadPid(), entries: [], madeDirs: [] };
    await writeFile(join(journals, "live.json"), JSON.stringify(live));
    await writeFile(join(journals, "gone.json"), JSON.stringify(gone));
    await recoverJournals(dataDir, silentLogger());
    assert.deepEqual(await readdir(journals), ["live.json"]);

    await mkdir(join(dataDir, "staging", String(process.ppid)), { recursive: true });
    await mkdir(join(dataDir, "staging", String(gone.pid)), { recursive: true });
    await new Staging(dataDir, 1 << 20, 1024).clear();
    assert.deepEqual(await readdir(join(dataDir, "staging")), [String(process.ppid)]);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
