// The OpenWork server UI shell: credentials, workspace selection, navigation, the live
// approvals store shared by the nav badge and the Approvals view.
import { h, mount, api, auth, subscribe, errorBox, loading, scopeBadge, badge, field, ApiError, icon } from "./lib.js";
import overview from "./views/overview.js";
import approvals from "./views/approvals.js";
import config from "./views/config.js";
import files from "./views/files.js";
import tokens from "./views/tokens.js";
import audit from "./views/audit.js";
import chat from "./views/chat.js";

const VIEWS = [overview, approvals, config, files, tokens, audit, chat];
const app = document.getElementById("app");

// ---------- credentials from the URL fragment ----------

/**
 * `#token=…` (and optionally `hostToken=…`, `view=…`) is read once, stored in sessionStorage
 * and removed from the address bar, so the secret is never in history, bookmarks or referrers.
 */
function takeFragmentCredentials() {
  const raw = location.hash.replace(/^#/, "");
  if (!raw.includes("=")) return;
  const params = new URLSearchParams(raw);
  const token = params.get("token");
  const hostToken = params.get("hostToken") || params.get("host");
  if (token || hostToken) auth.set(token || auth.token, hostToken || auth.hostToken);
  const view = params.get("view");
  history.replaceState(null, "", location.pathname + (view ? `#${view}` : ""));
}

// ---------- workspace from the path ----------

function workspaceFromPath() {
  const m = /^\/w\/([^/]+)\/ui\/?$/.exec(location.pathname);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
}

function currentViewId() {
  const id = location.hash.replace(/^#/, "");
  return VIEWS.some((v) => v.id === id) ? id : "overview";
}

// ---------- live approvals store ----------

/** Pending approvals kept current over SSE; views and the nav badge subscribe to changes. */
function createApprovalsStore() {
  const items = new Map();
  const recent = [];
  const listeners = new Set();
  let stop;
  let connection = "idle";
  let error;
  let clockOffset = 0; // server clock minus ours, from the Date header
  const notify = () => listeners.forEach((fn) => fn());

  async function load() {
    const res = await api("GET", "/approvals", { host: true, raw: true });
    const date = Date.parse(res.headers.get("date") || "");
    if (Number.isFinite(date)) clockOffset = date - Date.now();
    const body = await res.json();
    items.clear();
    for (const item of body.items || []) items.set(item.id, { ...item, receivedAt: Date.now() });
  }

  return {
    get items() {
      return [...items.values()].sort((a, b) => a.createdAt - b.createdAt);
    },
    get recent() {
      return recent;
    },
    get connection() {
      return connection;
    },
    get error() {
      return error;
    },
    /** Milliseconds left before the server times the request out. */
    remaining(item) {
      return item.expiresAt - (Date.now() + clockOffset);
    },
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async start() {
      this.stop();
      connection = "connecting";
      error = undefined;
      notify();
      try {
        await load();
      } catch (err) {
        connection = "error";
        error = err;
        notify();
        return;
      }
      stop = subscribe("/approvals/events", {
        host: true,
        onState: async (s, err) => {
          if (s === "open" && connection === "reconnecting") {
            // Anything may have happened while we were away: reload the list.
            await load().catch(() => {});
          }
          connection = s;
          if (err) error = err;
          notify();
        },
        onEvent: ({ event, data }) => {
          if (event === "approval.requested" && data && data.id) {
            items.set(data.id, { ...data, receivedAt: Date.now() });
          } else if (event === "approval.resolved" && data && data.id) {
            const item = items.get(data.id);
            items.delete(data.id);
            if (item) {
              recent.unshift({ ...item, result: data.result, resolvedAt: Date.now() });
              recent.length = Math.min(recent.length, 20);
            }
          }
          notify();
        },
      });
    },
    stop() {
      if (stop) stop();
      stop = undefined;
      connection = "idle";
    },
    async reply(id, allow) {
      return api("POST", `/approvals/${encodeURIComponent(id)}`, { host: true, json: { reply: allow ? "allow" : "deny" } });
    },
  };
}

// ---------- login ----------

function renderLogin(err) {
  const tokenInput = h("input", { type: "password", autocomplete: "off", spellcheck: "false", class: "input mono", value: auth.token, required: true, "data-testid": "login-token" });
  const hostInput = h("input", { type: "password", autocomplete: "off", spellcheck: "false", class: "input mono", value: auth.hostToken, "data-testid": "login-host-token" });
  const form = h(
    "form",
    {
      class: "login-form",
      onsubmit: (e) => {
        e.preventDefault();
        auth.set(tokenInput.value.trim(), hostInput.value.trim());
        start();
      },
    },
    field("Access token", tokenInput, "A client token or a scoped token (owt_…)."),
    field("Host token (optional)", hostInput, "Needed to answer approvals and manage tokens, unless your access token has owner scope."),
    h("button", { class: "btn btn-primary btn-block", type: "submit" }, "Connect"),
  );
  mount(
    app,
    h(
      "div",
      { class: "login" },
      h(
        "div",
        { class: "login-card" },
        h("div", { class: "brand brand-large" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", null, "OpenWork ", h("span", { class: "brand-sub" }, "server"))),
        h("h1", { class: "login-title" }, "Connect to this server"),
        h("p", { class: "muted" }, "The server prints a ready link with the token when it starts. You can also paste a token here; it stays in this browser tab only."),
        err ? errorBox(err) : null,
        form,
      ),
    ),
  );
  tokenInput.focus();
}

// ---------- shell ----------

let cleanups = [];
let ctx;

function runCleanups() {
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch {
      /* a view's cleanup must not break navigation */
    }
  }
}

async function start() {
  takeFragmentCredentials();
  runCleanups();
  if (ctx) ctx.approvals.stop(); // a new sign-in replaces the old session and its event stream
  ctx = undefined;
  if (!auth.token) return renderLogin();
  mount(app, h("div", { class: "boot" }, loading("Connecting…")));
  let whoami, status, capabilities, workspaces;
  try {
    [whoami, status, capabilities, workspaces] = await Promise.all([
      api("GET", "/whoami"),
      api("GET", "/status"),
      api("GET", "/capabilities"),
      api("GET", "/workspaces"),
    ]);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return renderLogin(err);
    return mount(app, h("div", { class: "boot" }, errorBox(err, start)));
  }
  const scope = whoami.actor && whoami.actor.scope;
  let hostAccess = scope === "owner";
  let hostError;
  if (!hostAccess && auth.hostToken) {
    try {
      await api("GET", "/approvals", { host: true });
      hostAccess = true;
    } catch (err) {
      hostError = err; // shown where host access is asked for
    }
  }
  const store = createApprovalsStore();
  ctx = {
    whoami,
    status,
    capabilities,
    workspaces: workspaces.items || [],
    scope,
    hostAccess,
    hostError,
    approvals: store,
    get manual() {
      return (status.approval && status.approval.mode) !== "auto";
    },
    get readOnly() {
      return Boolean(status.readOnly);
    },
    workspaceId: undefined,
    workspace: undefined,
    navigate,
    selectWorkspace,
    onCleanup: (fn) => cleanups.push(fn),
    signOut,
    useHostToken(hostToken) {
      store.stop();
      auth.set(auth.token, hostToken);
      start();
    },
  };
  pickWorkspace();
  renderShell();
  if (hostAccess) store.start();
}

function pickWorkspace() {
  const fromPath = workspaceFromPath();
  const found = ctx.workspaces.find((w) => w.id === fromPath);
  const ws = found || ctx.workspaces.find((w) => w.id === (fromPath ? undefined : ctx.status.activeWorkspaceId)) || (fromPath ? undefined : ctx.workspaces[0]);
  ctx.workspace = ws;
  ctx.workspaceId = ws ? ws.id : fromPath;
  ctx.unknownWorkspace = Boolean(fromPath && !found);
}

function selectWorkspace(id) {
  history.pushState(null, "", `/w/${encodeURIComponent(id)}/ui${location.hash}`);
  pickWorkspace();
  renderShell();
}

function navigate(viewId) {
  if (location.hash !== `#${viewId}`) location.hash = viewId;
  else renderView();
}

function signOut() {
  ctx && ctx.approvals.stop();
  ctx = undefined;
  auth.set("", "");
  runCleanups();
  renderLogin();
}

let navLinks = new Map();
let approvalsCount;
let mainEl;
let connEl;

function renderShell() {
  runCleanups();
  const wsSelect = h(
    "select",
    { class: "input select", "aria-label": "Workspace", "data-testid": "workspace-select", onchange: (e) => selectWorkspace(e.target.value) },
    ctx.workspaces.map((w) => h("option", { value: w.id, selected: w.id === ctx.workspaceId }, `${w.name}`)),
  );
  if (!ctx.workspaces.length) wsSelect.disabled = true;

  approvalsCount = h("span", { class: "nav-count", "aria-label": "pending approvals", "data-testid": "nav-approvals-count" });
  navLinks = new Map();
  const nav = h(
    "nav",
    { class: "sidebar", "aria-label": "Views" },
    h(
      "ul",
      { class: "nav-list" },
      VIEWS.map((v) => {
        const link = h("a", { class: "nav-link", href: `#${v.id}`, "data-view": v.id }, h("span", { class: "nav-icon", "aria-hidden": "true" }, icon(v.id)), h("span", { class: "nav-label", text: v.title }), h("span", { class: "nav-label-short", "aria-hidden": "true", text: v.short || v.title }), v.id === "approvals" ? approvalsCount : null);
        navLinks.set(v.id, link);
        return h("li", null, link);
      }),
    ),
  );

  connEl = h("span", { class: "conn" });
  const header = h(
    "header",
    { class: "topbar" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), h("span", null, "OpenWork ", h("span", { class: "brand-sub" }, "server"))),
    h("div", { class: "ws-picker" }, wsSelect),
    h(
      "div",
      { class: "who" },
      h("span", { class: "who-label" }, "You: "),
      scopeBadge(ctx.scope),
      ctx.hostAccess ? badge("host", "host", "Host features enabled") : null,
      ctx.readOnly ? badge("read-only", "warn") : null,
      h("button", { class: "btn btn-ghost btn-small", type: "button", onclick: signOut, "data-testid": "sign-out" }, "Sign out"),
    ),
  );
  mainEl = h("main", { id: "main", class: "main", tabindex: "-1" });
  mount(app, header, h("div", { class: "layout" }, nav, mainEl), h("div", { id: "toasts", class: "toasts", "aria-live": "polite" }));
  updateBadges();
  renderView();
}

function updateBadges() {
  if (!approvalsCount) return;
  const n = ctx.hostAccess ? ctx.approvals.items.length : 0;
  approvalsCount.textContent = n ? String(n) : "";
  approvalsCount.classList.toggle("nav-count-on", n > 0);
  if (connEl) {
    const c = ctx.approvals.connection;
    connEl.className = `conn conn-${ctx.hostAccess ? c : "idle"}`;
    connEl.title = ctx.hostAccess ? `Approvals feed: ${c}` : "";
  }
  document.title = n ? `(${n}) OpenWork server` : "OpenWork server";
}

function renderView() {
  runCleanups();
  const id = currentViewId();
  const view = VIEWS.find((v) => v.id === id);
  for (const [key, link] of navLinks) {
    if (key === id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  ctx.onCleanup(ctx.approvals.onChange(updateBadges));
  const body = h("div", { class: "view-body", "data-view-body": id });
  mount(
    mainEl,
    h("div", { class: "view-header" }, h("h1", { class: "view-title", text: view.title }), view.description ? h("p", { class: "view-desc", text: view.description }) : null),
    ctx.unknownWorkspace ? errorBox(new ApiError(404, "workspace_not_found", `No workspace with id ${ctx.workspaceId} on this server`)) : null,
    body,
  );
  mainEl.dataset.view = id;
  try {
    view.render(body, ctx);
  } catch (err) {
    mount(body, errorBox(err));
  }
}

window.addEventListener("hashchange", () => {
  const raw = location.hash.replace(/^#/, "");
  if (raw.includes("=")) return start(); // a new #token=… link opened in this tab
  if (!ctx || raw === "main") return;
  renderView();
  mainEl && mainEl.focus({ preventScroll: true });
});
window.addEventListener("popstate", () => {
  if (!ctx) return;
  pickWorkspace();
  renderShell();
});
document.addEventListener("click", (e) => {
  // The skip link focuses the main region without turning "#main" into a route.
  const a = e.target.closest && e.target.closest("a.skip-link");
  if (a) {
    e.preventDefault();
    document.getElementById("main")?.focus();
  }
});

start();
