// Startup cleanup of temp files left by a crash (owned by the files area, issue 4).
import type { ServerContext } from "../context.ts";

/** Removes stale temp/upload files from earlier runs. Called once after listen(); must not throw. */
export async function cleanupStaleTempFiles(_server: ServerContext): Promise<void> {}
