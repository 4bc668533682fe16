/**
 * Reading the server's own files (server.json, tokens.json, PEM files) safely: opened
 * non-blocking and checked to be a regular file before reading, so a FIFO or device put in
 * their place fails startup with a clear error instead of hanging it forever (a FIFO's open
 * blocks until a writer appears; a read from /dev/zero never ends).
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { open } from "node:fs/promises";

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

function notRegular(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${path} is not a regular file`), { code: "ENOTREG" });
}

export async function readRegularFile(path: string): Promise<string> {
  const handle = await open(path, FLAGS);
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: "EISDIR" });
    if (!st.isFile()) throw notRegular(path);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

export function readRegularFileSync(path: string): string {
  const fd = openSync(path, FLAGS);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: "EISDIR" });
    if (!st.isFile()) throw notRegular(path);
    return readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
}
