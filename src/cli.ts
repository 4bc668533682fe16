/**
 * The `openwork-server` command: flags/env/server.json → config → server, plus the host
 * subcommands (`approvals …`, `audit verify`). Startup problems print one line on stderr and
 * exit 2; SIGINT/SIGTERM shut down gracefully and exit 0.
 */
import { readFileSync } from "node:fs";
import { ConfigError, loadConfig, maskedConfig, parseCliArgs } from "./config.ts";
import { runHostCommand } from "./host-cli.ts";
import { createLogger } from "./log.ts";
import { LIMITS } from "./limits.ts";
import { StartupError } from "./startup-error.ts";
import type { ServerConfig } from "./context.ts";

/** The version in package.json (dist/cli.js and src/cli.ts both sit one level below it). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export const USAGE = `Usage: openwork-server [options]
       openwork-server approvals list|allow ID|deny ID|watch [--url URL] [--host-token T]
       openwork-server audit verify [--workspace ID] [--data-dir DIR]

Host-side gateway for OpenWork clients. Precedence: flag > environment > server.json > default.

Options:
  --config PATH             config file (OPENWORK_SERVER_CONFIG; default ~/.config/openwork/server.json)
  --host HOST               listen address (OPENWORK_HOST; default 127.0.0.1)
  --port N                  listen port, 0 = any free port (OPENWORK_PORT; default 8787)
  --token T                 client bearer token (OPENWORK_TOKEN; default generated)
  --host-token T            host token (OPENWORK_HOST_TOKEN; default generated)
  --approval manual|auto    approval mode (OPENWORK_APPROVAL_MODE; default manual)
  --approval-timeout MS     approval timeout (OPENWORK_APPROVAL_TIMEOUT_MS; default 30000)
  --workspace PATH          a workspace folder; repeatable (OPENWORK_WORKSPACES)
  --cors ORIGINS            "*" or comma-separated origins (OPENWORK_CORS_ORIGINS; default *)
  --allowed-host NAME       host name also answered when bound to loopback, e.g. behind a
                            reverse proxy; repeatable (OPENWORK_ALLOWED_HOSTS)
  --read-only               refuse every write (OPENWORK_READONLY)
  --opencode-base-url URL   OpenCode server URL (OPENWORK_OPENCODE_BASE_URL)
  --opencode-directory DIR  OpenCode directory (OPENWORK_OPENCODE_DIRECTORY)
  --opencode-username U     OpenCode basic auth user (OPENWORK_OPENCODE_USERNAME)
  --opencode-password P     OpenCode basic auth password (OPENWORK_OPENCODE_PASSWORD)
  --data-dir DIR            audit log and state (OPENWORK_DATA_DIR; default ~/.openwork/openwork-server)
  --log-format pretty|json  log format (OPENWORK_LOG_FORMAT; default pretty)
  --[no-]log-requests       one log line per request (OPENWORK_LOG_REQUESTS; default on)
  --verbose                 debug logs; print the resolved configuration (secrets masked)
  --tls-cert PATH           TLS certificate, PEM (OPENWORK_TLS_CERT)
  --tls-key PATH            TLS private key, PEM (OPENWORK_TLS_KEY)
  -h, --help                show this help
  -v, --version             print the version

Environment only: OPENWORK_TOKEN_STORE, OPENWORK_INBOX_ENABLED, OPENWORK_INBOX_MAX_BYTES,
OPENWORK_OUTBOX_ENABLED, OPENWORK_SANDBOX_ENABLED, OPENWORK_SANDBOX_BACKEND, OPENWORK_TOY_UI,
OPENCODE_ROUTER_HEALTH_PORT, OPENCODE_ROUTER_CONFIG_PATH, OPENWORK_HUB_*, OPENWORK_CONTROL_*,
OPENWORK_TELEGRAM_API_URL, OPENWORK_RUN_ID. See docs/operations.md.
`;

type Out = { write(s: string): unknown };

/** Prints one error line and returns exit code 2 (startup/usage problems). */
function startupFailure(err: unknown, stderr: Out, verbose: boolean): number {
  const msg = err instanceof Error ? err.message : String(err);
  stderr.write(`openwork-server: ${msg.split("\n")[0]}\n`);
  if (verbose && err instanceof Error && !(err instanceof StartupError) && err.stack) stderr.write(err.stack + "\n");
  return 2;
}

/** A browser can open 127.0.0.1 but not 0.0.0.0 / ::. */
function browsableUrl(url: string): string {
  return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://127.0.0.1:");
}

