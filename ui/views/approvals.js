// Approvals: where the host decides. Live over SSE (via the shared store in app.js): who asks,
// what exactly changes, the risk, the time left, Allow / Deny.
import { h, mount, badge, riskBadge, mono, scopeBadge, formatTime, formatCountdown, formatBytes, shortHash, pretty, revealText, errorBox, empty, loading, field, icon } from "../lib.js";

const RESULT_KIND = { allowed: "ok", denied: "danger", timeout: "neutral", cancelled: "neutral" };

/** Renders the actor: what kind of client, its scope, its id, and a token fingerprint. */
function actorLine(actor) {
  if (!actor) return h("span", { class: "muted" }, "unknown");
  return h(
    "span",
    { class: "actor" },
    h("span", { class: "actor-type", text: actor.type === "host" ? "Host" : "Remote client" }),
    scopeBadge(actor.scope),
    actor.clientId ? mono(actor.clientId, "actor-client") : null,
    actor.tokenHash ? h("span", { class: "muted small" }, "token ", mono(`${shortHash(actor.tokenHash, 12)}…`)) : null,
  );
}

function isFileList(value) {
  return Array.isArray(value) && value.length > 0 && value.every((v) => v && typeof v === "object" && typeof v.path === "string");
}

/** A table of files with sizes and hashes (uploads, batch writes, imports). */
function fileTable(items) {
  return h(
    "table",
    { class: "table table-compact" },
    h("thead", null, h("tr", null, h("th", null, "File"), h("th", null, "Size"), h("th", null, "SHA-256"), h("th", null, "Operation"))),
    h(
      "tbody",
      null,
      items.map((f) =>
        h(
          "tr",
          null,
          h("td", { "data-label": "File" }, mono(f.toPath ? `${f.path} → ${f.toPath}` : f.path)),
          h("td", { class: "num", "data-label": "Size" }, typeof f.bytes === "number" ? formatBytes(f.bytes) : typeof f.size === "number" ? formatBytes(f.size) : "—"),
          h("td", { "data-label": "SHA-256" }, f.sha256 ? mono(`${shortHash(f.sha256, 16)}…`, "muted") : "—"),
          h("td", { "data-label": "Operation" }, f.op || f.type || f.operation || f.action || (f.overwrite ? "overwrite" : f.create ? "create" : "—")),
        ),
      ),
    ),
  );
}

