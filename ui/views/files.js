// Files: the workspace tree (through a file session), a text viewer, inbox upload with progress,
// artifacts to download, and the live change feed from catalog events.
// Workspace content is only ever inserted as text: a file named x.html stays a string here.
import { h, mount, api, card, badge, mono, formatBytes, formatTime, errorBox, loading, loadInto, empty, field, subscribe, authHeaders, toApiError, revealText } from "../lib.js";

function wsPath(ctx, rest = "") {
  return `/workspace/${encodeURIComponent(ctx.workspaceId)}${rest}`;
}

/** Builds a nested tree from sorted snapshot items. */
function buildTree(items) {
  const root = { name: "", path: "", kind: "dir", children: new Map() };
  for (const item of items) {
    const parts = item.path.split("/");
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i];
      const isLast = i === parts.length - 1;
      let child = node.children.get(name);
      if (!child) {
        child = { name, path: parts.slice(0, i + 1).join("/"), kind: isLast ? item.kind : "dir", children: new Map(), size: 0 };
        node.children.set(name, child);
      }
      if (isLast) Object.assign(child, { kind: item.kind, size: item.size, mtimeMs: item.mtimeMs });
      node = child;
    }
  }
  return root;
}

function sortedChildren(node) {
  return [...node.children.values()].sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === "dir" ? -1 : 1));
}

function treeNodes(node, onOpen, depth = 0) {
  return h(
    "ul",
    { class: depth ? "tree-children" : "tree", role: depth ? "group" : "tree" },
    sortedChildren(node).map((child) =>
      child.kind === "dir"
        ? h(
            "li",
            { class: "tree-dir" },
            h("details", { open: depth === 0 && node.children.size < 12 }, h("summary", { class: "tree-row" }, h("span", { class: "tree-icon", "aria-hidden": "true", text: "▸" }), h("span", { text: revealText(child.name) })), treeNodes(child, onOpen, depth + 1)),
          )
        : h(
            "li",
            { class: "tree-file" },
            h("button", { class: "tree-row tree-file-btn", type: "button", "data-path": child.path, onclick: () => onOpen(child.path) }, h("span", { class: "tree-name", text: revealText(child.name) }), h("span", { class: "muted small", text: formatBytes(child.size) })),
          ),
    ),
  );
}

/** Upload into the inbox with XMLHttpRequest so the upload progress can be shown. */
function uploadCard(ctx, onDone) {
  const input = h("input", { type: "file", class: "input", "data-testid": "upload-input", required: true });
  const target = h("input", { class: "input mono", placeholder: "optional: reports/q1.pdf", autocomplete: "off", "data-testid": "upload-path" });
  const progress = h("progress", { class: "progress", max: "100", value: "0", "data-testid": "upload-progress" });
  const progressText = h("span", { class: "small muted", "data-testid": "upload-progress-text" });
  const progressRow = h("div", { class: "progress-row", hidden: true }, progress, progressText);
  const result = h("div", { class: "write-slot", "data-testid": "upload-result" });
  const button = h("button", { class: "btn btn-primary", type: "submit", disabled: ctx.readOnly, "data-testid": "upload-submit" }, "Upload to inbox");

  function upload(e) {
    e.preventDefault();
    const file = input.files && input.files[0];
    if (!file) return;
    button.disabled = true;
    progressRow.hidden = false;
    progress.value = 0;
    progressText.textContent = `0% of ${formatBytes(file.size)}`;
    mount(result);
    const xhr = new XMLHttpRequest();
    const path = target.value.trim();
    xhr.open("POST", wsPath(ctx, "/inbox") + (path ? `?path=${encodeURIComponent(path)}` : ""));
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      const pct = Math.round((ev.loaded / ev.total) * 100);
      progress.value = pct;
      progressText.textContent = `${pct}% · ${formatBytes(ev.loaded)} of ${formatBytes(ev.total)}`;
    };
    xhr.upload.onload = () => {
      progress.value = 100;
      progressText.textContent = `100% · ${formatBytes(file.size)} sent`;
      mount(result, h("div", { class: "write-status write-pending", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), ctx.manual ? " Uploaded — waiting for host approval…" : " Uploaded — saving…"));
    };
    xhr.onload = async () => {
      button.disabled = ctx.readOnly;
      if (xhr.status >= 200 && xhr.status < 300) {
        let body = {};
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          /* shown as-is below */
        }
        mount(
          result,
          h(
            "div",
            { class: "write-status write-ok", role: "status", "data-testid": "upload-ok" },
            h("div", null, "✓ Saved ", mono(body.path || file.name), ` · ${formatBytes(body.bytes)}`),
            body.sha256 ? h("div", { class: "muted small" }, "sha256 ", mono(body.sha256)) : null,
          ),
        );
        input.value = "";
        onDone();
      } else {
        const err = await toApiError(new Response(xhr.responseText, { status: xhr.status }));
        mount(result, h("div", { class: "write-status write-error", role: "alert", "data-testid": "upload-error" }, h("code", { class: "error-code", text: err.code }), ` ${err.message}`));
      }
    };
    xhr.onerror = () => {
      button.disabled = ctx.readOnly;
      mount(result, h("div", { class: "write-status write-error", role: "alert" }, h("code", { class: "error-code" }, "network_error"), " The upload was interrupted."));
    };
    xhr.send((() => {
      const fd = new FormData();
      fd.append("file", file, file.name);
      return fd;
    })());
  }

  const maxBytes = ctx.capabilities.toolProviders && ctx.capabilities.toolProviders.files ? ctx.capabilities.toolProviders.files.maxBytes : undefined;
  return card(
    "Upload to the inbox",
    h("p", { class: "muted small" }, "Files land in ", mono(".opencode/openwork/inbox/"), maxBytes ? ` · up to ${formatBytes(maxBytes)}` : ""),
    h("form", { class: "form", onsubmit: upload, "data-testid": "upload-form" }, field("File", input), field("Save as (optional)", target, "Path inside the inbox; defaults to the file name."), h("div", { class: "form-actions" }, button), progressRow, result),
  );
}

