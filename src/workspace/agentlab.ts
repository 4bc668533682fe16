/**
 * Agent Lab automations: a prompt on a schedule, stored in
 * `<ws>/.opencode/openwork/agentlab/automations.json`. The server only stores them (nothing here
 * runs them on a timer) and can run one now: a new OpenCode session with the prompt.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { isPlainObject } from "../formats/jsonc.ts";
import { engineRequest, jsonOrText, opencodeTarget } from "../engine.ts";
import { withPathLock } from "../fs/atomic.ts";
import { lstatAt } from "../fs/anchored.ts";
import { readTextInside, withInside } from "../fs/inside.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";
import { LIMITS } from "../limits.ts";
import { plan, type Workspace, type WritePlan } from "../types.ts";
import type { ServerConfig } from "../context.ts";
import { planEdits, writeInside } from "./opencode-config.ts";

type Obj = Record<string, unknown>;
const DIR = ".opencode/openwork/agentlab";
const ID_RE = /^[a-zA-Z0-9_-]{1,80}$/;

const storeFile = (ws: Workspace) => path.join(ws.path, DIR, "automations.json");

/** A schedule, numbers truncated to integers; undefined when it is not one of the three kinds in range. */
function schedule(raw: unknown): Obj | undefined {
  if (!isPlainObject(raw)) return undefined;
  const int = (v: unknown, lo: number, hi: number) => (typeof v === "number" && Number.isFinite(v) && Math.trunc(v) >= lo && Math.trunc(v) <= hi ? Math.trunc(v) : undefined);
  const hour = int(raw.hour, 0, 23);
  const minute = int(raw.minute, 0, 59);
  if (raw.kind === "interval") {
    const seconds = int(raw.seconds, 60, 604_800);
    return seconds === undefined ? undefined : { kind: "interval", seconds };
  }
  if (raw.kind === "daily") return hour === undefined || minute === undefined ? undefined : { kind: "daily", hour, minute };
  if (raw.kind === "weekly") {
    const weekday = int(raw.weekday, 1, 7);
    return weekday === undefined || hour === undefined || minute === undefined ? undefined : { kind: "weekly", weekday, hour, minute };
  }
  return undefined;
}

const valid = (a: unknown): a is Obj =>
  isPlainObject(a) && typeof a.id === "string" && typeof a.name === "string" && typeof a.prompt === "string" && schedule(a.schedule) !== undefined;

