/**
 * Preloaded (`--import`) into server processes that a test spawns through a wrapper such as
 * strace: the process exits as soon as its stdin pipe closes, i.e. when the test process that
 * owns the pipe is gone — even if the test was killed before its cleanup could run.
 */
process.stdin.on("end", () => process.exit(1));
process.stdin.on("error", () => process.exit(1));
process.stdin.resume();
// Do not keep the event loop alive because of stdin alone.
(process.stdin as unknown as { unref?: () => void }).unref?.();
