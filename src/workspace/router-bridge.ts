/**
 * Setting up the OpenCode Router chat bridge for a workspace: its bot identities (Telegram, Slack)
 * persisted in the router's own config file, applied through the router's unauthenticated local
 * HTTP API, and its bindings and outbound messages.
 *
 * Each workspace owns one identity per channel, named by its normalized workspace id. Tokens and
 * pairing codes never appear in approvals, audit entries, logs or error details (at most the last
 * 4 characters). The router is always reached on 127.0.0.1 at OPENCODE_ROUTER_HEALTH_PORT (3005
 * by default): the reference's client-supplied `healthPort` and request-Host fallbacks are SSRF
 * knobs and are ignored.
 */
import { readRegularFile } from "../fs/regular-file.ts";
import { createHash, randomInt } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { ApiError } from "../errors.ts";
import { isPlainObject } from "../formats/jsonc.ts";
import { withPathLock, writeFileAtomic } from "../fs/atomic.ts";
import { LIMITS } from "../limits.ts";
import { plan, type Workspace, type WritePlan } from "../types.ts";
import type { ServerConfig } from "../context.ts";
import { parseJsonBounded } from "../formats/json-nesting.ts";
import { readCapped } from "../engine.ts";
import { deadline } from "../deadline.ts";

type Obj = Record<string, unknown>;
export type Channel = "telegram" | "slack";

/** The workspace's identity id: runs outside [A-Za-z0-9_.-] → "-", trimmed, ≤ 48 chars, else "default". */
export function identityId(raw: unknown): string {
  const s = typeof raw === "string" ? raw.trim() : "";
  const cleaned = s.replace(/[^a-zA-Z0-9_.-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 48);
  return cleaned || "default";
}

/** The workspace's own identity; a different requested one → 400 identity_mismatch; "env" is reserved. */
export function ownIdentity(ws: Workspace, requested?: unknown): string {
  const expected = identityId(ws.id);
  const given = typeof requested === "string" && requested.trim() !== "" ? identityId(requested) : expected;
  if (given !== expected) throw new ApiError("identity_mismatch", `Identity id is scoped to this workspace (${ws.id})`, { expected, received: given });
  if (expected === "env") throw new ApiError("invalid_identity", "Identity id 'env' is reserved");
  return expected;
}

export function channelOf(raw: unknown): Channel {
  const c = typeof raw === "string" ? raw.trim().toLowerCase() : "";
  if (c !== "telegram" && c !== "slack") throw new ApiError("invalid_channel", "channel must be 'telegram' or 'slack'");
  return c;
}

/** Body booleans accept true or "true". */
export function truthy(v: unknown): boolean {
  return v === true || v === "true";
}

function str(v: unknown): string {
  return typeof v === "string" ? v.trim() : "";
}

const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});

/** What approvals and audit may show of a secret. */
function secretHint(secret: string): { tokenSet: true; last4: string } {
  return { tokenSet: true, last4: secret.slice(-4) };
}

// ---- the router's config file --------------------------------------------------------------

/** The file as an object (missing → `{"version":1}`); unparsable → 422 invalid_json, unreadable → 500. */
export async function readRouterConfig(file: string): Promise<Obj> {
  let text: string;
  try {
    text = await readRegularFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1 };
    throw new ApiError("opencode_router_config_read_failed", "OpenCode Router config cannot be read", { path: file });
  }
  let value: unknown;
  try {
    value = text.trim() === "" ? {} : parseJsonBounded(text, LIMITS.storedJsonMaxDepth);
  } catch {
    throw new ApiError("invalid_json", "OpenCode Router config is not valid JSON", { path: file }, { status: 422 });
  }
  if (!isPlainObject(value)) throw new ApiError("invalid_json", "OpenCode Router config must hold a JSON object", { path: file }, { status: 422 });
  return value;
}

/** Read → change → atomic write (2-space JSON + newline, mode 0600: it holds bot tokens), under the file's lock. */
async function updateRouterConfig<T>(file: string, change: (channels: Obj, current: Obj) => T): Promise<T> {
  return withPathLock(file, async () => {
    const current = await readRouterConfig(file);
    const channels = { ...obj(current.channels) };
    const out = change(channels, current);
    const next = { ...current, version: current.version ?? 1, channels };
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, JSON.stringify(next, null, 2) + "\n", { mode: 0o600 });
    return out;
  });
}

