/**
 * The workspace's OpenCode config (`opencode.jsonc` / `opencode.json`, JSONC) and OpenWork
 * config (`.opencode/openwork.json`, strict JSON), plus the global OpenCode config under HOME.
 * Reading, comment-preserving key edits, and the write helper every config write uses.
 */
import { readRegularFile } from "../fs/regular-file.ts";
import { sha256Hex } from "../auth/hash.ts";
import { lstat, mkdir } from "node:fs/promises";
import path from "node:path";
import { ApiError, fromFsError } from "../errors.ts";
import { isPlainObject, JsoncParseError, jsonEqual, parseJsoncObject, setTopLevelKeys } from "../formats/jsonc.ts";
import { withPathLocks } from "../fs/atomic.ts";
import { writeFileAt } from "../fs/anchored.ts";
import { readTextInside } from "../fs/inside.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";
import { LIMITS } from "../limits.ts";
import { commitFiles } from "../fs/journal.ts";
import { GIT_ONLY, resolveInside, withResolver } from "../fs/paths.ts";
import { answer, plan, type Answer, type Workspace, type WritePlan } from "../types.ts";
import { revisionSync } from "../fs/revision.ts";

/** A config file as read from disk: its text (undefined when missing) and parsed value or parse error. */
export interface ConfigFileState {
  path: string;
  /** Workspace-relative (or "~/…") name for answers and approvals. */
  display: string;
  text: string | undefined;
  value: Record<string, unknown> | undefined;
  error: ApiError | undefined;
}

/** `to` relative to `from`, "/"-separated (how paths appear in answers, approvals and resolveInside input). */
export function relPosix(from: string, to: string): string {
  return path.relative(from, to).split(path.sep).join("/");
}

/** Reads a UTF-8 text file; undefined when it does not exist. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readRegularFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw fromFsError(err, path.basename(file));
  }
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

/** Reads a workspace file through held folders (fs/inside.ts): one a link places outside is 403. */
async function readContained(root: string, file: string): Promise<string | undefined> {
  return readTextInside(root, relPosix(root, file)).catch((err: unknown) => {
    if (err instanceof ApiError && err.code === "path_outside_workspace") {
      throw new ApiError("path_outside_workspace", `${relPosix(root, file)} resolves outside the workspace`);
    }
    throw err;
  });
}

/** Runs a JSONC operation on OpenCode config text; a parse error becomes 422 invalid_jsonc with positions. */
function withJsonc<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof JsoncParseError) throw new ApiError("invalid_jsonc", "Failed to parse JSONC", err.errors);
    throw err;
  }
}

/** Parses OpenCode JSONC text; empty/whitespace → {}; errors → 422 invalid_jsonc with positions. */
export function parseOpencodeText(text: string): Record<string, unknown> {
  return withJsonc(() => parseJsoncObject(text));
}

/** Parses strict JSON config text (openwork.json); empty → {}; errors → 422 invalid_json. */
export function parseOpenworkText(text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch (err) {
    throw new ApiError("invalid_json", "Failed to parse .opencode/openwork.json", { error: (err as Error).message }, { status: 422 });
  }
  if (!isPlainObject(value)) throw new ApiError("invalid_json", ".opencode/openwork.json must hold a JSON object", undefined, { status: 422 });
  return value;
}

/** `<dir>/opencode.jsonc` if it exists, else `<dir>/opencode.json` if it exists, else `<dir>/opencode.jsonc`. */
export async function locateOpencodeConfig(dir: string, contain = true): Promise<{ path: string; text: string | undefined }> {
  for (const name of ["opencode.jsonc", "opencode.json"]) {
    const file = path.join(dir, name);
    const text = contain ? await readContained(dir, file) : await readTextIfExists(file);
    if (text !== undefined) return { path: file, text };
  }
  return { path: path.join(dir, "opencode.jsonc"), text: undefined };
}

function state(file: string, display: string, text: string | undefined, parse: (t: string) => Record<string, unknown>): ConfigFileState {
  if (text === undefined) return { path: file, display, text, value: {}, error: undefined };
  try {
    return { path: file, display, text, value: parse(text), error: undefined };
  } catch (err) {
    if (err instanceof ApiError) return { path: file, display, text, value: undefined, error: err };
    throw err;
  }
}

/** The workspace's OpenCode config. Parse errors are kept in `error` (callers decide to throw). */
export async function readProjectOpencode(wsPath: string): Promise<ConfigFileState> {
  const found = await locateOpencodeConfig(wsPath);
  return state(found.path, path.basename(found.path), found.text, parseOpencodeText);
}

export function openworkConfigPath(wsPath: string): string {
  return path.join(wsPath, ".opencode", "openwork.json");
}

