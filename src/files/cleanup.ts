// Startup cleanup of temp files left by a crash (owned by the files area, issue 4).
import { readdir } from "node:fs/promises";
import path from "node:path";
import type { ServerContext } from "../context.ts";
import { isTempFileName, removeStaleTempFiles } from "../fs/atomic.ts";
import { LIMITS } from "../limits.ts";

// Heavy folders nobody writes through the file API, and git internals (protected).
const SKIP_DIRS = new Set([".git", "node_modules"]);

/**
 * Removes stale temp/upload files from earlier runs (names from fs/atomic.ts only, so nobody
 * else's files are touched): the server's data dir, the token store's folder, and each
 * workspace (breadth-first, symlinks not followed, `.git`/`node_modules` skipped, at most
 * LIMITS.cleanupMaxDirs folders). Called once after listen(); never throws.
 */
export async function cleanupStaleTempFiles(server: ServerContext): Promise<void> {
  try {
    let removed = 0;
    const { dataDir, tokenStorePath, configPath } = server.config;
    for (const dir of new Set([dataDir, path.join(dataDir, "audit"), path.dirname(tokenStorePath), path.dirname(configPath)])) {
      removed += await removeStaleTempFiles(dir);
    }
    for (const ws of server.workspaces.list()) {
      if (server.closing) return;
      removed += await cleanTree(ws.path, () => server.closing);
    }
    if (removed > 0) server.log.info("removed stale temp files", { count: removed });
  } catch (err) {
    server.log.warn("temp cleanup failed", { error: String(err) });
  }
}

async function cleanTree(root: string, stop: () => boolean): Promise<number> {
  let removed = 0;
  let visited = 0;
  let level: string[] = [root];
  for (let depth = 0; depth <= LIMITS.cleanupMaxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      if (stop() || visited++ >= LIMITS.cleanupMaxDirs) return removed;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      let hasTemp = false;
      for (const e of entries) {
        if (e.isDirectory() && !SKIP_DIRS.has(e.name)) next.push(path.join(dir, e.name));
        else if (e.isFile() && isTempFileName(e.name)) hasTemp = true;
      }
      if (hasTemp) removed += await removeStaleTempFiles(dir);
    }
    level = next;
  }
  return removed;
}
