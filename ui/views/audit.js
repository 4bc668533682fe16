// Audit: the latest entries of the workspace's hash-chained log, filterable by action.
import { h, mount, api, card, mono, badge, scopeBadge, formatTime, shortHash, errorBox, loading, empty, field, revealText } from "../lib.js";

function actionKind(action) {
  if (/denied|timeout|cancelled|revoke|remove|delete/.test(action)) return "danger";
  if (/approval|token/.test(action)) return "warn";
  return "neutral";
}

export default {
  id: "audit",
  title: "Audit log",
  short: "Audit",
  description: "What changed, when and by whom. The log is append-only and hash-chained.",
  render(root, ctx) {
    if (!ctx.workspace) return mount(root, empty("No workspace selected", "Pick a workspace in the header."));
    let entries = [];
    const listEl = h("div", { "data-testid": "audit-list" }, loading());
    const filter = h("select", { class: "input select", "data-testid": "audit-filter", onchange: draw }, h("option", { value: "" }, "All actions"));
    const search = h("input", { class: "input", type: "search", placeholder: "Search summary or target", oninput: draw });

    function draw() {
      const action = filter.value;
      const q = search.value.trim().toLowerCase();
      const shown = entries.filter((e) => (!action || e.action === action) && (!q || `${e.summary} ${e.target}`.toLowerCase().includes(q)));
      mount(
        listEl,
        shown.length
          ? h(
              "table",
              { class: "table table-audit" },
              h("thead", null, h("tr", null, h("th", null, "#"), h("th", null, "Time"), h("th", null, "Action"), h("th", null, "Summary"), h("th", null, "By"), h("th", null, "Hash"))),
              h(
                "tbody",
                null,
                shown.map((e) =>
                  h(
                    "tr",
                    { "data-action": e.action },
                    h("td", { class: "num muted", "data-label": "#" }, e.seq ?? "—"),
                    h("td", { class: "nowrap", "data-label": "Time" }, formatTime(e.timestamp)),
                    h("td", { "data-label": "Action" }, h("span", { class: `badge badge-${actionKind(e.action)} mono` }, e.action)),
                    h("td", { "data-label": "Summary" }, h("div", { text: revealText(e.summary) }), e.target ? mono(e.target, "muted small") : null),
                    h("td", { "data-label": "By" }, e.actor && e.actor.type === "system" ? badge("system", "neutral") : h("span", null, e.actor && e.actor.type === "host" ? "host " : "client ", e.actor ? scopeBadge(e.actor.scope) : null)),
                    h("td", { "data-label": "Hash" }, e.hash ? mono(shortHash(e.hash, 8), "muted") : h("span", { class: "muted" }, "—")),
                  ),
                ),
              ),
            )
          : entries.length
            ? empty("No entry matches the filter")
            : empty("The log is empty", "Every applied write, denial, token change and engine reload is recorded here."),
      );
    }

    async function reload() {
      mount(listEl, loading());
      try {
        const data = await api("GET", `/workspace/${encodeURIComponent(ctx.workspaceId)}/audit?limit=200`);
        entries = data.items || [];
        const actions = [...new Set(entries.map((e) => e.action))].sort();
        const current = filter.value;
        mount(filter, h("option", { value: "" }, `All actions (${entries.length})`), actions.map((a) => h("option", { value: a, selected: a === current }, a)));
        draw();
      } catch (err) {
        mount(listEl, errorBox(err, reload));
      }
    }

    mount(
      root,
      card(
        null,
        h("div", { class: "toolbar" }, field("Action", filter), field("Search", search), h("button", { class: "btn btn-small", type: "button", onclick: reload }, "Refresh")),
        listEl,
      ),
    );
    reload();
  },
};