const listLoader = (el, fetcher, draw) => loadInto(el, fetcher, draw, { keepContent: true });

async function download(ctx, artifact, statusEl) {
  try {
    const res = await api("GET", wsPath(ctx, `/artifacts/${encodeURIComponent(artifact.id)}`), { raw: true });
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: artifact.path.split("/").pop() || "artifact" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    mount(statusEl, errorBox(err));
  }
}

export default {
  id: "files",
  title: "Files",
  description: "Browse the workspace, upload into its inbox, and fetch what the agent produced.",
  render(root, ctx) {
    if (!ctx.workspace) return mount(root, empty("No workspace selected", "Pick a workspace in the header."));
    const treeEl = h("div", { class: "tree-wrap", "data-testid": "file-tree" }, loading("Opening a file session…"));
    const viewerEl = h("div", { "data-testid": "file-viewer" });
    const feedEl = h("ul", { class: "feed", "data-testid": "change-feed" });
    const feedState = h("div", { class: "live" });
    const inboxEl = h("div", { "data-testid": "inbox-list" });
    const artifactsEl = h("div", { "data-testid": "artifact-list" });
    const artifactStatus = h("div");
    let session;
    let stopEvents;
    let closed = false;
    let refreshTimer;

    async function openFile(path) {
      mount(viewerEl, card(path, loading()));
      try {
        const data = await api("GET", wsPath(ctx, `/files/content?path=${encodeURIComponent(path)}`));
        mount(
          viewerEl,
          card(
            null,
            h("div", { class: "viewer-head" }, mono(data.path, "viewer-path"), h("span", { class: "muted small" }, `${formatBytes(data.bytes)} · ${formatTime(data.updatedAt)}`), h("button", { class: "btn btn-small btn-ghost", type: "button", onclick: () => mount(viewerEl) }, "Close")),
            // textContent only: workspace files are data, never markup in this origin.
            h("pre", { class: "code code-tall viewer-body", "data-testid": "file-content", text: data.content }),
          ),
        );
      } catch (err) {
        mount(viewerEl, card(path, err.code === "unsupported_media" ? empty("Not a text file", "Binary files cannot be shown here.") : errorBox(err)));
      }
    }

    async function snapshot() {
      if (!session || closed) return;
      try {
        const snap = await api("GET", `/files/sessions/${encodeURIComponent(session.id)}/catalog/snapshot?limit=2000`);
        if (closed) return;
        const tree = buildTree(snap.items || []);
        mount(
          treeEl,
          tree.children.size ? treeNodes(tree, openFile) : empty("The workspace is empty"),
          snap.truncated ? h("p", { class: "muted small" }, `Showing the first ${snap.items.length} of ${snap.total} entries.`) : null,
        );
        return snap.cursor;
      } catch (err) {
        mount(treeEl, errorBox(err, snapshot));
      }
    }

    function addEvent(ev) {
      const kinds = { write: "ok", mkdir: "neutral", delete: "danger", rename: "warn", reset: "neutral" };
      feedEl.prepend(
        h("li", { class: "feed-item" }, badge(ev.type || "event", kinds[ev.type] || "neutral"), mono(ev.toPath ? `${ev.path} → ${ev.toPath}` : ev.path || ""), h("span", { class: "muted small" }, formatTime(ev.timestamp || Date.now()))),
      );
      while (feedEl.children.length > 30) feedEl.lastChild.remove();
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(snapshot, 600);
    }

    async function openSession() {
      try {
        const r = await api("POST", wsPath(ctx, "/files/sessions"), { json: { write: false } });
        session = r.session;
        if (closed) return api("DELETE", `/files/sessions/${encodeURIComponent(session.id)}`).catch(() => {});
        const cursor = await snapshot();
        stopEvents = subscribe(`/files/sessions/${encodeURIComponent(session.id)}/catalog/events?since=${cursor ?? 0}`, {
          onEvent: ({ event, data }) => {
            if (event === "reset") return snapshot();
            if (data && typeof data === "object") addEvent(data);
          },
          onState: (s, err) => {
            mount(feedState, h("span", { class: `live-dot live-${s}`, "aria-hidden": "true" }), s === "open" ? "Live" : s === "error" ? `Disconnected (${(err && err.code) || "error"})` : "Reconnecting…");
          },
        });
      } catch (err) {
        mount(treeEl, errorBox(err, openSession));
      }
    }

    const reloadInbox = listLoader(inboxEl, () => api("GET", wsPath(ctx, "/inbox")), (data) =>
      data.items && data.items.length
        ? h("ul", { class: "item-list item-list-compact" }, data.items.map((f) => h("li", { class: "item" }, h("div", { class: "item-main" }, mono(f.path, "item-title")), h("span", { class: "muted small" }, `${formatBytes(f.size)} · ${formatTime(f.updatedAt)}`))))
        : empty("The inbox is empty"),
    );
    const reloadArtifacts = listLoader(artifactsEl, () => api("GET", wsPath(ctx, "/artifacts")), (data) =>
      data.items && data.items.length
        ? h(
            "ul",
            { class: "item-list item-list-compact" },
            data.items.map((a) =>
              h("li", { class: "item" }, h("div", { class: "item-main" }, mono(a.path, "item-title"), h("span", { class: "muted small" }, `${formatBytes(a.size)} · ${formatTime(a.updatedAt)}`)), h("button", { class: "btn btn-small", type: "button", onclick: () => download(ctx, a, artifactStatus) }, "Download")),
            ),
          )
        : empty("No artifacts yet", "Results the agent writes to .opencode/openwork/outbox/ appear here."),
    );

    mount(
      root,
      h(
        "div",
        { class: "grid-2 grid-files" },
        h("div", { class: "col" }, card("Workspace", h("p", { class: "muted small" }, mono(ctx.workspace.path)), treeEl), viewerEl),
        h(
          "div",
          { class: "col" },
          uploadCard(ctx, () => reloadInbox()),
          card("Inbox", inboxEl),
          card("Artifacts", h("div", { class: "card-tools" }, h("button", { class: "btn btn-small btn-ghost", type: "button", onclick: () => reloadArtifacts() }, "Refresh")), artifactStatus, artifactsEl),
          card("Live changes", feedState, feedEl),
        ),
      ),
    );
    openSession();
    const renew = setInterval(() => session && api("POST", `/files/sessions/${encodeURIComponent(session.id)}/renew`, { json: {} }).catch(() => {}), 5 * 60_000);
    ctx.onCleanup(() => {
      closed = true;
      clearInterval(renew);
      clearTimeout(refreshTimer);
      if (stopEvents) stopEvents();
      if (session) api("DELETE", `/files/sessions/${encodeURIComponent(session.id)}`).catch(() => {});
    });
  },
};