/** One value of the change, shown as precisely as possible (monospace, nothing interpreted). */
function changeValue(key, value, depth = 0) {
  if (value === null || ["number", "boolean"].includes(typeof value)) return mono(String(value), "change-scalar");
  if (typeof value === "string") {
    // Multi-line text (file content, templates) keeps its lines; still text, never markup.
    return value.includes("\n") ? h("pre", { class: "code", text: revealText(value) }) : mono(value, "change-scalar");
  }
  if (isFileList(value)) return fileTable(value);
  if (key === "command" && Array.isArray(value) && value.every((v) => typeof v === "string")) {
    return mono(value.map((v) => (/[\s"']/.test(v) ? JSON.stringify(v) : v)).join(" "), "change-scalar");
  }
  if (value && typeof value === "object" && !Array.isArray(value) && typeof value.path === "string") {
    // One file: its facts as a table row, then anything else it carries (e.g. the new content).
    const rest = Object.entries(value).filter(([k]) => !["path", "bytes", "size", "sha256", "op", "type", "created", "overwrite", "create"].includes(k));
    const op = value.op || value.type || (value.created === true || value.create === true ? "create" : value.created === false || value.overwrite ? "overwrite" : undefined);
    return h("div", { class: "change-nested" }, fileTable([{ ...value, op }]), rest.length ? h("dl", { class: "kv kv-change" }, rest.map(([k, v]) => [h("dt", { text: k }), h("dd", null, changeValue(k, v, depth + 1))])) : null);
  }
  if (depth < 2 && value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length && Object.keys(value).length <= 12) {
    return h("dl", { class: "kv kv-change change-nested" }, Object.entries(value).map(([k, v]) => [h("dt", { text: k }), h("dd", null, changeValue(k, v, depth + 1))]));
  }
  return h("pre", { class: "code", text: revealText(pretty(value)) });
}

/** The exact change: one row per top-level key; an MCP command line is shown as a command line. */
function changeBlock(change) {
  if (change === undefined || change === null) return h("span", { class: "muted" }, "—");
  if (typeof change !== "object" || Array.isArray(change)) return changeValue("", change);
  const rows = [];
  for (const [key, value] of Object.entries(change)) {
    rows.push(h("dt", { text: key }), h("dd", null, changeValue(key, value)));
  }
  return h("dl", { class: "kv kv-change", "data-testid": "approval-change" }, rows);
}

function approvalCard(item, ctx) {
  const titleId = `ap-${item.id}`;
  const countdown = h("span", { class: "countdown-text", "data-testid": "approval-countdown" });
  const bar = h("span", { class: "countdown-bar-fill" });
  const status = h("div", { class: "approval-status", role: "status" });
  const total = Math.max(1, item.expiresAt - item.createdAt);
  const risky = Array.isArray(item.risk) && item.risk.length > 0;
  const ws = ctx.workspaces.find((w) => w.id === item.workspaceId);

  const allow = h("button", { class: `btn ${risky ? "btn-allow-risky" : "btn-allow"}`, type: "button", "data-action": "allow", "aria-describedby": titleId }, "Allow");
  const deny = h("button", { class: "btn btn-deny", type: "button", "data-action": "deny", "aria-describedby": titleId }, "Deny");

  async function decide(yes) {
    allow.disabled = true;
    deny.disabled = true;
    mount(status, h("span", { class: "spinner", "aria-hidden": "true" }), yes ? " Allowing…" : " Denying…");
    try {
      await ctx.approvals.reply(item.id, yes);
      mount(status, yes ? "Allowed — the write is being applied." : "Denied — nothing will be written.");
      el.classList.add(yes ? "approval-allowed" : "approval-denied");
    } catch (err) {
      allow.disabled = false;
      deny.disabled = false;
      mount(status, errorBox(err));
    }
  }
  allow.addEventListener("click", () => decide(true));
  deny.addEventListener("click", () => decide(false));

  const el = h(
    "article",
    { class: `approval${risky ? " approval-risky" : ""}`, "aria-labelledby": titleId, "data-approval-id": item.id, "data-testid": "approval" },
    h(
      "header",
      { class: "approval-head" },
      h("div", { class: "approval-tags" }, mono(item.action, "action-chip"), risky ? item.risk.map(riskBadge) : badge("no code execution", "neutral")),
      h("div", { class: "countdown", title: `Expires at ${formatTime(item.expiresAt)}` }, h("span", { class: "countdown-icon", "aria-hidden": "true" }, icon("clock")), countdown, h("span", { class: "muted small" }, " left")),
    ),
    h("h2", { class: "approval-summary", id: titleId, text: revealText(item.summary) }),
    h("div", { class: "countdown-bar", "aria-hidden": "true" }, bar),
    h(
      "dl",
      { class: "kv approval-facts" },
      h("dt", null, "Requested by"),
      h("dd", null, actorLine(item.actor)),
      h("dt", null, "Workspace"),
      h("dd", null, ws ? h("span", null, ws.name, " ", mono(item.workspaceId, "muted")) : item.workspaceId ? mono(item.workspaceId) : h("span", { class: "muted" }, "server")),
      h("dt", null, "Asked at"),
      h("dd", null, formatTime(item.createdAt)),
      h("dt", null, (item.paths || []).length === 1 ? "Path" : `Paths (${(item.paths || []).length})`),
      h("dd", null, (item.paths || []).length ? h("ul", { class: "path-list", "data-testid": "approval-paths" }, item.paths.map((p) => h("li", null, mono(p)))) : h("span", { class: "muted" }, "none")),
    ),
    h("div", { class: "approval-change" }, h("div", { class: "section-label" }, "Exact change"), changeBlock(item.change)),
    risky ? h("p", { class: "risk-note" }, h("strong", null, "This lets the agent run code on this machine. "), "Allow only if you know and trust what is being added.") : null,
    h("footer", { class: "approval-actions" }, status, h("div", { class: "approval-buttons" }, deny, allow)),
  );

  el.tick = () => {
    const left = ctx.approvals.remaining(item);
    countdown.textContent = formatCountdown(left);
    bar.style.width = `${Math.max(0, Math.min(100, (left / total) * 100))}%`;
    el.classList.toggle("approval-urgent", left < 10_000);
    if (left <= 0 && !allow.disabled) {
      allow.disabled = true;
      deny.disabled = true;
      mount(status, "Expired — the request was refused.");
    }
  };
  el.tick();
  return el;
}

function recentList(ctx) {
  const recent = ctx.approvals.recent;
  if (!recent.length) return null;
  return h(
    "section",
    { class: "card" },
    h("h2", { class: "card-title" }, "Decided in this session"),
    h(
      "ul",
      { class: "recent-list", "data-testid": "approvals-recent" },
      recent.map((r) =>
        h("li", { class: "recent-item" }, badge(r.result, RESULT_KIND[r.result] || "neutral"), mono(r.action, "action-chip"), h("span", { class: "recent-summary", text: revealText(r.summary) }), h("span", { class: "muted small" }, formatTime(r.resolvedAt))),
      ),
    ),
  );
}

function hostNeeded(ctx) {
  const input = h("input", { type: "password", class: "input mono", autocomplete: "off", "data-testid": "host-token-input" });
  return h(
    "section",
    { class: "card" },
    h("h2", { class: "card-title" }, "Host access needed"),
    h("p", { class: "muted" }, "Only the host (the host token, or an owner token) can see and answer approval requests. The host token is printed when the server starts."),
    ctx.hostError ? errorBox(ctx.hostError) : null,
    h(
      "form",
      {
        class: "inline-form",
        onsubmit: (e) => {
          e.preventDefault();
          if (input.value.trim()) ctx.useHostToken(input.value.trim());
        },
      },
      field("Host token", input),
      h("button", { class: "btn btn-primary", type: "submit" }, "Use host token"),
    ),
  );
}

export default {
  id: "approvals",
  title: "Approvals",
  description: "Every write a client asks for waits here until you allow or deny it.",
  render(root, ctx) {
    if (!ctx.hostAccess) return mount(root, hostNeeded(ctx));
    const live = h("div", { class: "live", "data-testid": "approvals-live" });
    const listEl = h("div", { class: "approval-list", "data-testid": "approval-list" });
    const recentEl = h("div");
    const cards = new Map();
    const modeNote = ctx.manual
      ? null
      : h("div", { class: "notice notice-warn" }, h("strong", null, "Auto-approval is on. "), "Writes are applied without asking; nothing will wait here.");

    function renderLive() {
      const c = ctx.approvals.connection;
      const text = { open: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", error: "Disconnected", idle: "Not connected" }[c] || c;
      mount(live, h("span", { class: `live-dot live-${c}`, "aria-hidden": "true" }), h("span", { text }), h("span", { class: "muted small" }, " · new requests appear here without reloading"));
    }

    function render() {
      renderLive();
      const store = ctx.approvals;
      if (store.connection === "connecting" && !cards.size && !store.items.length) {
        mount(listEl, loading("Loading pending requests…"));
        return;
      }
      if (store.connection === "error" && store.error && !store.items.length) {
        mount(listEl, errorBox(store.error, () => store.start()));
        return;
      }
      const ids = new Set(store.items.map((i) => i.id));
      for (const [id, el] of cards) {
        if (!ids.has(id)) {
          el.remove();
          cards.delete(id);
        }
      }
      if (!store.items.length) {
        mount(listEl, h("div", { class: "state state-empty state-calm", "data-testid": "approvals-empty" }, icon("approvals"), h("div", { class: "state-title" }, "Nothing is waiting for you"), h("div", { class: "muted" }, "When a client asks to change this workspace, the request appears here at once.")));
      } else {
        const emptyEl = listEl.querySelector(".state");
        if (emptyEl) emptyEl.remove();
        for (const item of store.items) {
          if (!cards.has(item.id)) {
            const el = approvalCard(item, ctx);
            cards.set(item.id, el);
            listEl.appendChild(el);
          }
        }
      }
      mount(recentEl, recentList(ctx));
    }

    mount(root, h("div", { class: "approvals-top" }, live, h("span", { class: "muted small", "data-testid": "approvals-count" })), modeNote, listEl, recentEl);
    render();
    ctx.onCleanup(ctx.approvals.onChange(render));
    const timer = setInterval(() => {
      for (const el of cards.values()) el.tick();
    }, 250);
    ctx.onCleanup(() => clearInterval(timer));
  },
};
