/** Catalog test helpers: open a session, replay events like a client, walk the disk afresh. */
import assert from "node:assert/strict";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { revisionOf } from "../../src/fs/revision.ts";
import type { TestServer } from "./server.ts";
import { waitFor } from "./wait.ts";

export interface CatalogEventJson {
  id: string;
  seq: number;
  workspaceId: string;
  type: "write" | "delete" | "mkdir" | "rename";
  path: string;
  toPath?: string;
  revision?: string;
  timestamp: number;
}

/** path → "dir" or the file's revision. */
export type TreeModel = Map<string, string>;

export async function openSession(s: TestServer, token?: string): Promise<string> {
  const r = await s.request("POST", `/workspace/${s.workspaceId}/files/sessions`, { json: {}, ...(token ? { token } : {}) });
  assert.equal(r.status, 200, r.text);
  return r.json.session.id as string;
}

/** The whole index as a model, plus the snapshot's cursor. */
export async function snapshotModel(s: TestServer, sid: string): Promise<{ model: TreeModel; cursor: number }> {
  const r = await s.request("GET", `/files/sessions/${sid}/catalog/snapshot?limit=10000`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.truncated, false);
  const model: TreeModel = new Map();
  for (const i of r.json.items) model.set(i.path, i.kind === "dir" ? "dir" : i.revision);
  return { model, cursor: r.json.cursor };
}

/** Applies events the way a client mirror would (delete/rename act on the whole subtree). */
export function replay(model: TreeModel, events: CatalogEventJson[]): void {
  const under = (p: string) => [...model.keys()].filter((k) => k === p || k.startsWith(p + "/"));
  for (const e of events) {
    if (e.type === "write") model.set(e.path, e.revision!);
    else if (e.type === "mkdir") model.set(e.path, "dir");
    else if (e.type === "delete") for (const k of under(e.path)) model.delete(k);
    else {
      const moved = under(e.path).map((k) => [k, model.get(k)!] as const);
      for (const [k] of moved) model.delete(k);
      for (const k of under(e.toPath!)) model.delete(k);
      for (const [k, v] of moved) model.set(e.toPath! + k.slice(e.path.length), v);
    }
  }
}

/** A fresh walk of the workspace: files (revision) and directories, no .git, no symlinks/specials. */
export async function walkModel(root: string, rel = "", out: TreeModel = new Map()): Promise<TreeModel> {
  let names: string[];
  try {
    names = await readdir(path.join(root, rel));
  } catch {
    return out;
  }
  for (const name of names) {
    if (name === ".git") continue;
    const r = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(root, r), { bigint: true }).catch(() => undefined);
    if (!st) continue;
    if (st.isFile()) out.set(r, revisionOf(st));
    else if (st.isDirectory()) {
      out.set(r, "dir");
      await walkModel(root, r, out);
    }
  }
  return out;
}

export function sameModel(a: TreeModel, b: TreeModel): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/**
 * Polls and replays the new events into `model` until it equals a fresh walk of the disk; on
 * timeout fails, with the difference when there is one (`message` builds the assertion message
 * from the timeout error). Returns the last walk.
 */
export async function converge(
  s: TestServer,
  f: EventFollower,
  model: TreeModel,
  options: { what: string; timeoutMs: number; message?: (err: unknown) => string },
): Promise<TreeModel> {
  let applied = 0;
  let disk: TreeModel = new Map();
  await waitFor(
    async () => {
      await f.poll(1);
      replay(model, f.events.slice(applied));
      applied = f.events.length;
      disk = await walkModel(s.workspace);
      return sameModel(model, disk);
    },
    { timeoutMs: options.timeoutMs, what: options.what },
  ).catch((err) => {
    assert.deepEqual([...model].sort(), [...disk].sort(), (options.message ?? String)(err));
    throw err; // a timed-out wait fails even when the last walk happens to match by now
  });
  return disk;
}

/** A client following the events route by JSON polling. */
export class EventFollower {
  readonly events: CatalogEventJson[] = [];
  resets = 0;
  constructor(private readonly s: TestServer, private readonly sid: string, public cursor: number) {}

  /** One poll (long-poll `wait` seconds); returns the new events. */
  async poll(wait = 2): Promise<CatalogEventJson[]> {
    const r = await this.s.request("GET", `/files/sessions/${this.sid}/catalog/events?since=${this.cursor}&wait=${wait}`);
    assert.equal(r.status, 200, r.text);
    if (r.json.reset) {
      this.resets++;
      throw new Error(`unexpected reset at since=${this.cursor}`);
    }
    const items = r.json.items as CatalogEventJson[];
    for (const e of items) {
      assert.equal(e.seq, this.cursor + 1, "seq is contiguous");
      this.cursor = e.seq;
    }
    this.events.push(...items);
    return items;
  }
}
