// Configuration: plugins, skills, MCP servers, commands and the raw opencode.json of a workspace.
// Every write goes through the approval gate, so it shows "waiting for host approval" until done.
import { h, mount, api, card, badge, mono, pretty, revealText, errorBox, loading, loadInto, empty, field, runWrite, tabs } from "../lib.js";

function wsPath(ctx, rest = "") {
  return `/workspace/${encodeURIComponent(ctx.workspaceId)}${rest}`;
}

/** Loads and renders a list; `draw(data)` returns nodes. Returns a reload function. */
const loader = (el, fetcher, draw) => loadInto(el, fetcher, draw);

function writeForm(ctx, { fields, submitLabel, onSubmit, testid }) {
  const status = h("div", { class: "write-slot" });
  const button = h("button", { class: "btn btn-primary", type: "submit", disabled: ctx.readOnly }, submitLabel);
  const form = h(
    "form",
    {
      class: "form",
      "data-testid": testid,
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        try {
          await onSubmit(status);
        } finally {
          button.disabled = ctx.readOnly;
        }
      },
    },
    fields,
    h("div", { class: "form-actions" }, button),
    status,
  );
  return form;
}

function removeButton(label, onClick, disabled) {
  return h("button", { class: "btn btn-small btn-ghost-danger", type: "button", disabled, "aria-label": label, onclick: onClick }, "Remove");
}

// ---------- plugins ----------

function pluginsTab(root, ctx) {
  const listEl = h("div");
  const status = h("div", { class: "write-slot" });
  const reload = loader(listEl, () => api("GET", wsPath(ctx, "/plugins")), (data) =>
    data.items && data.items.length
      ? h(
          "ul",
          { class: "item-list", "data-testid": "plugin-list" },
          data.items.map((p) =>
            h(
              "li",
              { class: "item" },
              h("div", { class: "item-main" }, mono(p.spec, "item-title"), h("div", { class: "item-meta" }, badge(p.source, "neutral"), p.path ? mono(p.path, "muted") : null)),
              p.source === "config"
                ? removeButton(`Remove plugin ${p.spec}`, () =>
                    runWrite(status, `Remove plugin ${p.spec}`, () => api("DELETE", wsPath(ctx, `/plugins/${encodeURIComponent(p.spec)}`)), ctx.manual).then((r) => r && reload()),
                  ctx.readOnly)
                : null,
            ),
          ),
        )
      : empty("No plugins", "Plugins extend the agent with code; adding one needs host approval."),
  );
  const spec = h("input", { class: "input mono", name: "spec", placeholder: "opencode-github or @scope/name@1.2.3", required: true, autocomplete: "off", "data-testid": "plugin-spec" });
  const form = writeForm(ctx, {
    testid: "plugin-form",
    submitLabel: "Add plugin",
    fields: [field("Plugin spec", spec, "An npm package name, a file: path or a git URL. Plugins run code on the host.")],
    onSubmit: async (slot) => {
      const value = spec.value.trim();
      const r = await runWrite(slot, `Add plugin ${value}`, () => api("POST", wsPath(ctx, "/plugins"), { json: { spec: value } }), ctx.manual);
      if (r) {
        spec.value = "";
        reload();
      }
    },
  });
  mount(root, h("div", { class: "grid-2 grid-wide-left" }, card("Plugins", status, listEl), card("Add a plugin", form)));
}

// ---------- skills ----------

