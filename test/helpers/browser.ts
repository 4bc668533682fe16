/** The frame of the browser tests: find Chromium, register the tests (or say why not), open and close a page. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Browser, findChromium, type Page } from "./cdp.ts";

/**
 * Registers `define(bin)`'s tests when Chromium is found. Without it: under CI one failing test
 * (a missing browser is a failure there, never a silent skip), elsewhere one skipped test `name`.
 */
export async function withChromium(name: string, define: (bin: string) => void): Promise<void> {
  const bin = await findChromium();
  if (bin) define(bin);
  else if (process.env.CI) {
    test("chromium is available (CI)", () => {
      assert.fail("CI is set but no Chromium was found: .ci/chromium.sh installs it and exports CHROMIUM_BIN");
    });
  } else {
    test(name, { skip: "no Chromium found (install `chromium` or set CHROMIUM_BIN)" }, () => {});
  }
}

/** A Chromium with one 1280×900 page. */
export async function launchPage(bin: string): Promise<{ browser: Browser; page: Page }> {
  const browser = await Browser.launch(bin);
  return { browser, page: await browser.newPage(1280, 900) };
}

/** Closes what launchPage opened; either may be unset when setup failed early. */
export async function closeBrowser(browser: Browser | undefined, page: Page | undefined): Promise<void> {
  await page?.close().catch(() => {});
  await browser?.close();
}
