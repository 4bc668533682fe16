/**
 * A small Chrome DevTools Protocol client over `--remote-debugging-pipe`: Chromium reads
 * NUL-terminated JSON messages on its fd 3 and writes them on its fd 4. No WebSocket, no
 * Puppeteer/Playwright — just enough to drive a page from node:test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";

type Json = Record<string, any>;
type Listener = (params: Json, sessionId?: string) => void;

/** Locates a Chromium binary: $CHROMIUM_BIN, else chromium / chromium-browser / google-chrome on PATH. */
export async function findChromium(): Promise<string | undefined> {
  const explicit = process.env.CHROMIUM_BIN;
  if (explicit) return explicit;
  const names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of names) {
      const candidate = join(dir, name);
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        /* keep looking */
      }
    }
  }
  return undefined;
}

export class CdpError extends Error {}

/** A Chromium process and the protocol connection to it. */
export class Browser {
  private nextId = 1;
  private pending = new Map<number, { resolve(v: Json): void; reject(e: Error): void; method: string }>();
  private listeners = new Map<string, Set<Listener>>();
  private buffer = "";
  private stderrTail = "";
  private exited = false;

  private constructor(
    private proc: ChildProcess,
    private input: Writable,
    output: Readable,
    private userDataDir: string,
  ) {
    output.setEncoding("utf8");
    output.on("data", (chunk: string) => this.onData(chunk));
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    proc.on("exit", () => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new CdpError(`Chromium exited during ${p.method}. stderr: ${this.stderrTail}`));
      this.pending.clear();
    });
  }

  /** Starts headless Chromium with a fresh profile in a temp dir. */
  static async launch(bin: string): Promise<Browser> {
    const userDataDir = await mkdtemp(join(tmpdir(), "ow-chromium-"));
    const args = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      "--mute-audio",
      `--user-data-dir=${userDataDir}`,
      "--remote-debugging-pipe",
      "about:blank",
    ];
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"] });
    proc.stdout?.resume();
    const input = proc.stdio[3] as Writable;
    const output = proc.stdio[4] as Readable;
    const browser = new Browser(proc, input, output, userDataDir);
    await new Promise<void>((resolve, reject) => {
      proc.once("error", reject);
      proc.once("spawn", () => resolve());
    });
    await browser.send("Browser.getVersion", {}, undefined, 30_000);
    return browser;
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nul: number;
    while ((nul = this.buffer.indexOf("\0")) >= 0) {
      const raw = this.buffer.slice(0, nul);
      this.buffer = this.buffer.slice(nul + 1);
      let msg: Json;
      try {
        msg = JSON.parse(raw);
      } catch {
        continue;
      }
      if (typeof msg.id === "number") {
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new CdpError(`${p.method}: ${msg.error.message} ${msg.error.data ?? ""}`));
        else p.resolve(msg.result ?? {});
      } else if (typeof msg.method === "string") {
        for (const l of this.listeners.get(msg.method) ?? []) l(msg.params ?? {}, msg.sessionId);
      }
    }
  }

  /** Sends one command (to a page when `sessionId` is given) and waits for its result. */
  send(method: string, params: Json = {}, sessionId?: string, timeoutMs = 20_000): Promise<Json> {
    if (this.exited) return Promise.reject(new CdpError(`Chromium is not running (${method}). stderr: ${this.stderrTail}`));
    const id = this.nextId++;
    const message: Json = { id, method, params };
    if (sessionId) message.sessionId = sessionId;
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CdpError(`${method}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        method,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.input.write(JSON.stringify(message) + "\0");
    });
  }

  /** Subscribes to a protocol event; returns an unsubscribe function. */
  on(event: string, listener: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Opens a new tab of the given viewport size and attaches to it. */
  async newPage(width = 1280, height = 800): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId as string, targetId as string);
    await page.init(width, height);
    return page;
  }

  /** Closes Chromium (gracefully, then by signal) and removes its profile. */
  async close(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
      this.send("Browser.close", {}, undefined, 5_000).catch(() => {});
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.userDataDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** One network request seen by the page. */
export interface SeenRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
}

/** A tab: evaluate, wait for conditions, click, type, upload, screenshot. */
export class Page {
  readonly requests: SeenRequest[] = [];
  readonly consoleErrors: string[] = [];
  private offs: Array<() => void> = [];

  constructor(
    readonly browser: Browser,
    readonly sessionId: string,
    readonly targetId: string,
  ) {}

  /** @internal */
  async init(width: number, height: number): Promise<void> {
    const mine = (fn: Listener): Listener => (params, sid) => {
      if (sid === this.sessionId) fn(params, sid);
    };
    this.offs.push(
      this.browser.on("Network.requestWillBeSent", mine((p) => this.requests.push({ url: p.request.url, method: p.request.method, headers: p.request.headers ?? {} }))),
      this.browser.on("Runtime.exceptionThrown", mine((p) => this.consoleErrors.push(`exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`))),
      this.browser.on("Runtime.consoleAPICalled", mine((p) => {
        if (p.type === "error") this.consoleErrors.push(`console.error: ${(p.args ?? []).map((a: Json) => a.value ?? a.description).join(" ")}`);
      })),
      this.browser.on("Log.entryAdded", mine((p) => {
        if (p.entry?.level === "error") this.consoleErrors.push(`log(${p.entry.source}): ${p.entry.text} ${p.entry.url ?? ""}`);
      })),
    );
    await this.send("Page.enable");
    await this.send("Runtime.enable");
    await this.send("Network.enable");
    await this.send("Log.enable");
    await this.setViewport(width, height);
  }

  send(method: string, params: Json = {}, timeoutMs?: number): Promise<Json> {
    return this.browser.send(method, params, this.sessionId, timeoutMs);
  }

  async setViewport(width: number, height: number): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: width < 600 });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string, timeoutMs = 20_000): Promise<void> {
    const loaded = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new CdpError(`load of ${url} timed out`))), timeoutMs);
      const off = this.browser.on("Page.loadEventFired", (_p, sid) => {
        if (sid !== this.sessionId) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
    const nav = await this.send("Page.navigate", { url });
    if (nav.errorText) throw new CdpError(`navigate ${url}: ${nav.errorText}`);
    // A same-document navigation (only the fragment changed) has no loader and fires no load event.
    if (!nav.loaderId) {
      loaded.catch(() => {});
      return;
    }
    await loaded;
  }

  /** Evaluates an expression in the page (promises awaited) and returns its JSON value. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true, userGesture: true });
    if (r.exceptionDetails) {
      throw new CdpError(`evaluate failed: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}\n  in: ${expression.slice(0, 200)}`);
    }
    return r.result?.value as T;
  }

  /** Polls an expression until it is truthy; returns its value. Never a fixed sleep. */
  async waitFor<T = unknown>(expression: string, what: string, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        last = await this.evaluate<T>(expression);
        if (last) return last as T;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) {
        const body = await this.evaluate<string>("document.body ? document.body.innerText.slice(0, 1500) : ''").catch(() => "");
        throw new CdpError(`timed out waiting for ${what} (last: ${String(last)})\npage text:\n${body}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Clicks the centre of the first element matching `selector` with real mouse events. */
  async click(selector: string): Promise<void> {
    const box = await this.waitFor<{ x: number; y: number }>(
      `(() => { const el = document.querySelector(${JSON.stringify(selector)}); if (!el) return null;
         el.scrollIntoView({ block: "center", inline: "center" });
         const r = el.getBoundingClientRect(); if (r.width === 0 || r.height === 0) return null;
         return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()`,
      `clickable ${selector}`,
    );
    for (const type of ["mouseMoved", "mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: type === "mouseMoved" ? 0 : 1 });
    }
  }

  /** Focuses a field, clears it and types `text` (as one input event, like a paste). */
  async type(selector: string, text: string): Promise<void> {
    await this.waitFor(
      `(() => { const el = document.querySelector(${JSON.stringify(selector)}); if (!el) return false; el.focus(); el.select?.(); return document.activeElement === el; })()`,
      `focusable ${selector}`,
    );
    await this.send("Input.insertText", { text });
  }

  /** Presses a key (e.g. "Enter", "Tab") on the focused element. */
  async press(key: string): Promise<void> {
    const codes: Record<string, number> = { Enter: 13, Tab: 9, Escape: 27, " ": 32 };
    const base = { key, code: key === " " ? "Space" : key, windowsVirtualKeyCode: codes[key] ?? 0 };
    await this.send("Input.dispatchKeyEvent", { type: "keyDown", ...base, ...(key === "Enter" ? { text: "\r" } : {}) });
    await this.send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
  }

  /** Sets the files of an `<input type=file>` (fires its change event). */
  async setFiles(selector: string, paths: string[]): Promise<void> {
    const r = await this.send("Runtime.evaluate", { expression: `document.querySelector(${JSON.stringify(selector)})` });
    const objectId = r.result?.objectId;
    if (!objectId) throw new CdpError(`no element ${selector}`);
    await this.send("DOM.setFileInputFiles", { files: paths, objectId });
  }

  /** Saves a full-page PNG screenshot; returns its path. */
  async screenshot(path: string): Promise<string> {
    const metrics = await this.send("Page.getLayoutMetrics");
    const size = metrics.cssContentSize ?? metrics.contentSize;
    const vp = metrics.cssLayoutViewport ?? metrics.layoutViewport;
    const width = Math.ceil(vp.clientWidth);
    const height = Math.min(Math.ceil(Math.max(size.height, vp.clientHeight)), 6000);
    const shot = await this.send("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
      clip: { x: 0, y: 0, width, height, scale: 1 },
    }, 30_000);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.from(shot.data as string, "base64"));
    return path;
  }

  /** Requests whose origin differs from `origin` (data: and blob: URLs are not network requests). */
  foreignRequests(origin: string): SeenRequest[] {
    return this.requests.filter((r) => !/^(data|blob|about):/.test(r.url) && new URL(r.url).origin !== origin);
  }

  async close(): Promise<void> {
    for (const off of this.offs) off();
    await this.browser.send("Target.closeTarget", { targetId: this.targetId }).catch(() => {});
  }
}
