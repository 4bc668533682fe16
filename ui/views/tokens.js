// Tokens (host): list scoped tokens, mint one (the secret is shown once, with a copy button and a
// ready connect link), revoke.
import { h, mount, api, card, mono, scopeBadge, formatTime, errorBox, loading, empty, field, copyText, badge } from "../lib.js";

const EXPIRIES = [
  ["", "Never"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
  ["604800", "7 days"],
  ["2592000", "30 days"],
];

function secretPanel(minted, onDismiss) {
  const link = `${location.origin}/ui#token=${encodeURIComponent(minted.token)}`;
  const tokenEl = mono(minted.token, "secret-value");
  const linkEl = mono(link, "secret-value");
  const copied = h("span", { class: "muted small", role: "status" });
  const copyBtn = (text, el, what) =>
    h("button", { class: "btn btn-small", type: "button", onclick: async () => (copied.textContent = (await copyText(text, el)) ? `${what} copied.` : "Select and copy it manually.") }, `Copy ${what.toLowerCase()}`);
  return h(
    "section",
    { class: "card secret", "data-testid": "minted-secret", role: "region", "aria-label": "New token" },
    h("h2", { class: "card-title" }, "New ", scopeBadge(minted.scope), " token", minted.label ? ` “${minted.label}”` : ""),
    h("p", { class: "secret-warning" }, h("strong", null, "Copy it now: "), "this is the only time the secret is shown. The server keeps only its hash."),
    h("div", { class: "secret-row" }, tokenEl, copyBtn(minted.token, tokenEl, "Token")),
    h("div", { class: "section-label" }, "Connect link (opens this UI signed in)"),
    h("div", { class: "secret-row" }, linkEl, copyBtn(link, linkEl, "Link")),
    minted.expiresAt ? h("p", { class: "muted small" }, `Expires ${formatTime(minted.expiresAt)}`) : null,
    h("div", { class: "form-actions" }, copied, h("button", { class: "btn btn-ghost", type: "button", onclick: onDismiss }, "I have saved it")),
  );
}

export default {
  id: "tokens",
  title: "Tokens",
  description: "Scoped access for other devices and people. Revoking takes effect at once.",
  render(root, ctx) {
    if (!ctx.hostAccess) {
      return mount(root, card("Host access needed", h("p", { class: "muted" }, "Only the host (host token or an owner token) can manage tokens. Add the host token in ", h("a", { href: "#approvals" }, "Approvals"), ".")));
    }
    const listEl = h("div", { "data-testid": "token-list" });
    const secretEl = h("div");
    const status = h("div", { class: "write-slot" });

    async function reload() {
      if (!listEl.firstChild) mount(listEl, loading());
      try {
        const data = await api("GET", "/tokens", { host: true });
        const items = data.items || [];
        mount(
          listEl,
          items.length
            ? h(
                "table",
                { class: "table" },
                h("thead", null, h("tr", null, h("th", null, "Label"), h("th", null, "Scope"), h("th", null, "Created"), h("th", null, "Expires"), h("th", null, "Id"), h("th", null, h("span", { class: "sr-only" }, "Actions")))),
                h(
                  "tbody",
                  null,
                  items.map((t) => {
                    const actions = h("td", { class: "actions-cell" });
                    const confirmRevoke = () =>
                      mount(
                        actions,
                        h("span", { class: "small" }, "Revoke? "),
                        h("button", { class: "btn btn-small btn-danger", type: "button", "data-testid": "confirm-revoke", onclick: () => revoke(t) }, "Revoke"),
                        h("button", { class: "btn btn-small btn-ghost", type: "button", onclick: () => mount(actions, revokeBtn) }, "Cancel"),
                      );
                    const revokeBtn = h("button", { class: "btn btn-small btn-ghost-danger", type: "button", "data-token-id": t.id, "aria-label": `Revoke token ${t.label || t.id}`, disabled: ctx.readOnly, onclick: confirmRevoke }, "Revoke");
                    mount(actions, revokeBtn);
                    const expired = t.expiresAt && t.expiresAt < Date.now();
                    return h(
                      "tr",
                      { "data-token-row": t.id },
                      h("td", { "data-label": "Label" }, t.label ? t.label : h("span", { class: "muted" }, "—")),
                      h("td", { "data-label": "Scope" }, scopeBadge(t.scope)),
                      h("td", { "data-label": "Created", class: "nowrap" }, formatTime(t.createdAt)),
                      h("td", { "data-label": "Expires" }, t.expiresAt ? (expired ? badge("expired", "neutral") : formatTime(t.expiresAt)) : "never"),
                      h("td", { "data-label": "Id", class: "nowrap" }, mono(t.id.slice(0, 8), "muted")),
                      actions,
                    );
                  }),
                ),
              )
            : empty("No scoped tokens", "Mint one to give a phone, a teammate or a bot its own revocable access."),
        );
      } catch (err) {
        mount(listEl, errorBox(err, reload));
      }
    }

    async function revoke(t) {
      mount(status, h("div", { class: "write-status write-pending", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), " Revoking…"));
      try {
        await api("DELETE", `/tokens/${encodeURIComponent(t.id)}`, { host: true });
        mount(status, h("div", { class: "write-status write-ok", role: "status", "data-testid": "revoke-ok" }, `✓ Revoked ${t.label ? `“${t.label}”` : t.id}. It stopped working immediately.`));
      } catch (err) {
        mount(status, errorBox(err));
      }
      reload();
    }

    const scope = h("select", { class: "input select", "data-testid": "mint-scope" }, h("option", { value: "viewer" }, "viewer — read only"), h("option", { value: "collaborator", selected: true }, "collaborator — read, ask to write"), h("option", { value: "owner" }, "owner — also approve and manage tokens"));
    const label = h("input", { class: "input", maxlength: "200", placeholder: "e.g. Maria's phone", autocomplete: "off", "data-testid": "mint-label" });
    const expiry = h("select", { class: "input select", "data-testid": "mint-expiry" }, EXPIRIES.map(([v, l]) => h("option", { value: v }, l)));
    const mintBtn = h("button", { class: "btn btn-primary", type: "submit", disabled: ctx.readOnly, "data-testid": "mint-submit" }, "Mint token");
    const form = h(
      "form",
      {
        class: "form",
        "data-testid": "mint-form",
        onsubmit: async (e) => {
          e.preventDefault();
          mintBtn.disabled = true;
          const body = { scope: scope.value };
          if (label.value.trim()) body.label = label.value.trim();
          if (expiry.value) body.ttlSeconds = Number(expiry.value);
          try {
            const minted = await api("POST", "/tokens", { host: true, json: body });
            mount(secretEl, secretPanel(minted, () => mount(secretEl)));
            label.value = "";
            mount(status);
            reload();
          } catch (err) {
            mount(status, errorBox(err));
          } finally {
            mintBtn.disabled = ctx.readOnly;
          }
        },
      },
      field("Scope", scope),
      field("Label", label),
      field("Expires", expiry),
      h("div", { class: "form-actions" }, mintBtn),
    );

    mount(root, secretEl, h("div", { class: "grid-2 grid-wide-left" }, card("Scoped tokens", status, listEl), card("Mint a token", form)));
    reload();
  },
};
