/**
 * The racing local process of the containment tests: `target` (a real folder or file) and `lnk` (a
 * symlink to the outside) trade places in a tight loop until killed — at any instant the path is
 * the real thing, missing, or the link.
 */
import { spawn, type ChildProcess } from "node:child_process";

const SWAPPER = `
const fs = require("fs");
const [target, lnk] = process.argv.slice(1);
for (;;) {
  try { fs.renameSync(target, target + ".real"); fs.renameSync(lnk, target); fs.renameSync(target, lnk); fs.renameSync(target + ".real", target); }
  catch { try { if (!fs.existsSync(target)) fs.renameSync(target + ".real", target); } catch {} }
}`;

export function startSwapper(target: string, lnk: string): ChildProcess {
  return spawn(process.execPath, ["-e", SWAPPER, target, lnk], { stdio: "ignore" });
}