interface Identity {
  id: string;
  enabled: boolean;
  directory: string;
  secrets: Obj;
  access?: "public" | "private";
  pairingCodeHash?: string;
}

const LIST_KEY: Record<Channel, string> = { telegram: "bots", slack: "apps" };
const LEGACY: Record<Channel, string[]> = { telegram: ["token"], slack: ["botToken", "appToken"] };

/** Upserts an identity (matched by normalized id; the previous directory kept when none is given); enables the channel. */
function upsertIdentity(channels: Obj, channel: Channel, idn: Identity): void {
  const ch = { ...obj(channels[channel]) };
  const list = Array.isArray(ch[LIST_KEY[channel]]) ? (ch[LIST_KEY[channel]] as unknown[]).filter(isPlainObject) : [];
  let found = false;
  const next = list.map((entry) => {
    if (identityId(entry.id) !== idn.id) return entry;
    found = true;
    let access = idn.access;
    let hash = idn.pairingCodeHash;
    if (channel === "telegram" && access === undefined) {
      // An existing private bot keeps its access and pairing hash.
      access = entry.access === "private" ? "private" : "public";
      hash ??= str(entry.pairingCodeHash) || undefined;
    }
    return entryOf(channel, { ...idn, directory: idn.directory || str(entry.directory), ...(access ? { access } : {}), ...(hash ? { pairingCodeHash: hash } : {}) });
  });
  if (!found) next.push(entryOf(channel, { ...idn, ...(channel === "telegram" && !idn.access ? { access: "public" as const } : {}) }));
  ch.enabled = true;
  ch[LIST_KEY[channel]] = next;
  if (idn.id === "default") for (const k of LEGACY[channel]) ch[k] = idn.secrets[k];
  channels[channel] = ch;
}

function entryOf(channel: Channel, idn: Identity): Obj {
  if (channel === "telegram" && idn.access === "private" && !idn.pairingCodeHash) {
    throw new ApiError("pairing_code_required", "Telegram private access requires a pairing code");
  }
  const out: Obj = { id: idn.id, ...idn.secrets, enabled: idn.enabled };
  if (idn.directory) out.directory = idn.directory;
  if (channel === "telegram") {
    out.access = idn.access ?? "public";
    if (idn.access === "private") out.pairingCodeHash = idn.pairingCodeHash;
  }
  return out;
}

function deleteIdentity(channels: Obj, channel: Channel, id: string): boolean {
  const ch = { ...obj(channels[channel]) };
  const list = Array.isArray(ch[LIST_KEY[channel]]) ? (ch[LIST_KEY[channel]] as unknown[]).filter(isPlainObject) : [];
  const next = list.filter((e) => identityId(e.id) !== id);
  ch[LIST_KEY[channel]] = next;
  if (id === "default") for (const k of LEGACY[channel]) delete ch[k];
  channels[channel] = ch;
  return next.length !== list.length;
}

// ---- the router's local API ----------------------------------------------------------------

export interface RouterAnswer {
  /** The router answered 2xx. */
  applied: boolean;
  status?: number;
  body?: unknown;
  error?: string;
}

/** One call of the router's local API; never throws (the caller decides what a failure means). */
export async function callRouter(config: ServerConfig, method: string, pathname: string, o: { body?: unknown; timeoutMs: number }): Promise<RouterAnswer> {
  const port = config.routerHealthPort ?? LIMITS.routerDefaultPort;
  const limit = deadline(o.timeoutMs);
  try {
    const res = await fetch(`http://127.0.0.1:${port}${pathname}`, {
      method,
      headers: { "content-type": "application/json" },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      signal: limit.signal,
    });
    // Capped: a router answering without end must not fill our memory.
    const text = await readCapped(res, LIMITS.engineRelayMaxBytes);
    let body: unknown;
    try {
      body = text ? parseJsonBounded(text, LIMITS.storedJsonMaxDepth) : undefined;
    } catch {
      body = undefined;
    }
    if (res.ok) return { applied: true, status: res.status, body };
    const err = isPlainObject(body) && typeof body.error === "string" ? body.error : res.statusText || "OpenCode Router request failed";
    return { applied: false, status: res.status, body, error: err };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string }; message?: string };
    return { applied: false, error: e.name === "TimeoutError" ? `Timeout after ${o.timeoutMs}ms` : (e.cause?.code ?? e.message ?? "unreachable") };
  } finally {
    limit.done();
  }
}

