/**
 * The UI's Chat view in real Chromium, through the server's OpenCode proxy, against a small
 * stand-in OpenCode (node:http) that speaks the session/message/event shapes the view uses.
 * The reply is streamed as SSE part updates; the view must render them as text.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { startServer, type TestServer } from "./helpers/server.ts";
import type { Browser, Page } from "./helpers/cdp.ts";
import { closeBrowser, launchPage, withChromium } from "./helpers/browser.ts";

const OUT = join(process.cwd(), "test-output", "ui");

interface Msg {
  info: { id: string; role: "user" | "assistant"; sessionID: string };
  parts: Array<{ id: string; type: "text"; text: string; messageID: string; sessionID: string }>;
}

/** A stand-in OpenCode: sessions in memory, replies streamed on /event in three pieces. */
function fakeOpencode(): { server: Server; seen: Array<{ method: string; url: string; directory?: string }> } {
  const sessions: Array<{ id: string; title: string; time: { created: number; updated: number } }> = [];
  const messages = new Map<string, Msg[]>();
  const streams = new Set<ServerResponse>();
  const seen: Array<{ method: string; url: string; directory?: string }> = [];
  let n = 0;
  const emit = (type: string, properties: unknown) => {
    for (const res of streams) res.write(`data: ${JSON.stringify({ type, properties })}\n\n`);
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    seen.push({ method: req.method ?? "", url: url.pathname, directory: req.headers["x-opencode-directory"] as string | undefined });
    const body: Buffer[] = [];
    req.on("data", (c: Buffer) => body.push(c));
    req.on("end", () => {
      const send = (value: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      const m = /^\/session\/([^/]+)\/message$/.exec(url.pathname);
      if (req.method === "GET" && url.pathname === "/event") {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.write(`data: ${JSON.stringify({ type: "server.connected", properties: {} })}\n\n`);
        streams.add(res);
        res.on("close", () => streams.delete(res)); // req "close" fires once its (empty) body is read
        return;
      }
      if (req.method === "GET" && url.pathname === "/session") return send(sessions);
      if (req.method === "POST" && url.pathname === "/session") {
        const s = { id: `ses_${++n}`, title: JSON.parse(Buffer.concat(body).toString() || "{}").title ?? "New session", time: { created: Date.now(), updated: Date.now() } };
        sessions.push(s);
        messages.set(s.id, []);
        return send(s);
      }
      if (m && req.method === "GET") return send(messages.get(m[1]!) ?? []);
      if (m && req.method === "POST") {
        const sessionID = m[1]!;
        const text = JSON.parse(Buffer.concat(body).toString()).parts[0].text as string;
        const user: Msg = { info: { id: `msg_u${++n}`, role: "user", sessionID }, parts: [{ id: `prt_u${n}`, type: "text", text, messageID: `msg_u${n}`, sessionID }] };
        const replyId = `msg_a${++n}`;
        const partId = `prt_a${n}`;
        emit("message.updated", { info: user.info });
        emit("message.part.updated", { part: user.parts[0] });
        emit("message.updated", { info: { id: replyId, role: "assistant", sessionID } });
        // The reply grows in three updates, like a model streaming tokens.
        const pieces = ["The Q1 total", "The Q1 total is 42", "The Q1 total is 42. <b>Not bold</b>"];
        for (const piece of pieces) emit("message.part.updated", { part: { id: partId, type: "text", text: piece, messageID: replyId, sessionID } });
        const assistant: Msg = { info: { id: replyId, role: "assistant", sessionID }, parts: [{ id: partId, type: "text", text: pieces[2]!, messageID: replyId, sessionID }] };
        messages.get(sessionID)!.push(user, assistant);
        return send(assistant);
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "not found" }));
    });
  });
  server.on("close", () => {
    for (const r of streams) r.destroy();
  });
  return { server, seen };
}