function banner(url: string, config: ServerConfig, workspaces: { id: string; name: string; path: string }[]): string {
  const lines = [`OpenWork server listening on ${url}`];
  // Generated secrets are shown exactly once, here; they are never logged.
  if (config.tokenSource.client === "generated") lines.push(`Client token (generated): ${config.token}`);
  if (config.tokenSource.host === "generated") lines.push(`Host token (generated): ${config.hostToken}`);
  if (workspaces.length === 0) {
    lines.push("Workspaces: 0 — add one with --workspace /path/to/folder (or OPENWORK_WORKSPACES, or \"workspaces\" in server.json)");
  } else {
    lines.push(`Workspaces: ${workspaces.length}`);
    for (const w of workspaces) lines.push(`  ${w.id}  ${w.name}  ${w.path}`);
  }
  lines.push(`Approval mode: ${config.approval.mode}${config.readOnly ? " (read-only)" : ""}`);
  // Secrets go into the links only when they were generated (and so are printed above anyway);
  // a token the host chose is never echoed into terminal logs.
  const ui = `${browsableUrl(url)}/ui`;
  if (config.tokenSource.client === "generated") {
    lines.push(`UI: ${ui}#token=${encodeURIComponent(config.token)}`);
    if (config.tokenSource.host === "generated") {
      lines.push(`UI with host rights (approvals, tokens): ${ui}#token=${encodeURIComponent(config.token)}&hostToken=${encodeURIComponent(config.hostToken)}`);
    }
  } else {
    lines.push(`UI: ${ui} (sign in with your client token)`);
  }
  return lines.join("\n") + "\n";
}

/** Runs the CLI; resolves with the exit code when the command is finished (not for `serve`). */
export async function main(argv0: string[], io: { stdout: Out; stderr: Out } = process): Promise<number | "serving"> {
  // A leading `--` is dropped: the orchestrator launches `node <bin> -- <args>`.
  const argv = argv0[0] === "--" ? argv0.slice(1) : argv0;
  if (argv[0] === "approvals" || argv[0] === "audit") {
    return runHostCommand(argv, { env: process.env, cwd: process.cwd(), stdout: io.stdout, stderr: io.stderr });
  }
  const verbose = argv.includes("--verbose");
  let flags;
  try {
    flags = parseCliArgs(argv);
  } catch (err) {
    return startupFailure(err, io.stderr, verbose);
  }
  if (flags.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  if (flags.version) {
    io.stdout.write(cliVersion() + "\n");
    return 0;
  }

  let config: ServerConfig;
  try {
    config = await loadConfig({ argv, env: process.env, cwd: process.cwd() });
  } catch (err) {
    return startupFailure(err, io.stderr, verbose);
  }
  const log = createLogger({ format: config.logFormat, verbose: config.verbose, buffered: true, resource: { version: cliVersion(), runId: config.runId } });
  // The last lines are never lost: written synchronously at exit, and a crash is logged first.
  process.on("exit", () => log.flush(true));
  process.on("uncaughtException", (err) => {
    log.error("uncaught exception", { error: err });
    log.flush(true);
    process.exit(1);
  });
  if (config.verbose) io.stdout.write("Resolved configuration (secrets masked):\n" + JSON.stringify(maskedConfig(config), null, 2) + "\n");

  let server;
  let url: string;
  try {
    // Imported here so `--help`/`--version` and config errors stay fast and independent.
    const { createServer } = await import("./server.ts");
    server = await createServer(config, { log });
    try {
      url = await server.listen();
    } catch (err) {
      await server.close().catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
        throw new ConfigError(`cannot listen on ${config.host}:${config.port} (${code}); choose another --port / OPENWORK_PORT / "port"`);
      }
      throw err;
    }
  } catch (err) {
    return startupFailure(err, io.stderr, verbose);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: the user insists.
      process.exit(1);
    }
    stopping = true;
    log.info("shutting down", { signal });
    const force = setTimeout(() => {
      io.stderr.write("openwork-server: shutdown took too long, exiting\n");
      process.exit(1);
    }, LIMITS.shutdownGraceMs);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error("shutdown failed", { error: err });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // The banner comes last: whoever reads it (a supervisor, a test) may signal us at once, and the
  // handlers above must already be in place or the default action would kill the process.
  io.stdout.write(banner(url, config, server.context.workspaces.list()));
  return "serving";
}

// Runs on load: this module is only ever the entry point (src via tsx, or dist/cli.js via
// bin/openwork-server.js); nothing imports it.
main(process.argv.slice(2)).then(
  (code) => {
    // Exit explicitly: a half-started server must not keep the process alive.
    if (code !== "serving") process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`openwork-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