function skillsTab(root, ctx) {
  const listEl = h("div");
  const viewer = h("div");
  const status = h("div", { class: "write-slot" });
  const reload = loader(listEl, () => api("GET", wsPath(ctx, "/skills")), (data) => [
    data.items && data.items.length
      ? h(
          "ul",
          { class: "item-list", "data-testid": "skill-list" },
          data.items.map((s) =>
            h(
              "li",
              { class: "item" },
              h(
                "div",
                { class: "item-main" },
                h("div", { class: "item-title" }, s.name, " ", badge(s.scope, "neutral")),
                h("div", { class: "item-desc", text: s.description }),
                s.trigger ? h("div", { class: "muted small" }, "When: ", s.trigger) : null,
                mono(s.path, "muted small"),
              ),
              h(
                "div",
                { class: "item-actions" },
                h("button", { class: "btn btn-small", type: "button", onclick: () => openSkill(s.name) }, "View"),
                s.scope === "project"
                  ? removeButton(`Delete skill ${s.name}`, () =>
                      runWrite(status, `Delete skill ${s.name}`, () => api("DELETE", wsPath(ctx, `/skills/${encodeURIComponent(s.name)}`)), ctx.manual).then((r) => r && reload()),
                    ctx.readOnly)
                  : null,
              ),
            ),
          ),
        )
      : empty("No skills", "Skills live in .opencode/skills/<name>/SKILL.md."),
    data.skipped && data.skipped.length
      ? h("div", { class: "notice notice-warn" }, h("strong", null, `${data.skipped.length} skill file(s) skipped: `), data.skipped.map((s) => h("div", null, mono(s.path), " — ", s.reason)))
      : null,
  ]);
  async function openSkill(name) {
    mount(viewer, loading());
    try {
      const data = await api("GET", wsPath(ctx, `/skills/${encodeURIComponent(name)}`));
      mount(viewer, card(`SKILL.md — ${name}`, h("pre", { class: "code code-tall", text: data.content })));
    } catch (err) {
      mount(viewer, errorBox(err));
    }
  }
  const name = h("input", { class: "input mono", placeholder: "my-skill", pattern: "[a-z0-9]+(-[a-z0-9]+)*", required: true, autocomplete: "off" });
  const description = h("input", { class: "input", placeholder: "What the skill does", maxlength: "1024", required: true });
  const content = h("textarea", { class: "input textarea mono", rows: "6", placeholder: "# Instructions for the agent…", required: true });
  const form = writeForm(ctx, {
    submitLabel: "Save skill",
    testid: "skill-form",
    fields: [field("Name", name, "Lowercase letters, digits and dashes."), field("Description", description), field("Content (markdown)", content)],
    onSubmit: async (slot) => {
      const r = await runWrite(slot, `Save skill ${name.value}`, () => api("POST", wsPath(ctx, "/skills"), { json: { name: name.value.trim(), description: description.value.trim(), content: content.value } }), ctx.manual);
      if (r) {
        name.value = description.value = content.value = "";
        reload();
      }
    },
  });
  mount(root, h("div", { class: "grid-2 grid-wide-left" }, card("Skills", status, listEl), card("Add or update a skill", form)), viewer);
}

// ---------- MCP ----------