export async function readOpenwork(wsPath: string): Promise<ConfigFileState> {
  const file = openworkConfigPath(wsPath);
  return state(file, ".opencode/openwork.json", await readContained(wsPath, file), parseOpenworkText);
}

/** `~/.config/opencode` under the server's HOME (never os.homedir(): tests point HOME elsewhere). */
export function globalOpencodeDir(homeDir: string): string {
  return path.join(homeDir, ".config", "opencode");
}

export async function readGlobalOpencode(homeDir: string): Promise<ConfigFileState> {
  // The host's own global config may be a symlink (dotfile managers): not contained.
  const found = await locateOpencodeConfig(globalOpencodeDir(homeDir), false);
  return state(found.path, "~/" + relPosix(homeDir, found.path), found.text, parseOpencodeText);
}

/** The parsed value, or the stored 422. */
export function valueOrThrow(s: ConfigFileState): Record<string, unknown> {
  if (s.error) throw s.error;
  return s.value ?? {};
}

/** Both workspace config files (what the cache keeps under "config"). */
export interface WorkspaceConfigFiles {
  opencode: ConfigFileState;
  openwork: ConfigFileState;
  /** `{"opencode":…,"openwork":…,"updatedAt":` rendered once for the cached GET answer. */
  rendered?: string;
}

export async function readWorkspaceConfig(wsPath: string): Promise<WorkspaceConfigFiles> {
  const [opencode, openwork] = await Promise.all([readProjectOpencode(wsPath), readOpenwork(wsPath)]);
  return { opencode, openwork };
}

/** A planned rewrite of one file: the exact new text, based on the exact old text. */
export interface FileEdit {
  path: string;
  display: string;
  /** Text the edit was computed from (undefined: the file did not exist). */
  base: string | undefined;
  next: string;
}

/** Comment-preserving top-level key updates of the OpenCode config; null when nothing changes. */
export function editOpencode(s: ConfigFileState, updates: Record<string, unknown>): FileEdit | null {
  const current = valueOrThrow(s);
  const changed = Object.keys(updates).filter((k) => !(Object.prototype.hasOwnProperty.call(current, k) && jsonEqual(current[k], updates[k])));
  if (changed.length === 0) return null;
  const next = withJsonc(() => setTopLevelKeys(s.text ?? "", updates));
  if (next === s.text) return null;
  return { path: s.path, display: s.display, base: s.text, next };
}

/** OpenWork config text: 2-space JSON with a trailing newline. */
export function openworkText(value: Record<string, unknown>): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** What an approval shows for a file write: name, size, hash and (when small) the text itself. */
export function describeEdit(e: FileEdit): Record<string, unknown> {
  const bytes = Buffer.byteLength(e.next);
  const out: Record<string, unknown> = { path: e.display, bytes, sha256: sha256Hex(e.next), created: e.base === undefined };
  if (bytes <= 64 * 1024) out.content = e.next;
  return out;
}

/**
 * Applies file edits under the caller's locks: each file must still hold the text the plan was
 * computed from (else 409 conflict: the host approved something else); one file is then written
 * atomically, several crash-atomically (fs/journal.ts: all or none, even across a crash).
 */
export async function applyEdits(root: string, edits: FileEdit[], dataDir?: string): Promise<void> {
  const check = async () => {
    for (const e of edits) if ((await readTextIfExists(e.path)) !== e.base) throw new ApiError("conflict", `${e.display} changed since the write was requested`);
  };
  if (edits.length === 1 || dataDir === undefined) {
    await check();
    for (const e of edits) await writeInside(root, e.path, e.next);
    return;
  }
  await commitFiles(dataDir, root, { writes: edits.map((e) => ({ rel: relPosix(root, e.path), data: e.next })), removals: [] }, { beforeCommit: check }).catch((err: unknown) => {
    throw fromFsError(err);
  });
}

/**
 * Atomic write of `file` inside `root` through the anchored path layer (real-path containment,
 * missing folders created one at a time, the bytes that landed checked).
 */
export async function writeInside(root: string, file: string, data: string | Buffer): Promise<void> {
  try {
    // The root itself may not exist yet (a fresh HOME's ~/.config/opencode).
    await mkdir(root, { recursive: true });
    await withResolver(root, GIT_ONLY, async (resolver) => {
      const r = await resolver.resolveNormalized(relPosix(root, file), { create: true });
      const { dir, name } = await resolver.parentFor(r);
      await writeFileAt(dir, name, data);
    });
  } catch (err) {
    throw fromFsError(err, path.basename(file));
  }
}

