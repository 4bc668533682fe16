// Small helpers shared by the views: DOM building (never innerHTML), API calls, SSE over fetch,
// formatting. Everything that comes from the server or the workspace is inserted as text.

/**
 * Builds an element. `attrs`: class, text, dataset-free attributes, `on<event>` handlers,
 * boolean attributes (true/false). Children: nodes, strings (text), arrays, null/false (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "value") el.value = value;
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Error thrown by api(): carries the server's `code`, `message`, `details` and HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Credentials live in sessionStorage (per tab, gone when the tab closes). */
export const auth = {
  get token() {
    return sessionStorage.getItem("openwork.token") || "";
  },
  get hostToken() {
    return sessionStorage.getItem("openwork.hostToken") || "";
  },
  set(token, hostToken) {
    if (token) sessionStorage.setItem("openwork.token", token);
    else sessionStorage.removeItem("openwork.token");
    if (hostToken) sessionStorage.setItem("openwork.hostToken", hostToken);
    else sessionStorage.removeItem("openwork.hostToken");
  },
};

/** Request headers for our API: Bearer always, the host token only for host routes. */
export function authHeaders(host = false) {
  const headers = {};
  if (auth.token) headers["Authorization"] = `Bearer ${auth.token}`;
  if (host && auth.hostToken) headers["X-OpenWork-Host-Token"] = auth.hostToken;
  headers["X-OpenWork-Client-Id"] = "openwork-server-ui";
  return headers;
}

/** Turns a non-2xx response into an ApiError with the server's code and message. */
export async function toApiError(res) {
  let body;
  const text = await res.text().catch(() => "");
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (body && typeof body.code === "string") return new ApiError(res.status, body.code, String(body.message ?? ""), body.details);
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 200) || res.statusText || "Request failed");
}

/**
 * Calls the API. Options: json (body), host (send host token), signal, headers, raw (return the
 * Response). Returns the parsed JSON body; throws ApiError on a non-2xx answer.
 */
export async function api(method, path, options = {}) {
  const headers = { ...authHeaders(options.host), ...(options.headers || {}) };
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal: options.signal, cache: "no-store" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "The server could not be reached");
  }
  if (!res.ok) throw await toApiError(res);
  if (options.raw) return res;
  if (res.status === 204) return {};
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

/**
 * Server-Sent Events over fetch() (EventSource cannot send an Authorization header).
 * Reconnects with backoff, resuming with Last-Event-ID. Returns a stop function.
 * Handlers: onEvent({event, data, id}), onState("open"|"reconnecting"|"error", err?).
 */
export function subscribe(path, { host = false, onEvent, onState } = {}) {
  const controller = new AbortController();
  let lastId;
  let delay = 500;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const headers = { ...authHeaders(host), Accept: "text/event-stream" };
        if (lastId !== undefined) headers["Last-Event-ID"] = lastId;
        const res = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
        if (!res.ok) {
          const err = await toApiError(res);
          onState?.("error", err);
          // Auth and "not found" errors will not heal by retrying quickly.
          if ([401, 403, 404].includes(res.status)) return;
          throw err;
        }
        onState?.("open");
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        let event = { event: "message", data: [], id: undefined };
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let nl;
          while ((nl = buffer.search(/\r?\n/)) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + (buffer[nl] === "\r" ? 2 : 1));
            if (line === "") {
              if (event.data.length) {
                if (event.id !== undefined) lastId = event.id;
                const raw = event.data.join("\n");
                let data;
                try {
                  data = JSON.parse(raw);
                } catch {
                  data = raw;
                }
                onEvent?.({ event: event.event, data, id: event.id });
              }
              event = { event: "message", data: [], id: undefined };
            } else if (!line.startsWith(":")) {
              const colon = line.indexOf(":");
              const field = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
              if (field === "event") event.event = val;
              else if (field === "data") event.data.push(val);
              else if (field === "id") event.id = val;
            }
          }
        }
      } catch (err) {
        if (controller.signal.aborted) return;
        onState?.("reconnecting", err);
      }
      if (controller.signal.aborted) return;
      onState?.("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => controller.abort();
}

// ---------- formatting ----------

export function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "—";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatTime(ms) {
  if (typeof ms !== "number") return "—";
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" })} ${time}`;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  if (d) return `${d}d ${hh}h ${mm}m`;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

/** "0:27" style countdown. */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function shortHash(hash, n = 10) {
  return typeof hash === "string" ? hash.slice(0, n) : "—";
}

/**
 * Makes invisible and direction-changing characters visible (a human approving a write must
 * see the real name: `invoice\u202Etxt.exe` must not look like `invoiceexe.txt`).
 */
export function revealText(s) {
  return String(s).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g, (c) => `\\u{${c.codePointAt(0).toString(16).toUpperCase()}}`);
}