/** Splits a command line on whitespace, honouring simple double quotes. */
function splitCommand(line) {
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m;
  while ((m = re.exec(line))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  return out;
}

function mcpTab(root, ctx) {
  const listEl = h("div");
  const status = h("div", { class: "write-slot" });
  const reload = loader(listEl, () => api("GET", wsPath(ctx, "/mcp")), (data) =>
    data.items && data.items.length
      ? h(
          "ul",
          { class: "item-list", "data-testid": "mcp-list" },
          data.items.map((m) =>
            h(
              "li",
              { class: "item" },
              h(
                "div",
                { class: "item-main" },
                h("div", { class: "item-title" }, m.name, " ", badge((m.config && m.config.type) || "?", m.config && m.config.type === "local" ? "warn" : "neutral"), " ", badge(m.source, "neutral"), m.disabledByTools ? badge("disabled by tools", "neutral") : null),
                m.config && Array.isArray(m.config.command) ? mono(m.config.command.join(" ")) : m.config && m.config.url ? mono(m.config.url) : null,
              ),
              m.source === "config.project"
                ? removeButton(`Remove MCP server ${m.name}`, () =>
                    runWrite(status, `Remove MCP server ${m.name}`, () => api("DELETE", wsPath(ctx, `/mcp/${encodeURIComponent(m.name)}`)), ctx.manual).then((r) => r && reload()),
                  ctx.readOnly)
                : null,
            ),
          ),
        )
      : empty("No MCP servers", "Add a local (command) or remote (URL) MCP server."),
  );
  const name = h("input", { class: "input mono", placeholder: "github", required: true, autocomplete: "off" });
  const type = h("select", { class: "input select" }, h("option", { value: "local" }, "local — runs a command on this machine"), h("option", { value: "remote" }, "remote — connects to a URL"));
  const target = h("input", { class: "input mono", placeholder: "npx -y @modelcontextprotocol/server-github", required: true, autocomplete: "off" });
  const targetField = field("Command line", target);
  type.addEventListener("change", () => {
    targetField.querySelector("label").textContent = type.value === "local" ? "Command line" : "URL";
    target.placeholder = type.value === "local" ? "npx -y @modelcontextprotocol/server-github" : "https://mcp.example.com/mcp";
  });
  const form = writeForm(ctx, {
    submitLabel: "Add MCP server",
    testid: "mcp-form",
    fields: [field("Name", name), field("Type", type), targetField],
    onSubmit: async (slot) => {
      const config = type.value === "local" ? { type: "local", command: splitCommand(target.value) } : { type: "remote", url: target.value.trim() };
      const r = await runWrite(slot, `Add MCP server ${name.value}`, () => api("POST", wsPath(ctx, "/mcp"), { json: { name: name.value.trim(), config } }), ctx.manual);
      if (r) {
        name.value = target.value = "";
        reload();
      }
    },
  });
  mount(root, h("div", { class: "grid-2 grid-wide-left" }, card("MCP servers", status, listEl), card("Add an MCP server", form)));
}

// ---------- commands ----------

function commandsTab(root, ctx) {
  const listEl = h("div");
  const status = h("div", { class: "write-slot" });
  const reload = loader(listEl, () => api("GET", wsPath(ctx, "/commands")), (data) =>
    data.items && data.items.length
      ? h(
          "ul",
          { class: "item-list", "data-testid": "command-list" },
          data.items.map((c) =>
            h(
              "li",
              { class: "item" },
              h(
                "div",
                { class: "item-main" },
                h("div", { class: "item-title" }, mono(`/${c.name}`), " ", c.agent ? badge(`agent ${c.agent}`, "neutral") : null, c.model ? badge(c.model, "neutral") : null),
                c.description ? h("div", { class: "item-desc", text: c.description }) : null,
                h("pre", { class: "code code-short", text: c.template }),
              ),
              c.scope === "workspace"
                ? removeButton(`Delete command ${c.name}`, () =>
                    runWrite(status, `Delete command /${c.name}`, () => api("DELETE", wsPath(ctx, `/commands/${encodeURIComponent(c.name)}`)), ctx.manual).then((r) => r && reload()),
                  ctx.readOnly)
                : null,
            ),
          ),
        )
      : empty("No commands", "Commands are prompt templates the agent runs as /name."),
  );
  const name = h("input", { class: "input mono", placeholder: "review", required: true, autocomplete: "off" });
  const description = h("input", { class: "input", placeholder: "Review the current diff" });
  const template = h("textarea", { class: "input textarea mono", rows: "5", placeholder: "Review the changes in $ARGUMENTS…", required: true });
  const form = writeForm(ctx, {
    submitLabel: "Save command",
    testid: "command-form",
    fields: [field("Name", name), field("Description (optional)", description), field("Template", template)],
    onSubmit: async (slot) => {
      const body = { name: name.value.trim(), template: template.value };
      if (description.value.trim()) body.description = description.value.trim();
      const r = await runWrite(slot, `Save command /${body.name}`, () => api("POST", wsPath(ctx, "/commands"), { json: body }), ctx.manual);
      if (r) {
        name.value = description.value = template.value = "";
        reload();
      }
    },
  });
  mount(root, h("div", { class: "grid-2 grid-wide-left" }, card("Commands", status, listEl), card("Add or update a command", form)));
}

// ---------- raw config ----------

function rawTab(root, ctx) {
  const el = h("div");
  loader(el, () => api("GET", wsPath(ctx, "/config")), (data) => [
    card("opencode.json", h("pre", { class: "code code-tall", "data-testid": "raw-opencode", text: revealText(pretty(data.opencode || {})) })),
    card(".opencode/openwork.json", h("pre", { class: "code", text: revealText(pretty(data.openwork || {})) })),
    data.updatedAt ? h("p", { class: "muted small" }, `Last change through this server: ${new Date(data.updatedAt).toLocaleString()}`) : null,
  ]);
  mount(root, el);
}

const TABS = [
  { id: "plugins", label: "Plugins", render: pluginsTab },
  { id: "skills", label: "Skills", render: skillsTab },
  { id: "mcp", label: "MCP servers", render: mcpTab },
  { id: "commands", label: "Commands", render: commandsTab },
  { id: "raw", label: "opencode.json", render: rawTab },
];

export default {
  id: "config",
  title: "Configuration",
  short: "Config",
  description: "Plugins, skills, MCP servers and commands of the selected workspace.",
  render(root, ctx) {
    if (!ctx.workspace) return mount(root, empty("No workspace selected", "Pick a workspace in the header."));
    const panel = h("div", { class: "tab-panel", role: "tabpanel" });
    const t = tabs(TABS, (id) => {
      const tab = TABS.find((x) => x.id === id);
      tab.render(panel, ctx);
    });
    const notice = ctx.readOnly
      ? h("div", { class: "notice notice-warn" }, "This server is read-only: changes are disabled.")
      : ctx.manual
        ? h("div", { class: "notice" }, "Changes wait for the host to approve them in ", h("a", { href: "#approvals" }, "Approvals"), ".")
        : null;
    mount(root, notice, t.el, panel);
    t.select("plugins");
  },
};