/** The store (items without id, name, prompt or a valid schedule dropped); missing → empty; unparsable → 422 invalid_json. */
export async function readAutomations(ws: Workspace): Promise<{ items: Obj[]; updatedAt: number; text: string | undefined }> {
  const text = await readTextInside(ws.path, `${DIR}/automations.json`);
  if (text === undefined) return { items: [], updatedAt: Date.now(), text };
  let data: unknown;
  try {
    data = parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch {
    throw new ApiError("invalid_json", "automations.json is not valid JSON", { path: `${DIR}/automations.json` }, { status: 422 });
  }
  const items = isPlainObject(data) && Array.isArray(data.items) ? data.items.filter(valid) : [];
  return { items, updatedAt: isPlainObject(data) && typeof data.updatedAt === "number" ? data.updatedAt : Date.now(), text };
}

const storeText = (items: Obj[], updatedAt: number) => JSON.stringify({ schemaVersion: 1, updatedAt, items }, null, 2) + "\n";

/** Creates or replaces an automation (new ids are `agentlab_<uuid>`; new ones come first). */
export async function planAutomationUpsert(ws: Workspace, body: Obj): Promise<WritePlan> {
  const name = typeof body.name === "string" ? body.name.trim() : "";
  const prompt = typeof body.prompt === "string" ? body.prompt : "";
  const sched = schedule(body.schedule);
  if (name === "" || prompt.trim() === "" || !sched) throw new ApiError("invalid_payload", "An automation needs a name, a prompt and a valid schedule");
  if (body.id !== undefined && (typeof body.id !== "string" || !ID_RE.test(body.id))) throw new ApiError("invalid_payload", "id must match ^[a-zA-Z0-9_-]+$ (at most 80 characters)");
  if (body.enabled !== undefined && typeof body.enabled !== "boolean") throw new ApiError("invalid_payload", "enabled must be a boolean");
  const current = await readAutomations(ws);
  const now = Date.now();
  const id = (body.id as string | undefined) ?? `agentlab_${randomUUID().replace(/-/g, "")}`;
  const fields = { name, prompt, enabled: body.enabled ?? true, schedule: sched };
  const existing = current.items.find((a) => a.id === id);
  const items = existing ? current.items.map((a) => (a.id === id ? { ...a, ...fields, updatedAt: now } : a)) : [{ id, ...fields, createdAt: now, updatedAt: now }, ...current.items];
  const file = storeFile(ws);
  const p = await planEdits(ws, [{ path: file, display: `${DIR}/automations.json`, base: current.text, next: storeText(items, now) }], {
    action: "agentlab.automations.upsert",
    summary: `${existing ? "Update" : "Create"} automation ${name}`,
    change: { id, ...fields },
    target: id,
    answer: async () => ({ items, updatedAt: now }),
  });
  const apply = p.apply;
  p.apply = async () => ({ ...(await apply()), status: 201 });
  return p;
}

/** Deletes an automation; unknown → 404 before anybody is asked. */
export async function planAutomationDelete(ws: Workspace, id: string): Promise<WritePlan> {
  const current = await readAutomations(ws);
  const target = current.items.find((a) => a.id === id);
  if (!target) throw new ApiError("automation_not_found", `Automation not found: ${id}`);
  const now = Date.now();
  return planEdits(ws, [{ path: storeFile(ws), display: `${DIR}/automations.json`, base: current.text, next: storeText(current.items.filter((a) => a !== target), now) }], {
    action: "agentlab.automations.delete",
    summary: `Delete automation ${String(target.name)}`,
    change: { id, name: target.name },
    target: id,
    answer: async () => ({ ok: true }),
  });
}

/**
 * Runs an automation now: a new OpenCode session titled after it, with its prompt (no approval by
 * spec: it is a chat, like any prompt). The run is recorded in the store unless read-only.
 */
export async function planAutomationRun(config: ServerConfig, ws: Workspace, id: string, signal: AbortSignal): Promise<WritePlan> {
  const current = await readAutomations(ws);
  const a = current.items.find((x) => x.id === id);
  if (!a) throw new ApiError("automation_not_found", `Automation not found: ${id}`);
  const target = opencodeTarget(config, ws);
  const file = storeFile(ws);
  return plan({
    workspaceId: ws.id,
    action: "agentlab.automations.run",
    summary: `Run automation ${String(a.name)}`,
    paths: config.readOnly ? [] : [file],
    change: { id, name: a.name },
    target: id,
    apply: async () => {
      const o = { signal, timeoutMs: LIMITS.proxyHeadersTimeoutMs };
      const created = await engineRequest(target, "POST", "/session", { ...o, body: { title: `Automation: ${String(a.name)}` } });
      if (!created.ok) throw new ApiError("opencode_request_failed", "OpenCode did not create a session", { status: created.status, body: jsonOrText(created.text) });
      const session = jsonOrText(created.text);
      const sessionId = isPlainObject(session) && typeof session.id === "string" ? session.id : undefined;
      if (!sessionId) throw new ApiError("opencode_failed", "OpenCode answered without a session id");
      const prompted = await engineRequest(target, "POST", `/session/${encodeURIComponent(sessionId)}/prompt_async`, { ...o, body: { parts: [{ type: "text", text: a.prompt }] } });
      if (!prompted.ok) throw new ApiError("opencode_request_failed", "OpenCode did not take the prompt", { status: prompted.status, body: jsonOrText(prompted.text) });
      const ranAt = Date.now();
      if (!config.readOnly) {
        await withPathLock(file, async () => {
          const now = await readAutomations(ws);
          const items = now.items.map((x) => (x.id === id ? { ...x, lastRunAt: ranAt, lastRunSessionId: sessionId, updatedAt: ranAt } : x));
          await writeInside(ws.path, file, storeText(items, ranAt));
        });
      }
      return { body: { ok: true, automationId: id, sessionId, ranAt } };
    },
  });
}

/** Run logs `<id>.log`, newest first; no folder → []. Listed through the held folder (fs/inside.ts). */
export async function listAutomationLogs(ws: Workspace): Promise<{ items: Obj[] }> {
  const items = await withInside(ws.path, async (reader) => {
    const dir = await reader.folder(`${DIR}/logs`).catch(() => undefined);
    const out: Obj[] = [];
    if (!dir) return out;
    for (const e of await reader.entries(dir)) {
      if (!e.isFile() || !e.name.endsWith(".log")) continue;
      const st = await lstatAt(dir, e.name);
      if (st?.isFile()) out.push({ id: e.name.slice(0, -4), path: e.name, size: st.size, updatedAt: Math.floor(st.mtimeMs) });
    }
    return out;
  });
  return { items: (items ?? []).sort((x, y) => (y.updatedAt as number) - (x.updatedAt as number)) };
}

/** One run log; missing, a link or not a regular file → 404 log_not_found. The id is checked before it becomes a file name. */
export async function readAutomationLog(ws: Workspace, id: string): Promise<Obj> {
  if (!ID_RE.test(id)) throw new ApiError("invalid_payload", "Invalid automation id");
  const content = await withInside(ws.path, async (reader) => {
    const dir = await reader.folder(`${DIR}/logs`);
    if (!dir) return undefined;
    return reader.textIn(dir, `${id}.log`).catch((err: unknown) => {
      if (err instanceof ApiError && (err.code === "file_not_found" || err.code === "path_outside_workspace")) return undefined;
      throw err;
    });
  });
  if (content === undefined) throw new ApiError("log_not_found", "Log not found");
  return { id, content };
}