/** A router failure of a call that has no degraded answer (bindings, send). Never a 404: the app would retry elsewhere. */
export function routerFailure(config: ServerConfig, a: RouterAnswer): ApiError {
  if (a.status !== undefined) return new ApiError("opencode_router_request_failed", "OpenCode Router refused the request", { status: a.status, error: a.error });
  return new ApiError("opencode_router_unreachable", "OpenCode Router is not reachable on this host", { port: config.routerHealthPort ?? LIMITS.routerDefaultPort, error: a.error });
}

/** Telegram `getMe` for the bot's public name; any failure → undefined (the URL holds the token: never logged). */
async function telegramBot(config: ServerConfig, token: string): Promise<Obj | undefined> {
  const limit = deadline(LIMITS.routerWriteTimeoutMs);
  try {
    const res = await fetch(`${config.telegramApiUrl}/bot${token}/getMe`, { signal: limit.signal });
    const json = obj(parseJsonBounded(await readCapped(res, 64 * 1024), LIMITS.storedJsonMaxDepth));
    const r = obj(json.result);
    if (!res.ok || json.ok !== true || typeof r.id !== "number") return undefined;
    const bot: Obj = { id: r.id };
    if (typeof r.username === "string") bot.username = r.username;
    if (typeof r.first_name === "string") bot.name = r.first_name;
    return bot;
  } catch {
    return undefined;
  } finally {
    limit.done();
  }
}

// ---- plans ---------------------------------------------------------------------------------

/** The common shape of every bridge write: approval over the router's config file, then `apply`. */
function bridgePlan(config: ServerConfig, ws: Workspace, o: { action: string; summary: string; target: string; change: Obj; apply(): Promise<unknown> }): WritePlan {
  return plan({
    workspaceId: ws.id,
    action: o.action,
    summary: o.summary,
    paths: [config.routerConfigPath],
    change: o.change,
    target: o.target,
    apply: async () => ({ body: await o.apply() }),
  });
}

/** Copies the router's per-channel apply fields into the answer (`applied` also to the top level, `error` as `applyError`). */
function mergeApply(out: Obj, channel: Channel, a: RouterAnswer, detail: Obj): void {
  const fromRouter = obj(obj(a.body)[channel]);
  if (typeof fromRouter.applied === "boolean") {
    detail.applied = fromRouter.applied;
    out.applied = fromRouter.applied;
  }
  if (typeof fromRouter.starting === "boolean") detail.starting = fromRouter.starting;
  if (typeof fromRouter.error === "string" && fromRouter.error.trim()) {
    detail.error = fromRouter.error;
    out.applyError = fromRouter.error;
  }
  if (!a.applied || out.applied === false) {
    out.applyError ??= a.error ?? "OpenCodeRouter did not apply the update";
    if (a.status !== undefined) out.applyStatus = a.status;
  }
}

