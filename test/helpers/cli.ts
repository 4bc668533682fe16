/**
 * Spawns the real CLI (`node --import tsx src/cli.ts …`) as a user would run it, with a temp
 * HOME, and collects its output. The tsx loader is passed by absolute URL so the child may run
 * in any cwd.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI_PATH = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Environment on top of a minimal one (PATH only); HOME should always be set by the caller. */
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  // A minimal environment: the developer's own OPENWORK_* variables must not leak into tests.
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", ...extra };
}

export interface RunningCli {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process exits. */
  exited: Promise<CliResult>;
  /** Waits until stdout matches. */
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts the CLI and returns a handle; the caller must make sure it exits. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, ["--import", TSX, CLI_PATH, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = new Promise<CliResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err }));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForStdout(re, timeoutMs = 20_000) {
      let done = false;
      void exited.then(() => (done = true));
      return waitFor(
        () => {
          const m = out.match(re);
          if (m) return m;
          if (done) throw new Error(`CLI exited before printing ${re}: stdout=${out} stderr=${err}`);
          return undefined;
        },
        { timeoutMs, what: `CLI output ${re} (stdout so far: ${JSON.stringify(out)}, stderr: ${JSON.stringify(err)})` },
      );
    },
    kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs the CLI to completion (killed after `timeoutMs`, default 30 s). */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const running = startCli(args, options);
  const timer = setTimeout(() => running.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  try {
    return await running.exited;
  } finally {
    clearTimeout(timer);
  }
}
