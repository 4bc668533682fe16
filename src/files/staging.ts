/**
 * Write content waiting for the host's approval, kept on disk instead of in RAM: in manual mode a
 * collaborator can keep many large batches pending for minutes, and each would otherwise hold its
 * decoded bytes in memory. Staged files live in `<dataDir>/staging` (mode 0600, removed when their
 * write is decided, and at startup), and their total size has its own budget so pending writes
 * cannot fill the disk either. The sha256 approved by the host is checked again when read back.
 * Each process stages in its own `<dataDir>/staging/<pid>` (servers may share a data dir).
 */
import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readdir, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { sha256Hex } from "../auth/hash.ts";
import { ApiError } from "../errors.ts";
import { processExists } from "../fs/journal.ts";

/** Content of one pending write: in memory when small, else a staged file. */
export interface PendingContent {
  bytes: number;
  sha256: string;
  load(): Promise<Buffer>;
  drop(): Promise<void>;
}

/**
 * The staged bytes, read back without following a link, without blocking on a FIFO put in their
 * place, and only when the file still has the staged size; undefined otherwise.
 */
async function readStaged(file: string, bytes: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await handle.stat();
    return st.isFile() && st.size === bytes ? await handle.readFile() : undefined;
  } finally {
    await handle.close();
  }
}

export class Staging {
  private used = 0;
  /** `<dataDir>/staging`, and this process's folder in it. */
  private readonly root: string;
  private readonly dir: string;

  constructor(dataDir: string, private readonly budget: number, private readonly stageAbove: number) {
    // One folder per process: two servers may share the default data dir.
    this.root = path.join(dataDir, "staging");
    this.dir = path.join(this.root, String(process.pid));
  }

  /** Removes what earlier runs left (their writes were never decided): folders of processes that are gone, and our own. */
  async clear(): Promise<void> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const name of names) {
      const pid = Number(name);
      if (Number.isInteger(pid) && pid !== process.pid && processExists(pid)) continue;
      await rm(path.join(this.root, name), { recursive: true, force: true });
    }
  }

  /** Keeps `data` until the write is decided; the caller drops its own reference to `data`. */
  async hold(data: Buffer): Promise<PendingContent> {
    const sha256 = sha256Hex(data);
    if (data.length <= this.stageAbove) return { bytes: data.length, sha256, load: async () => data, drop: async () => {} };
    if (this.used + data.length > this.budget) {
      throw new ApiError("too_many_pending_bytes", "Too much write content is waiting for approval; try again when pending writes are decided", { budgetBytes: this.budget }, { headers: { "Retry-After": "5" } });
    }
    const file = path.join(this.dir, randomUUID());
    const staged = this.staged(file, data.length, sha256);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeFile(file, data, { mode: 0o600, flag: "wx" });
    } catch (err) {
      await staged.drop();
      throw err;
    }
    return staged;
  }

  /**
   * The handle of a staged file. A separate function on purpose: closures made in `hold` would
   * share its scope — and keep `data` alive in RAM for as long as the write is pending.
   */
  private staged(file: string, bytes: number, sha256: string): PendingContent {
    this.used += bytes;
    let dropped = false;
    return {
      bytes,
      sha256,
      load: async () => {
        const back = await readStaged(file, bytes);
        // Another process changed what the host approved: refused like a changed staged upload.
        if (back === undefined || sha256Hex(back) !== sha256) throw new ApiError("conflict", "The staged write content changed while it waited for approval");
        return back;
      },
      drop: async () => {
        if (dropped) return;
        dropped = true;
        this.used -= bytes;
        await unlink(file).catch(() => {});
      },
    };
  }
}