export function pretty(value) {
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

// ---------- small UI pieces ----------

/** An error panel showing the server's code and message. */
export function errorBox(err, retry) {
  const code = err && err.code ? err.code : "error";
  const message = err && err.message ? err.message : String(err);
  return h(
    "div",
    { class: "state state-error", role: "alert" },
    h("div", { class: "state-title" }, "Something went wrong"),
    h("div", { class: "error-line" }, h("code", { class: "error-code", text: code }), h("span", { text: message })),
    err && err.status ? h("div", { class: "muted small", text: `HTTP ${err.status}` }) : null,
    retry ? h("button", { class: "btn btn-small", type: "button", onclick: retry }, "Try again") : null,
  );
}

/**
 * Fills `el` with `draw(await fetcher())`, showing a loading state and, on failure, the server's
 * error with a retry button. Returns `reload`. With `keepContent`, a reload keeps what is shown
 * until the new answer arrives (lists that refresh live).
 */
export function loadInto(el, fetcher, draw, { keepContent = false } = {}) {
  async function reload() {
    if (!keepContent || !el.firstChild) mount(el, loading());
    try {
      mount(el, draw(await fetcher()));
    } catch (err) {
      mount(el, errorBox(err, reload));
    }
  }
  reload();
  return reload;
}

export function loading(text = "Loading…") {
  return h("div", { class: "state state-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), h("span", { text }));
}

export function empty(title, hint) {
  return h("div", { class: "state state-empty" }, h("div", { class: "state-title", text: title }), hint ? h("div", { class: "muted", text: hint }) : null);
}

export function badge(text, kind = "neutral", title) {
  return h("span", { class: `badge badge-${kind}`, title, text });
}

/** A risk flag rendered so it stands out. */
export function riskBadge(risk) {
  const labels = { "executes-code": "Executes code on host" };
  return h("span", { class: "badge badge-risk", title: `Risk: ${risk}` }, h("span", { class: "risk-icon", "aria-hidden": "true", text: "!" }), labels[risk] || risk);
}

export function scopeBadge(scope) {
  return badge(scope || "unknown", scope === "owner" ? "owner" : scope === "collaborator" ? "collab" : "viewer");
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", { class: "card-title", text: title }) : null, ...children);
}

/** Key/value rows; values may be nodes. */
export function kv(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows.filter(Boolean).map(([k, v]) => [h("dt", { text: k }), h("dd", null, v instanceof Node ? v : String(v ?? "—"))]),
  );
}

export function mono(text, cls = "") {
  return h("code", { class: `mono ${cls}`.trim(), text: revealText(text) });
}

/**
 * Runs a write and shows its progress in `statusEl`: "waiting for host approval" while the
 * request is held, then success or the server's error. Returns the result (or undefined).
 */
export async function runWrite(statusEl, label, fn, manual) {
  mount(
    statusEl,
    h(
      "div",
      { class: "write-status write-pending", role: "status" },
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { text: manual ? `${label} — waiting for host approval…` : `${label}…` }),
    ),
  );
  try {
    const result = await fn();
    mount(statusEl, h("div", { class: "write-status write-ok", role: "status" }, h("span", { "aria-hidden": "true", text: "✓ " }), `${label} — done`));
    return result;
  } catch (err) {
    const reason = err && err.details && err.details.reason ? ` (${err.details.reason})` : "";
    mount(
      statusEl,
      h(
        "div",
        { class: "write-status write-error", role: "alert" },
        h("code", { class: "error-code", text: err.code || "error" }),
        h("span", { text: ` ${label} failed: ${err.message}${reason}` }),
      ),
    );
    return undefined;
  }
}

/** Copies text to the clipboard, falling back to selecting it. */
export async function copyText(text, fallbackEl) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackEl) {
      const range = document.createRange();
      range.selectNodeContents(fallbackEl);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    return false;
  }
}

/** A labelled form field. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: label }), input, hint ? h("div", { class: "hint", text: hint }) : null);
}

/** Segmented tabs inside a view; returns {el, select(id)}. */
export function tabs(items, onSelect) {
  const buttons = new Map();
  const el = h("div", { class: "tabs", role: "tablist" });
  function select(id) {
    for (const [key, btn] of buttons) {
      btn.setAttribute("aria-selected", String(key === id));
      btn.tabIndex = key === id ? 0 : -1;
    }
    onSelect(id);
  }
  for (const item of items) {
    const btn = h("button", {
      class: "tab",
      type: "button",
      role: "tab",
      "data-tab": item.id,
      onclick: () => select(item.id),
      onkeydown: (e) => {
        const ids = items.map((i) => i.id);
        const at = ids.indexOf(item.id);
        if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
          e.preventDefault();
          const next = ids[(at + (e.key === "ArrowRight" ? 1 : ids.length - 1)) % ids.length];
          buttons.get(next).focus();
          select(next);
        }
      },
      text: item.label,
    });
    buttons.set(item.id, btn);
    el.appendChild(btn);
  }
  return { el, select };
}

const ICONS = {
  overview: "M3 3h7v7H3z M14 3h7v7h-7z M3 14h7v7H3z M14 14h7v7h-7z",
  approvals: "M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z M8.5 12l2.5 2.5 4.5-5",
  config: "M4 6h9 M17 6h3 M15 4v4 M4 12h3 M11 12h9 M9 10v4 M4 18h11 M19 18h1 M17 16v4",
  files: "M3 6.5A1.5 1.5 0 0 1 4.5 5H9l2 2h8.5A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z",
  tokens: "M8 11a4 4 0 1 0 0 8 4 4 0 0 0 0-8z M11 12l9-9 M17 6l3 3 M14.5 8.5l2 2",
  audit: "M9 6h12 M9 12h12 M9 18h12 M4 6h1 M4 12h1 M4 18h1",
  chat: "M4 5h16v11H9l-5 4z",
  clock: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z M12 7v5l3 2",
};

/** A small stroked SVG icon (built as DOM, so the CSP needs no inline styles). */
export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("fill", "none");
  svg.setAttribute("stroke", "currentColor");
  svg.setAttribute("stroke-width", "1.8");
  svg.setAttribute("stroke-linecap", "round");
  svg.setAttribute("stroke-linejoin", "round");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || "");
  svg.appendChild(path);
  return svg;
}