/** The global OpenCode config, or {} when it is missing or unreadable (the host's own file never fails a workspace request). */
export async function globalConfig(homeDir: string): Promise<Record<string, unknown>> {
  // Lists (MCP) read the host's global config on every request: it is parsed again only when one
  // of its two possible files changed (size, mtime, inode — one stat each, synchronous).
  const dir = globalOpencodeDir(homeDir);
  const key = ["opencode.jsonc", "opencode.json"].map((n) => revisionSync(path.join(dir, n))).join("|");
  const hit = globalCache.get(dir);
  if (hit && hit.key === key) return hit.value;
  let value: Record<string, unknown>;
  try {
    value = (await readGlobalOpencode(homeDir)).value ?? {};
  } catch {
    value = {};
  }
  globalCache.set(dir, { key, value });
  return value;
}

const globalCache = new Map<string, { key: string; value: Record<string, unknown> }>();

/** Copies `obj` with `key` set (defineProperty: a name can never reach a prototype). */
export function withKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * The plan of an edit of configuration files inside `root` (the shared builder of every
 * configuration write): each target is proved inside by real path before the host is asked (a
 * symlinked `.opencode` cannot redirect it), and applying re-checks that each file still holds the
 * text the plan was computed from. `answer` runs after the server recorded the write.
 */
export async function planEdits(
  ws: Workspace,
  edits: FileEdit[],
  o: { action: string; summary: string; change?: Record<string, unknown>; risk?: string[]; target?: string; root?: string; dataDir?: string; answer(): Promise<unknown> },
): Promise<WritePlan> {
  const root = o.root ?? ws.path;
  // A root that does not exist yet (a fresh HOME's ~/.config/opencode) holds nothing that could redirect a write.
  if (await exists(root)) for (const e of edits) await resolveInside(root, relPosix(root, e.path), { create: true });
  const files = edits.map(describeEdit);
  return plan({
    workspaceId: ws.id,
    action: o.action,
    summary: o.summary,
    paths: edits.map((e) => e.path),
    change: { ...o.change, ...(files.length === 1 ? { file: files[0] } : { files }) },
    risk: o.risk ?? [],
    target: o.target ?? edits.map((e) => e.display).join(", "),
    apply: async () => {
      await withPathLocks(edits.map((e) => e.path), () => applyEdits(root, edits, o.dataDir));
      return { body: o.answer };
    },
  });
}

function objectField(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw new ApiError("invalid_payload", `${key} must be an object`);
  return v;
}

/**
 * PATCH config: each top-level `opencode` key replaced (comment-preserving), `openwork` merged
 * shallowly. Computed from the files as they are on disk now, not from the cache; nothing to
 * change → the answer, without asking anybody.
 */
export async function planConfigPatch(ws: Workspace, body: Record<string, unknown>, updatedAt: () => Promise<number | null>, dataDir: string): Promise<WritePlan | Answer> {
  const oc = objectField(body, "opencode");
  const ow = objectField(body, "openwork");
  if (!oc && !ow) throw new ApiError("invalid_payload", "Body needs `opencode` and/or `openwork`");
  const cfg = await readWorkspaceConfig(ws.path);
  const ocEdit = oc ? editOpencode(cfg.opencode, oc) : null;
  let owEdit: FileEdit | null = null;
  if (ow) {
    const current = valueOrThrow(cfg.openwork);
    const next = { ...current, ...ow };
    if (!jsonEqual(current, next)) owEdit = { path: cfg.openwork.path, display: cfg.openwork.display, base: cfg.openwork.text, next: openworkText(next) };
  }
  const edits = [ocEdit, owEdit].filter((e): e is FileEdit => e !== null);
  if (edits.length === 0) return answer({ updatedAt: await updatedAt(), opencode: valueOrThrow(cfg.opencode), openwork: valueOrThrow(cfg.openwork) });
  const change: Record<string, unknown> = {};
  if (ocEdit) change.opencode = { set: oc, file: describeEdit(ocEdit) };
  if (owEdit) change.openwork = { merge: ow, file: describeEdit(owEdit) };
  const keys = [...(ocEdit ? Object.keys(oc!) : []), ...(owEdit ? Object.keys(ow!).map((k) => `openwork.${k}`) : [])];
  const p = await planEdits(ws, edits, {
    action: "config.patch",
    summary: `Update config: ${keys.join(", ")}`,
    risk: ocEdit ? ["executes-code"] : [],
    dataDir,
    answer: async () => {
      const now = await readWorkspaceConfig(ws.path);
      return { updatedAt: Date.now(), opencode: valueOrThrow(now.opencode), openwork: valueOrThrow(now.openwork) };
    },
  });
  p.change = change;
  return p;
}
