// Chat: OpenCode sessions through the proxy (/w/:id/opencode/…): list/create sessions, send a
// prompt, and stream the reply from OpenCode's event stream. Replies are rendered as text only.
import { h, mount, api, card, mono, formatTime, errorBox, loading, empty, subscribe } from "../lib.js";

function oc(ctx, rest) {
  return `/w/${encodeURIComponent(ctx.workspaceId)}/opencode${rest}`;
}

/** Text of a message's parts (text and reasoning parts only; tools are summarised). */
function partText(part) {
  if (!part) return "";
  if (part.type === "text") return part.text || "";
  if (part.type === "tool") return `[tool ${part.tool || ""}${part.state && part.state.status ? ` · ${part.state.status}` : ""}]`;
  return "";
}

export default {
  id: "chat",
  title: "Chat",
  description: "Talk to the OpenCode agent of this workspace.",
  render(root, ctx) {
    if (!ctx.workspace) return mount(root, empty("No workspace selected", "Pick a workspace in the header."));
    if (!ctx.workspace.baseUrl && !(ctx.workspace.opencode && ctx.workspace.opencode.baseUrl)) {
      return mount(root, card(null, empty("OpenCode is not configured for this workspace", "Start the server with --opencode-base-url http://127.0.0.1:4096 (or set baseUrl on the workspace) to chat with the agent here.")));
    }
    const sessionsEl = h("div", { "data-testid": "chat-sessions" }, loading());
    const convoEl = h("div", { class: "chat-log", "data-testid": "chat-log", "aria-live": "polite" });
    const statusEl = h("div");
    let current;
    const parts = new Map(); // part id → element (streamed updates replace its text)
    const roles = new Map(); // message id → "user" | "assistant", from message.updated events

    async function loadSessions() {
      try {
        const list = await api("GET", oc(ctx, "/session"));
        const items = Array.isArray(list) ? list.slice().sort((a, b) => ((b.time && b.time.updated) || 0) - ((a.time && a.time.updated) || 0)) : [];
        mount(
          sessionsEl,
          items.length
            ? h(
                "ul",
                { class: "session-list" },
                items.map((s) =>
                  h("li", null, h("button", { class: `session-btn${current === s.id ? " session-current" : ""}`, type: "button", onclick: () => openSession(s) }, h("span", { class: "session-title", text: s.title || s.id }), h("span", { class: "muted small" }, formatTime(s.time && s.time.updated)))),
                ),
              )
            : empty("No sessions yet"),
        );
      } catch (err) {
        mount(sessionsEl, errorBox(err, loadSessions));
      }
    }

    function messageEl(role, text, id) {
      const body = h("div", { class: "msg-body", text });
      const el = h("div", { class: `msg msg-${role}`, "data-message": id || "" }, h("div", { class: "msg-role", text: role === "user" ? "You" : "Agent" }), body);
      convoEl.appendChild(el);
      convoEl.scrollTop = convoEl.scrollHeight;
      return body;
    }

    async function openSession(s) {
      current = s.id;
      parts.clear();
      loadSessions();
      mount(convoEl, loading());
      try {
        const messages = await api("GET", oc(ctx, `/session/${encodeURIComponent(s.id)}/message`));
        mount(convoEl);
        for (const m of Array.isArray(messages) ? messages : []) {
          const role = m.info && m.info.role === "user" ? "user" : "assistant";
          const body = messageEl(role, "", m.info && m.info.id);
          for (const p of m.parts || []) {
            const span = h("span", { text: partText(p) });
            parts.set(p.id, span);
            body.appendChild(span);
          }
        }
        if (!convoEl.children.length) mount(convoEl, empty("Say something to start"));
      } catch (err) {
        mount(convoEl, errorBox(err));
      }
    }

    async function newSession() {
      try {
        const s = await api("POST", oc(ctx, "/session"), { json: { title: `From the server UI ${new Date().toLocaleString()}` } });
        await openSession(s);
      } catch (err) {
        mount(statusEl, errorBox(err));
      }
    }

    const prompt = h("textarea", { class: "input textarea", rows: "3", placeholder: "Ask the agent…", "aria-label": "Prompt", disabled: ctx.scope === "viewer" });
    const send = h("button", { class: "btn btn-primary", type: "submit", disabled: ctx.scope === "viewer" }, "Send");
    prompt.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
    });
    const form = h(
      "form",
      {
        class: "chat-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const text = prompt.value.trim();
          if (!text) return;
          if (!current) await newSession();
          if (!current) return;
          if (convoEl.querySelector(".state")) mount(convoEl);
          messageEl("user", text);
          prompt.value = "";
          send.disabled = true;
          mount(statusEl, h("div", { class: "muted small", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), " The agent is working…"));
          try {
            const reply = await api("POST", oc(ctx, `/session/${encodeURIComponent(current)}/message`), { json: { parts: [{ type: "text", text }] } });
            // The final message also comes back in the answer: show any part the stream missed.
            const info = reply && reply.info;
            if (info && info.role === "assistant" && Array.isArray(reply.parts)) {
              for (const part of reply.parts) {
                if (parts.has(part.id)) {
                  parts.get(part.id).textContent = partText(part);
                  continue;
                }
                const body = convoEl.querySelector(`[data-message="${CSS.escape(info.id)}"] .msg-body`) || messageEl("assistant", "", info.id);
                const span = h("span", { text: partText(part) });
                parts.set(part.id, span);
                body.appendChild(span);
              }
            }
            mount(statusEl);
          } catch (err) {
            mount(statusEl, errorBox(err));
          } finally {
            send.disabled = false;
          }
        },
      },
      prompt,
      h("div", { class: "form-actions" }, h("span", { class: "muted small" }, "Ctrl+Enter to send"), send),
    );

    // The reply streams in through OpenCode's event stream (proxied, with our token).
    const liveEl = h("div", { class: "live", "data-testid": "chat-live" });
    const stop = subscribe(oc(ctx, "/event"), {
      onState: (st, err) => {
        const label = st === "open" ? "Live" : st === "error" ? `Event stream unavailable (${(err && err.code) || "error"})` : "Reconnecting…";
        mount(liveEl, h("span", { class: `live-dot live-${st}`, "aria-hidden": "true" }), label);
      },
      onEvent: ({ data }) => {
        if (!data || typeof data !== "object") return;
        const props = data.properties || {};
        if (data.type === "message.updated" && props.info && props.info.id) roles.set(props.info.id, props.info.role);
        if (data.type === "message.part.updated" && props.part && props.part.sessionID === current) {
          const part = props.part;
          if (roles.get(part.messageID) === "user") return; // already shown as typed
          let span = parts.get(part.id);
          if (!span) {
            const body = convoEl.querySelector(`[data-message="${CSS.escape(part.messageID)}"] .msg-body`) || messageEl("assistant", "", part.messageID);
            span = h("span");
            parts.set(part.id, span);
            body.appendChild(span);
          }
          span.textContent = partText(part);
          convoEl.scrollTop = convoEl.scrollHeight;
        }
      },
    });
    ctx.onCleanup(stop);

    mount(
      root,
      h(
        "div",
        { class: "grid-2 grid-chat" },
        card("Sessions", h("div", { class: "card-tools" }, h("button", { class: "btn btn-small", type: "button", onclick: newSession }, "New session")), sessionsEl),
        card(null, h("div", { class: "chat-head" }, liveEl, h("span", { class: "muted small" }, "through ", mono(oc(ctx, "/")))), convoEl, statusEl, form),
      ),
    );
    loadSessions();
  },
};
