/**
 * Reading whole text files the server parses (server.json, tokens.json, PEM files, OpenCode
 * config, skills, commands, job files): opened non-blocking and checked to be a regular file
 * before reading, so a FIFO or device put in their place fails with a clear error instead of
 * hanging forever (a FIFO's open blocks until a writer appears; a read from /dev/zero never ends).
 * Their size is capped on the opened descriptor (LIMITS.textFileMaxBytes): a huge file put there
 * — even a sparse one that costs no disk — is refused instead of filling the heap (or failing
 * with V8's string-length error as a 500). Node reads no more than the size fstat reported.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { LIMITS } from "../limits.ts";

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** Throws unless `st` (of the opened file) is a regular file of an acceptable size. */
function checkReadable(file: string, st: Stats): void {
  if (st.isDirectory()) throw Object.assign(new Error(`${file} is a directory`), { code: "EISDIR" });
  if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: "ENOTREG" });
  if (st.size > LIMITS.textFileMaxBytes) {
    // The base name only: this message can reach remote clients, the folder is the host's business.
    throw new ApiError("file_too_large", `${path.basename(file)} is larger than ${LIMITS.textFileMaxBytes} bytes`, { maxBytes: LIMITS.textFileMaxBytes, size: st.size });
  }
}

export async function readRegularFile(file: string): Promise<string> {
  const handle = await open(file, FLAGS);
  try {
    checkReadable(file, await handle.stat());
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

export function readRegularFileSync(file: string): string {
  const fd = openSync(file, FLAGS);
  try {
    checkReadable(file, fstatSync(fd));
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}