/** `telegram-token` / `slack-tokens`: the workspace's identity with new tokens, enabled. */
export async function planSetTokens(config: ServerConfig, ws: Workspace, channel: Channel, body: Obj): Promise<WritePlan> {
  const secrets: Obj = channel === "telegram" ? { token: str(body.token) } : { botToken: str(body.botToken), appToken: str(body.appToken) };
  if (Object.values(secrets).some((v) => v === "")) throw new ApiError("token_required", channel === "telegram" ? "Telegram token is required" : "Slack botToken and appToken are required");
  const id = ownIdentity(ws);
  await readRouterConfig(config.routerConfigPath);
  const action = channel === "telegram" ? "opencodeRouter.telegram.set-token" : "opencodeRouter.slack.set-tokens";
  return bridgePlan(config, ws, {
    action,
    summary: channel === "telegram" ? "Set Telegram bot token" : "Set Slack bot tokens",
    target: `opencodeRouter.${channel}`,
    change: { channel, identityId: id, directory: ws.path, ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, secretHint(String(v))])) },
    apply: async () => {
      await updateRouterConfig(config.routerConfigPath, (channels) => upsertIdentity(channels, channel, { id, enabled: true, directory: ws.path, secrets }));
      const a = await callRouter(config, "POST", `/identities/${channel}`, { body: { id, ...secrets, enabled: true, directory: ws.path }, timeoutMs: LIMITS.routerWriteTimeoutMs });
      const detail: Obj = { configured: true, enabled: true };
      const out: Obj = { ok: true, persisted: true, applied: a.applied, [channel]: detail };
      if (channel === "telegram") {
        const bot = await telegramBot(config, String(secrets.token));
        if (bot) detail.bot = bot;
      }
      mergeApply(out, channel, a, detail);
      return out;
    },
  });
}

/** `telegram-enabled`: the channel switch (and, when disabling with clearToken, the default token). No router call. */
export async function planTelegramEnabled(config: ServerConfig, ws: Workspace, body: Obj): Promise<WritePlan> {
  const enabled = truthy(body.enabled);
  const clearToken = !enabled && truthy(body.clearToken);
  await readRouterConfig(config.routerConfigPath);
  return bridgePlan(config, ws, {
    action: "opencodeRouter.telegram.set-enabled",
    summary: enabled ? "Enable Telegram" : "Disable Telegram",
    target: "opencodeRouter.telegram",
    change: { enabled, clearToken },
    apply: async () => {
      await updateRouterConfig(config.routerConfigPath, (channels) => {
        const ch: Obj = { ...obj(channels.telegram), enabled };
        if (clearToken) {
          delete ch.token;
          if (Array.isArray(ch.bots)) ch.bots = ch.bots.map((b: unknown) => (isPlainObject(b) && identityId(b.id) === "default" ? (({ token: _t, ...rest }) => rest)(b) : b));
        }
        channels.telegram = ch;
      });
      return { ok: true, persisted: true, enabled, applied: false, applyError: "Restart opencodeRouter to apply" };
    },
  });
}

/** `GET telegram`: the `default` bot (else the legacy token) — a workspace-scoped bot reads as not configured (reference quirk, kept). */
export async function telegramInfo(config: ServerConfig): Promise<Obj> {
  const tg = obj(obj((await readRouterConfig(config.routerConfigPath)).channels).telegram);
  const bot = (Array.isArray(tg.bots) ? tg.bots : []).find((b): b is Obj => isPlainObject(b) && str(b.id) === "default");
  const token = str(bot?.token) || str(tg.token);
  const configured = token !== "";
  const enabled = configured && tg.enabled !== false && tg.enabled !== "false" && (bot?.enabled === undefined || truthy(bot.enabled));
  return { ok: true, configured, enabled, bot: configured ? ((await telegramBot(config, token)) ?? null) : null };
}

/** `GET identities/<channel>`: the router's view reduced to this workspace, else the file's. */
export async function listIdentities(config: ServerConfig, ws: Workspace, channel: Channel): Promise<Obj> {
  const id = ownIdentity(ws);
  const shape = (e: Obj, running: boolean): Obj => {
    const enabled = e.enabled === undefined || truthy(e.enabled);
    if (channel === "slack") return { id: identityId(e.id), enabled, running };
    const access = e.access === "private" || e.access === "public" ? e.access : truthy(e.pairingRequired) ? "private" : "public";
    return { id: identityId(e.id), enabled, running, access, pairingRequired: access === "private" };
  };
  const a = await callRouter(config, "GET", `/identities/${channel}`, { timeoutMs: LIMITS.routerReadTimeoutMs });
  const answer = obj(a.body);
  if (a.applied && Array.isArray(answer.items)) {
    return { ...answer, items: answer.items.filter(isPlainObject).map((e) => shape(e, truthy(e.running))).filter((e) => e.id === id) };
  }
  const list = obj(obj((await readRouterConfig(config.routerConfigPath)).channels)[channel])[LIST_KEY[channel]];
  return { ok: true, items: (Array.isArray(list) ? list : []).filter(isPlainObject).map((e) => shape(e, false)).filter((e) => e.id === id) };
}

const PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/** `POST identities/<channel>`: upsert of the workspace's identity (Telegram: access and pairing code). */
export async function planUpsertIdentity(config: ServerConfig, ws: Workspace, channel: Channel, body: Obj): Promise<WritePlan> {
  const id = ownIdentity(ws, body.id ?? body.identityId);
  const enabled = body.enabled === undefined || truthy(body.enabled);
  const secrets: Obj = channel === "telegram" ? { token: str(body.token) } : { botToken: str(body.botToken), appToken: str(body.appToken) };
  let access: "public" | "private" | undefined;
  let pairingCode = "";
  if (channel === "telegram") {
    access = str(body.access).toLowerCase() === "private" ? "private" : "public";
    if (access === "private") {
      const given = typeof body.pairingCode === "string" ? body.pairingCode.toUpperCase().replace(/[^A-Z0-9]/g, "") : "";
      if (typeof body.pairingCode === "string" && body.pairingCode.trim() !== "" && (given.length < 6 || given.length > 24)) {
        throw new ApiError("invalid_pairing_code", "Pairing code must be 6-24 letters or numbers");
      }
      pairingCode = given || Array.from({ length: 8 }, () => PAIRING_ALPHABET[randomInt(PAIRING_ALPHABET.length)]).join("");
    }
  }
  if (Object.values(secrets).some((v) => v === "")) throw new ApiError("token_required", channel === "telegram" ? "Telegram token is required" : "Slack botToken and appToken are required");
  await readRouterConfig(config.routerConfigPath);
  // The pairing code is stored and sent only as its hash; the plain code is shown once, in this answer.
  const pairingCodeHash = pairingCode ? createHash("sha256").update(pairingCode).digest("hex") : undefined;
  return bridgePlan(config, ws, {
    action: `opencodeRouter.${channel}.identity.upsert`,
    summary: `Upsert ${channel === "telegram" ? "Telegram" : "Slack"} identity (${id})`,
    target: `opencodeRouter.${channel}`,
    change: { channel, identityId: id, enabled, directory: ws.path, ...(access ? { access } : {}), ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, secretHint(String(v))])) },
    apply: async () => {
      const idn: Identity = { id, enabled, directory: ws.path, secrets, ...(access ? { access } : {}), ...(pairingCodeHash ? { pairingCodeHash } : {}) };
      await updateRouterConfig(config.routerConfigPath, (channels) => upsertIdentity(channels, channel, idn));
      const payload = { id, ...secrets, enabled, directory: ws.path, ...(access ? { access } : {}), ...(pairingCodeHash ? { pairingCodeHash } : {}) };
      const a = await callRouter(config, "POST", `/identities/${channel}`, { body: payload, timeoutMs: LIMITS.routerWriteTimeoutMs });
      const forced: Obj = access ? { access, pairingRequired: access === "private", ...(access === "private" ? { pairingCode } : {}) } : {};
      let detail: Obj = { id, enabled, ...forced };
      if (channel === "telegram") {
        const bot = await telegramBot(config, String(secrets.token));
        if (bot) detail.bot = bot;
      }
      const fromRouter = obj(a.body)[channel];
      if (isPlainObject(fromRouter)) detail = { ...detail, ...fromRouter, ...forced };
      const out: Obj = { ok: true, persisted: true, applied: a.applied, [channel]: detail };
      if (!a.applied) {
        out.applyError = a.error ?? "OpenCodeRouter did not apply the update";
        if (a.status !== undefined) out.applyStatus = a.status;
      }
      return out;
    },
  });
}

