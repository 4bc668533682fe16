/** A byte-level snapshot of a folder tree (path, type, size, sha256, mode) to prove nothing changed. */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import path from "node:path";

export async function snapshot(root: string, exclude: (rel: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const abs = path.join(dir, name);
      const rel = path.relative(root, abs).split(path.sep).join("/");
      if (exclude(rel)) continue;
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        out.push(`${rel}/ d ${mode}`);
        await walk(abs);
      } else if (st.isSymbolicLink()) {
        out.push(`${rel} l ${await readlink(abs)}`);
      } else {
        const sha = createHash("sha256").update(await readFile(abs)).digest("hex");
        out.push(`${rel} f ${st.size} ${sha} ${mode}`);
      }
    }
  };
  await walk(root);
  return out;
}