await withChromium("UI chat in Chromium", (bin) => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let upstream: ReturnType<typeof fakeOpencode>;

  before(async () => {
    upstream = fakeOpencode();
    await new Promise<void>((r) => upstream.server.listen(0, "127.0.0.1", r));
    const port = (upstream.server.address() as { port: number }).port;
    s = await startServer({ argv: ["--opencode-base-url", `http://127.0.0.1:${port}`] });
    ({ browser, page } = await launchPage(bin));
  });
  after(async () => {
    await closeBrowser(browser, page);
    await s?.close();
    upstream?.server.closeAllConnections();
    await new Promise((r) => upstream?.server.close(r));
  });

  test("chat: create a session, send a prompt, see the streamed reply as text", async () => {
    await page.goto(`${s.url}/w/${s.workspaceId}/ui#token=${encodeURIComponent(s.clientToken)}&view=chat`);
    await page.waitFor(`document.querySelector("main")?.dataset.view === "chat"`, "chat view from the link's view=");
    assert.equal(await page.evaluate("location.pathname + location.hash"), `/w/${s.workspaceId}/ui#chat`);
    await page.waitFor(`document.querySelector('[data-testid="chat-sessions"]')?.innerText.includes("No sessions yet")`, "empty sessions");

    await page.type('textarea[aria-label="Prompt"]', "What is the Q1 total?");
    await page.click(".chat-form button[type=submit]");
    await page.waitFor(`document.querySelector('[data-testid="chat-log"]')?.innerText.includes("The Q1 total is 42. <b>Not bold</b>")`, "streamed reply");
    const log = await page.evaluate<{ user: number; assistant: number; bold: number; text: string }>(`(() => {
      const l = document.querySelector('[data-testid="chat-log"]');
      return { user: l.querySelectorAll(".msg-user").length, assistant: l.querySelectorAll(".msg-assistant").length, bold: l.querySelectorAll("b").length, text: l.innerText };
    })()`);
    assert.equal(log.user, 1, "the prompt once (not echoed back from the event stream)");
    assert.equal(log.assistant, 1, "one reply bubble, updated in place");
    assert.equal(log.bold, 0, "model output is text, never markup");
    assert.match(log.text, /What is the Q1 total\?/);
    await page.waitFor(`document.querySelector('[data-testid="chat-sessions"] .session-btn')`, "session listed");

    // Everything went through the proxy, with the directory set by the server.
    const posted = upstream.seen.find((r) => r.method === "POST" && /\/session\/[^/]+\/message$/.test(r.url));
    assert.ok(posted, "prompt reached OpenCode");
    assert.equal(posted.directory, s.workspace);
    assert.ok(upstream.seen.some((r) => r.url === "/event"), "event stream opened through the proxy");
    assert.deepEqual(page.foreignRequests(s.url), []);

    for (const w of [1280, 375]) {
      await page.setViewport(w, w < 600 ? 812 : 900);
      await page.screenshot(join(OUT, `chat-live-${w}.png`));
    }
  });

  test("without host access, Approvals and Tokens explain how to get it instead of failing", async () => {
    await page.setViewport(1280, 900);
    await page.click('.nav-link[data-view="approvals"]');
    await page.waitFor(`document.querySelector('[data-testid="host-token-input"]')`, "host token form");
    assert.match(await page.evaluate<string>(`document.querySelector("main").innerText`), /Host access needed/);
    await page.screenshot(join(OUT, "approvals-no-host-1280.png"));
    // A wrong host token is refused with the server's code; the right one turns host features on
    // without leaving the page.
    await page.type('[data-testid="host-token-input"]', "wrong-host-token");
    await page.press("Enter");
    await page.waitFor(`document.querySelector("main .error-code")?.textContent === "unauthorized"`, "host token refused");
    await page.type('[data-testid="host-token-input"]', s.hostToken);
    await page.press("Enter");
    await page.waitFor(`document.querySelector('[data-testid="approvals-live"]')?.innerText.includes("Live")`, "live approvals after host token");
    assert.equal(await page.evaluate("sessionStorage.getItem('openwork.hostToken')"), s.hostToken);
  });
});