/** `DELETE identities/<channel>/:identityId`: the file is rewritten (even when nothing matched), then the router is told. */
export async function planDeleteIdentity(config: ServerConfig, ws: Workspace, channel: Channel, requested: unknown): Promise<WritePlan> {
  const id = ownIdentity(ws, requested);
  await readRouterConfig(config.routerConfigPath);
  return bridgePlan(config, ws, {
    action: `opencodeRouter.${channel}.identity.delete`,
    summary: `Delete ${channel === "telegram" ? "Telegram" : "Slack"} identity (${id})`,
    target: `opencodeRouter.${channel}`,
    change: { channel, identityId: id },
    apply: async () => {
      const deleted = await updateRouterConfig(config.routerConfigPath, (channels) => deleteIdentity(channels, channel, id));
      const a = await callRouter(config, "DELETE", `/identities/${channel}/${encodeURIComponent(id)}`, { timeoutMs: LIMITS.routerWriteTimeoutMs });
      const fromRouter = obj(a.body)[channel];
      const out: Obj = { ok: true, persisted: true, deleted, applied: a.applied, [channel]: isPlainObject(fromRouter) ? fromRouter : { id, deleted } };
      if (!a.applied) {
        out.applyError = a.error ?? "OpenCodeRouter did not apply the update";
        if (a.status !== undefined) out.applyStatus = a.status;
      }
      return out;
    },
  });
}

/** `GET bindings`: the router's answer, scoped to this workspace's identity. */
export async function listBindings(config: ServerConfig, ws: Workspace, query: URLSearchParams): Promise<unknown> {
  const search = new URLSearchParams();
  const channel = query.get("channel")?.trim();
  if (channel) search.set("channel", channel);
  search.set("identityId", ownIdentity(ws, query.get("identityId")));
  const a = await callRouter(config, "GET", `/bindings?${search}`, { timeoutMs: LIMITS.routerReadTimeoutMs });
  if (!a.applied) throw routerFailure(config, a);
  return a.body ?? { ok: true, items: [] };
}

/** `POST bindings`: a peer bound to a directory (or cleared). The router stores it; audited after it applied. */
export function planBinding(config: ServerConfig, ws: Workspace, body: Obj): WritePlan {
  const id = ownIdentity(ws, body.identityId);
  const channel = channelOf(body.channel);
  const peerId = str(body.peerId);
  if (!peerId) throw new ApiError("peer_required", "peerId is required");
  const directory = str(body.directory);
  const summary = directory ? `Bind ${channel}/${id}:${peerId} -> ${directory}` : `Clear binding for ${channel}/${id}:${peerId}`;
  return bridgePlan(config, ws, {
    action: directory ? "opencodeRouter.binding.set" : "opencodeRouter.binding.clear",
    summary,
    target: "opencodeRouter.binding",
    change: { channel, identityId: id, peerId, ...(directory ? { directory } : {}) },
    apply: async () => {
      const a = await callRouter(config, "POST", "/bindings", { body: { channel, identityId: id, peerId, ...(directory ? { directory } : {}) }, timeoutMs: LIMITS.routerWriteTimeoutMs });
      if (!a.applied) throw routerFailure(config, a);
      return a.body ?? { ok: true };
    },
  });
}

/** `POST send`: an outbound message through the router (no approval by spec; audited after it was sent). */
export function planSend(config: ServerConfig, ws: Workspace, body: Obj): WritePlan {
  const channel = channelOf(body.channel);
  const given = typeof body.identityId === "string" && body.identityId.trim() !== "";
  const id = given ? ownIdentity(ws, body.identityId) : undefined;
  const text = typeof body.text === "string" ? body.text : "";
  if (text.trim() === "") throw new ApiError("text_required", "text is required");
  const directory = str(body.directory) || ws.path;
  const peerId = str(body.peerId);
  const payload: Obj = { channel, ...(id ? { identityId: id } : {}), directory, ...(peerId ? { peerId } : {}), ...(truthy(body.autoBind) ? { autoBind: true } : {}), text };
  return plan({
    workspaceId: ws.id,
    action: "opencodeRouter.send",
    summary: `Sent outbound ${channel} message${id ? ` for ${id}` : ""}${peerId ? ` to ${peerId}` : ""}`,
    paths: [],
    change: { channel, identityId: id, peerId, directory, bytes: Buffer.byteLength(text) },
    target: `opencodeRouter.${channel}`,
    apply: async () => {
      const a = await callRouter(config, "POST", "/send", { body: payload, timeoutMs: LIMITS.routerSendTimeoutMs });
      if (!a.applied) throw routerFailure(config, a);
      return { body: a.body ?? { ok: true, channel, directory, attempted: 0, sent: 0 } };
    },
  });
}
