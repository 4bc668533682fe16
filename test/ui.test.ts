/**
 * The built-in UI in a real headless Chromium, driven over --remote-debugging-pipe by our own
 * CDP client. A real server, real clicks; assertions on the DOM and on disk; screenshots of every
 * view at 1280 px and 375 px into test-output/ui/.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startServer, type TestServer, type TestResponse } from "./helpers/server.ts";
import type { Browser, Page } from "./helpers/cdp.ts";
import { closeBrowser, launchPage, withChromium } from "./helpers/browser.ts";
import { waitFor } from "./helpers/wait.ts";

const OUT = join(process.cwd(), "test-output", "ui");
const WIDTHS = [1280, 375] as const;

const PLUGIN_PATH = "/workspace/:id/plugins";

await withChromium("built-in UI in Chromium", (bin) => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  const shots: string[] = [];

  /** Shows a view (by the nav link, like a person) and waits until it has finished loading. */
  async function show(view: string): Promise<void> {
    await page.click(`.nav-link[data-view="${view}"]`);
    await page.waitFor(`document.querySelector("main")?.dataset.view === ${JSON.stringify(view)}`, `view ${view}`);
    await page.waitFor(`!document.querySelector("main .state-loading")`, `${view} loaded`, 10_000);
  }

  /** Screenshots the current view at every width (the page is re-laid out, not reloaded). */
  async function shootAll(name: string): Promise<void> {
    for (const w of WIDTHS) {
      await page.setViewport(w, w < 600 ? 812 : 900);
      await page.waitFor(`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, "layout");
      shots.push(await page.screenshot(join(OUT, `${name}-${w}.png`)));
      // Responsive: nothing forces the page wider than the screen.
      const scrollWidth = await page.evaluate<number>("document.documentElement.scrollWidth");
      assert.ok(scrollWidth <= w, `${name} at ${w}px overflows horizontally (${scrollWidth}px)`);
    }
    await page.setViewport(1280, 900);
  }

  function text(selector: string): Promise<string> {
    return page.evaluate<string>(`(document.querySelector(${JSON.stringify(selector)})?.innerText ?? "")`);
  }

  before(async () => {
    await mkdir(OUT, { recursive: true });
    s = await startServer({
      approval: "manual",
      approvalTimeoutMs: 120_000,
      files: {
        "README.md": "# Finance workspace\n<script>window.__pwned = true</script>\n",
        "notes/q1.md": "Q1 numbers\n",
        "src/report.ts": "export const total = 42;\n",
        "x.html": "<img src=x onerror=\"window.__pwned=true\"><script>window.__pwned=true</script>\n",
        ".opencode/openwork/outbox/summary.md": "# Q1 summary\nTotal: 42\n",
      },
    });
    ({ browser, page } = await launchPage(bin));
  });

  after(async () => {
    await closeBrowser(browser, page);
    await s?.close();
  });

  test("a pasted token signs in; the #token link is stored and removed from the address bar", async () => {
    await page.goto(`${s.url}/ui`);
    await page.waitFor(`document.querySelector('[data-testid="login-token"]')`, "login form");
    await shootAll("login");
    await page.type('[data-testid="login-token"]', "not-a-token");
    await page.press("Enter");
    // A wrong token shows the server's error code on the form.
    await page.waitFor(`document.querySelector(".error-code")?.textContent === "unauthorized"`, "unauthorized error");

    const entries = await page.evaluate<number>("history.length");
    await page.goto(`${s.url}/ui#token=${encodeURIComponent(s.clientToken)}&hostToken=${encodeURIComponent(s.hostToken)}`);
    await page.waitFor(`document.querySelector('[data-testid="workspace-list"]')`, "overview");
    const href = await page.evaluate<string>("location.href");
    assert.equal(href, `${s.url}/ui`, "the fragment with the secret is gone from the address bar");
    assert.equal(await page.evaluate("sessionStorage.getItem('openwork.token')"), s.clientToken);
    // The fragment navigation made one entry, and replaceState rewrote it without the secret.
    assert.equal(await page.evaluate("history.length"), entries + 1);
  });

  test("overview shows the server, the caller and the workspace", async () => {
    const body = await text("main");
    assert.match(body, /Overview/);
    assert.match(body, new RegExp(s.context.version.replace(/\./g, "\\.")));
    assert.match(body, /manual\s+every write waits for the host · refused after 120 s/);
    assert.match(body, /collaborator/);
    assert.ok(body.includes(s.workspace), "workspace path shown");
    assert.ok(body.includes(s.workspaceId), "workspace id shown");
    await shootAll("overview");
  });

  test("approvals: a plugin add from another client appears live; Allow applies it, Deny writes nothing", async () => {
    await show("approvals");
    await page.waitFor(`document.querySelector('[data-testid="approvals-empty"]')`, "empty approvals state");
    await page.waitFor(`document.querySelector('[data-testid="approvals-live"]')?.innerText.includes("Live")`, "live feed connected");
    await shootAll("approvals-empty");

    // Another client asks for a write; the request is held open until the host decides.
    const pluginPath = PLUGIN_PATH.replace(":id", s.workspaceId);
    const pending: Promise<TestResponse> = s.request("POST", pluginPath, { json: { spec: "opencode-github@1.4.0" }, headers: { "x-openwork-client-id": "maria-phone" } });
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 1`, "approval card appears without reload", 15_000);

    const card = await page.evaluate<{ text: string; risk: string; paths: string[]; countdown: string; change: string }>(`(() => {
      const c = document.querySelector('[data-testid="approval"]');
      return { text: c.innerText, risk: c.querySelector('.badge-risk')?.innerText ?? "",
               paths: [...c.querySelectorAll('[data-testid="approval-paths"] li')].map((li) => li.innerText),
               countdown: c.querySelector('[data-testid="approval-countdown"]').innerText,
               change: c.querySelector('[data-testid="approval-change"]').innerText };
    })()`);
    assert.match(card.text, /plugins\.add/);
    assert.match(card.text, /Add plugin opencode-github@1\.4\.0/);
    assert.match(card.change, /opencode-github@1\.4\.0/, "the exact spec is shown");
    assert.match(card.risk, /executes code/i, "risk badge");
    assert.ok(card.paths.some((p) => p.startsWith(s.workspace)), `paths listed: ${card.paths}`);
    assert.match(card.countdown, /^\d+:\d\d$/);
    assert.match(card.text, /maria-phone/, "the actor's client id");
    assert.match(card.text, /collaborator/, "the actor's scope");
    assert.equal(await text('[data-testid="nav-approvals-count"]'), "1", "nav badge counts it");
    await shootAll("approvals");
    // The same card in dark mode (prefers-color-scheme), for contrast review.
    await page.send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: "dark" }] });
    shots.push(await page.screenshot(join(OUT, "approvals-dark-1280.png")));
    await page.send("Emulation.setEmulatedMedia", { features: [] });

    await page.click('[data-testid="approval"] button[data-action="allow"]');
    const res = await pending;
    assert.equal(res.status, 200, res.text);
    const written = await readFile(join(s.workspace, "opencode.jsonc"), "utf8");
    assert.match(written, /opencode-github@1\.4\.0/);
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 0`, "card removed once resolved");
    await page.waitFor(`document.querySelector('[data-testid="approvals-recent"]')?.innerText.includes("allowed")`, "decided list");

    // Deny: the held write gets 403 write_denied and nothing changes on disk.
    const before = await readFile(join(s.workspace, "opencode.jsonc"), "utf8");
    const denied = s.request("POST", pluginPath, { json: { spec: "evil-plugin" } });
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 1`, "second request appears");
    await page.click('[data-testid="approval"] button[data-action="deny"]');
    const dres = await denied;
    assert.equal(dres.status, 403);
    assert.equal(dres.json.code, "write_denied");
    assert.equal(await readFile(join(s.workspace, "opencode.jsonc"), "utf8"), before);
    await page.waitFor(`document.querySelector('[data-testid="approvals-recent"]')?.innerText.includes("denied")`, "denied in decided list");

    // Two different requests side by side (the README screenshot): a local MCP server (runs a
    // command: risky, shown as a command line) and a skill (plain content).
    const mcp = s.request("POST", `/workspace/${s.workspaceId}/mcp`, {
      json: { name: "github", config: { type: "local", command: ["npx", "-y", "@modelcontextprotocol/server-github"], environment: { GITHUB_TOKEN: "{env:GITHUB_TOKEN}" } } },
      headers: { "x-openwork-client-id": "maria-phone" },
    });
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 1`, "mcp request");
    const skill = s.request("POST", `/workspace/${s.workspaceId}/skills`, {
      json: { name: "weekly-report", description: "Summarise the week's finance notes", content: "# Weekly report\n\nCollect the numbers from notes/ and write outbox/weekly.md.\n" },
      headers: { "x-openwork-client-id": "laptop-bob" },
    });
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 2`, "skill request");
    const mcpCard = await page.evaluate<string>(`document.querySelector('[data-testid="approval"]').innerText`);
    assert.match(mcpCard, /npx -y @modelcontextprotocol\/server-github/, "MCP command line shown");
    await page.evaluate("scrollTo(0, 0)");
    shots.push(await page.screenshot(join(OUT, "approvals-readme.png")));
    await page.click('[data-testid="approval"] button[data-action="deny"]');
    await page.waitFor(`document.querySelectorAll('[data-testid="approval"]').length === 1`, "first denied");
    await page.click('[data-testid="approval"] button[data-action="deny"]');
    assert.equal((await mcp).json.code, "write_denied");
    assert.equal((await skill).json.code, "write_denied");
  });

  test("files: upload into the inbox with progress, approved by the host, shown with its result", async () => {
    await show("files");
    await page.waitFor(`document.querySelector('[data-testid="upload-input"]')`, "upload form");
    const payload = randomBytes(3 * 1024 * 1024);
    const local = join(OUT, "upload-sample.bin");
    await writeFile(local, payload);
    await page.setFiles('[data-testid="upload-input"]', [local]);
    await page.type('[data-testid="upload-path"]', "reports/sample.bin");
    await page.click('[data-testid="upload-submit"]');

    // The upload completes on the wire, then waits for the host: allow it from another client.
    const approval = await waitFor(async () => {
      const r = await s.request("GET", "/approvals", { token: null, host: true });
      return r.json?.items?.find((i: { action: string }) => i.action === "workspace.inbox.upload");
    }, { timeoutMs: 20_000, what: "inbox upload approval" });
    await page.waitFor(`document.querySelector('[data-testid="upload-result"]')?.innerText.includes("waiting for host approval")`, "waiting state");
    assert.equal(await page.evaluate(`document.querySelector('[data-testid="upload-progress"]').value`), 100);
    assert.match(await text('[data-testid="upload-progress-text"]'), /100%/);
    await shootAll("files-upload-waiting");
    const reply = await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    assert.equal(reply.status, 200);

    await page.waitFor(`document.querySelector('[data-testid="upload-ok"]')`, "upload result");
    const result = await text('[data-testid="upload-ok"]');
    assert.match(result, /reports\/sample\.bin/);
    assert.match(result, /3\.0 MB/);
    const onDisk = await readFile(join(s.workspace, ".opencode/openwork/inbox/reports/sample.bin"));
    assert.ok(onDisk.equals(payload), "uploaded bytes identical");
    await page.waitFor(`document.querySelector('[data-testid="inbox-list"]')?.innerText.includes("reports/sample.bin")`, "inbox list refreshed");
  });

  test("files: the tree opens a text file as text, never as HTML", async () => {
    await page.waitFor(`document.querySelector('[data-testid="file-tree"] button[data-path="x.html"]')`, "tree");
    await page.click('[data-testid="file-tree"] button[data-path="x.html"]');
    await page.waitFor(`document.querySelector('[data-testid="file-content"]')`, "file viewer");
    assert.match(await text('[data-testid="file-content"]'), /<script>window.__pwned=true<\/script>/);
    assert.equal(await page.evaluate("window.__pwned === true"), false, "no script from the workspace ran");
    assert.equal(await page.evaluate(`document.querySelector('[data-testid="file-content"]').children.length`), 0);
    await shootAll("files");
  });

  test("files: artifacts are listed and download with the token (blob, no token in any URL)", async () => {
    const downloads = join(OUT, "downloads");
    await rm(downloads, { recursive: true, force: true });
    await mkdir(downloads, { recursive: true });
    await browser.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
    await page.waitFor(`document.querySelector('[data-testid="artifact-list"]')?.innerText.includes("summary.md")`, "artifact listed");
    await page.click('[data-testid="artifact-list"] button');
    const file = join(downloads, "summary.md");
    await waitFor(async () => (await readFile(file, "utf8").catch(() => "")) === "# Q1 summary\nTotal: 42\n", { timeoutMs: 15_000, what: "downloaded artifact" });
    assert.ok(!page.requests.some((r) => r.url.includes(s.clientToken)), "the token never appears in a URL");
  });

  test("tokens: mint (secret shown once with a connect link), then revoke", async () => {
    await show("tokens");
    await page.waitFor(`document.querySelector('[data-testid="mint-form"]')`, "mint form");
    await page.evaluate(`(() => { const s = document.querySelector('[data-testid="mint-scope"]'); s.value = "viewer"; s.dispatchEvent(new Event("change")); })()`);
    await page.type('[data-testid="mint-label"]', "Maria's phone");
    await page.click('[data-testid="mint-submit"]');
    await page.waitFor(`document.querySelector('[data-testid="minted-secret"]')`, "minted secret");
    const panel = await text('[data-testid="minted-secret"]');
    const token = /owt_[0-9a-f]{32}/.exec(panel)?.[0];
    assert.ok(token, `token shown: ${panel}`);
    assert.ok(panel.includes(`${s.url}/ui#token=${token}`), "connect link");
    assert.match(panel, /only time the secret is shown/);
    const ok = await s.request("GET", "/whoami", { token });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.actor.scope, "viewer");
    await page.waitFor(`document.querySelector('[data-testid="token-list"]')?.innerText.includes("Maria's phone")`, "token listed");
    await shootAll("tokens");

    const list = await s.request("GET", "/tokens", { token: null, host: true });
    const id = list.json.items.find((t: { label?: string }) => t.label === "Maria's phone").id;
    await page.click(`button[data-token-id="${id}"]`);
    await page.click('[data-testid="confirm-revoke"]');
    await page.waitFor(`document.querySelector('[data-testid="revoke-ok"]')`, "revoked");
    const gone = await s.request("GET", "/whoami", { token });
    assert.equal(gone.status, 401, "revoked token stops working at once");
    await page.waitFor(`!document.querySelector('[data-testid="token-list"]')?.innerText.includes("Maria's phone")`, "token removed from list");
  });

  test("configuration, audit and chat views render (screenshots)", async () => {
    await show("config");
    await page.waitFor(`document.querySelector('[data-testid="plugin-list"]')?.innerText.includes("opencode-github@1.4.0")`, "allowed plugin listed");
    await shootAll("config");

    // A write from the form waits for the host, visibly, then completes.
    await page.click('[data-tab="commands"]');
    await page.waitFor(`document.querySelector('[data-testid="command-form"]')`, "command form");
    await page.type('[data-testid="command-form"] input', "review");
    await page.type('[data-testid="command-form"] textarea', "Review the changes in $ARGUMENTS");
    await page.click('[data-testid="command-form"] button[type=submit]');
    await page.waitFor(`document.querySelector('[data-testid="command-form"] .write-pending')?.innerText.includes("waiting for host approval")`, "waiting for host approval");
    const approval = await waitFor(async () => {
      const r = await s.request("GET", "/approvals", { token: null, host: true });
      return r.json?.items?.find((i: { action: string }) => i.action === "commands.upsert");
    }, { what: "commands.upsert approval" });
    await shootAll("config-waiting");
    await s.request("POST", `/approvals/${approval.id}`, { token: null, host: true, json: { reply: "allow" } });
    await page.waitFor(`document.querySelector('[data-testid="command-form"] .write-ok')`, "write done");
    await page.waitFor(`document.querySelector('[data-testid="command-list"]')?.innerText.includes("/review")`, "command listed");
    assert.match(await readFile(join(s.workspace, ".opencode/commands/review.md"), "utf8"), /Review the changes/);

    await show("audit");
    await page.waitFor(`document.querySelectorAll('[data-testid="audit-list"] tbody tr').length >= 5`, "audit entries");
    await page.evaluate(`(() => { const f = document.querySelector('[data-testid="audit-filter"]'); f.value = "approval.denied"; f.dispatchEvent(new Event("change")); })()`);
    const actions = await page.evaluate<string[]>(`[...document.querySelectorAll('[data-testid="audit-list"] tbody tr')].map((tr) => tr.dataset.action)`);
    assert.ok(actions.length >= 3, `denied entries: ${actions}`);
    assert.ok(actions.every((a) => a === "approval.denied"), `filtered: ${actions}`);
    await page.evaluate(`(() => { const f = document.querySelector('[data-testid="audit-filter"]'); f.value = ""; f.dispatchEvent(new Event("change")); })()`);
    await shootAll("audit");
    await show("chat");
    assert.match(await text("main"), /OpenCode is not configured/);
    await shootAll("chat");
    await show("overview");
  });

  test("keyboard: the views are reachable with Tab and Enter", async () => {
    await page.evaluate(`document.activeElement?.blur()`);
    // Tab until the Approvals nav link has focus, then Enter follows it.
    await waitFor(async () => {
      await page.press("Tab");
      return page.evaluate<boolean>(`document.activeElement?.dataset?.view === "approvals"`);
    }, { timeoutMs: 10_000, what: "focus on the Approvals link" });
    await page.press("Enter");
    await page.waitFor(`document.querySelector("main")?.dataset.view === "approvals"`, "approvals via keyboard");
  });

  test("the page made no request to another origin and broke no CSP rule", async () => {
    const foreign = page.foreignRequests(s.url);
    assert.deepEqual(foreign, [], `requests to other origins: ${foreign.map((r) => r.url).join(", ")}`);
    assert.ok(page.requests.some((r) => r.url.endsWith("/ui/assets/app.js")), "the request log works");
    const csp = page.consoleErrors.filter((e) => /Content Security Policy|Refused to/i.test(e));
    assert.deepEqual(csp, []);
    const exceptions = page.consoleErrors.filter((e) => e.startsWith("exception"));
    assert.deepEqual(exceptions, []);
    assert.ok(shots.length >= 14, `screenshots saved: ${shots.length}`);
  });
});
