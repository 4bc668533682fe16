/**
 * An earlier commit as a baseline measured in the same run: BENCH_BASELINE_REF=<commit> builds that
 * commit's dist/ in a temporary git worktree (sharing this checkout's node_modules: the dev tools
 * are the same) so the benchmark can start it beside the current build.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Builds `ref`; returns its dist directory and a clean-up function. */
export function buildRef(ref: string): { dist: string; remove(): void } {
  const dir = join(mkdtempSync(join(tmpdir(), "ow-baseline-")), "tree");
  execFileSync("git", ["-C", REPO, "worktree", "add", "--detach", dir, ref], { stdio: "ignore" });
  symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
  execFileSync(join(REPO, "node_modules/.bin/tsc"), ["-p", join(dir, "tsconfig.build.json")], { stdio: "inherit" });
  return {
    dist: join(dir, "dist"),
    remove() {
      execFileSync("git", ["-C", REPO, "worktree", "remove", "--force", dir], { stdio: "ignore" });
      rmSync(join(dir, ".."), { recursive: true, force: true });
    },
  };
}
