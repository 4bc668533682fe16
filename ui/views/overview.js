// Overview: server facts, the caller's access, and the workspaces (pick one).
import { h, mount, api, card, kv, badge, mono, scopeBadge, formatDuration, shortHash, errorBox, empty } from "../lib.js";

export default {
  id: "overview",
  title: "Overview",
  description: "This server, your access, and the workspaces it serves.",
  render(root, ctx) {
    const { status, capabilities, whoami } = ctx;
    const uptime = h("span", { "data-testid": "uptime", text: formatDuration(status.uptimeMs) });
    const startedAt = Date.now() - status.uptimeMs;
    const timer = setInterval(() => (uptime.textContent = formatDuration(Date.now() - startedAt)), 1000);
    ctx.onCleanup(() => clearInterval(timer));

    const mode = status.approval ? status.approval.mode : "manual";
    const pendingEl = h("span", { "data-testid": "overview-pending" });
    const updatePending = () => {
      mount(
        pendingEl,
        ctx.hostAccess
          ? ctx.approvals.items.length
            ? h("a", { href: "#approvals", class: "link-strong" }, `${ctx.approvals.items.length} waiting for you`)
            : "none"
          : h("span", { class: "muted" }, "host access needed"),
      );
    };
    updatePending();
    ctx.onCleanup(ctx.approvals.onChange(updatePending));

    const server = card(
      "Server",
      kv([
        ["Version", mono(status.version || capabilities.serverVersion || "—")],
        ["Uptime", uptime],
        [
          "Approvals",
          h(
            "span",
            { class: "inline-facts" },
            mode === "auto" ? badge("auto", "warn") : badge("manual", "ok"),
            h(
              "span",
              { class: "muted small" },
              mode === "auto" ? "writes apply at once, without asking" : `every write waits for the host · refused after ${Math.round(((status.approval && status.approval.timeoutMs) || 30000) / 1000)} s`,
            ),
          ),
        ],
        ["Pending approvals", pendingEl],
        ["Read-only", status.readOnly ? badge("yes — every write is refused", "warn") : badge("no", "neutral")],
        ["Sandbox", capabilities.sandbox && capabilities.sandbox.enabled ? badge(capabilities.sandbox.backend, "ok") : badge("off", "neutral")],
        ["OpenCode proxy", capabilities.proxy && capabilities.proxy.opencode ? badge("configured", "ok") : badge("not configured", "neutral")],
        status.server ? ["Listening on", mono(`${status.server.host}:${status.server.port}`)] : null,
      ]),
    );

    const actor = (whoami && whoami.actor) || {};
    const you = card(
      "Your access",
      kv([
        ["Scope", scopeBadge(actor.scope)],
        ["Caller", actor.type === "host" ? "host" : "remote client"],
        ["Token", mono(`sha256 ${shortHash(actor.tokenHash, 12)}…`)],
        ["Host features", ctx.hostAccess ? badge("enabled", "host") : h("span", { class: "muted" }, "off — sign in with the host token to answer approvals")],
      ]),
    );

    const list = ctx.workspaces.length
      ? h(
          "ul",
          { class: "ws-list", "data-testid": "workspace-list" },
          ctx.workspaces.map((w) =>
            h(
              "li",
              { class: `ws-item${w.id === ctx.workspaceId ? " ws-item-current" : ""}` },
              h(
                "div",
                { class: "ws-main" },
                h("div", { class: "ws-name" }, w.name, w.id === status.activeWorkspaceId ? badge("default", "neutral") : null),
                mono(w.path || "", "ws-path"),
                h("div", { class: "ws-meta" }, mono(w.id, "muted"), w.baseUrl ? h("span", { class: "muted small" }, " · OpenCode ", mono(w.baseUrl)) : null),
              ),
              w.id === ctx.workspaceId
                ? h("span", { class: "badge badge-ok" }, "selected")
                : h("button", { class: "btn btn-small", type: "button", onclick: () => ctx.selectWorkspace(w.id) }, "Open"),
            ),
          ),
        )
      : empty("No workspaces", "Start the server with --workspace /path/to/folder to serve one.");

    const body = h("div", { class: "grid-2" }, server, you);
    mount(root, body, card("Workspaces", list));

    // Keep the uptime honest: refresh the facts quietly (errors shown, not thrown).
    const refresh = setInterval(async () => {
      try {
        const fresh = await api("GET", "/status");
        ctx.status = fresh;
      } catch (err) {
        mount(root, errorBox(err));
        clearInterval(refresh);
      }
    }, 30_000);
    ctx.onCleanup(() => clearInterval(refresh));
  },
};
