// A headless Chromium (Debian's, never a download) driven by playwright-core, one JSON command per line
// on stdin, one JSON answer per line on stdout. Used by tests/e2e/browser.py.
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "shopstream-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = context.pages()[0] || (await context.newPage());
const problems = [];
page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
page.on("requestfailed", (request) => problems.push(`requestfailed: ${request.url()} ${request.failure()?.errorText}`));

const commands = {
  goto: async ({ url }) => { await page.goto(url, { waitUntil: "load" }); return page.url(); },
  wait: async ({ selector, text, timeout }) => {
    const locator = page.locator(selector).first();
    if (text === undefined) { await locator.waitFor({ state: "visible", timeout: timeout ?? 30000 }); return true; }
    await page.waitForFunction(([s, t]) => [...document.querySelectorAll(s)].some((e) => new RegExp(t).test(e.textContent)),
      [selector, text], { timeout: timeout ?? 30000, polling: 250 });
    return true;
  },
  gone: async ({ selector, timeout }) => {
    await page.locator(selector).first().waitFor({ state: "detached", timeout: timeout ?? 30000 }); return true;
  },
  text: async ({ selector }) => page.locator(selector).allTextContents(),
  count: async ({ selector }) => page.locator(selector).count(),
  click: async ({ selector }) => { await page.locator(selector).first().click(); return true; },
  fill: async ({ selector, value }) => { await page.locator(selector).fill(value); return true; },
  press: async ({ selector, key }) => { await page.locator(selector).press(key); return true; },
  eval: async ({ expression }) => page.evaluate(expression),
  screenshot: async ({ path, fullPage }) => { await page.screenshot({ path, fullPage: fullPage ?? true }); return path; },
  cookies: async () => context.cookies(),
  problems: async () => problems.splice(0),
  close: async () => { await context.close(); rmSync(profile, { recursive: true, force: true }); return true; },
};

const lines = createInterface({ input: process.stdin });
process.stdout.write(JSON.stringify({ ok: true, ready: await context.browser()?.version?.() ?? "chromium" }) + "\n");
for await (const line of lines) {
  const { command, ...args } = JSON.parse(line);
  try {
    const result = await commands[command](args);
    process.stdout.write(JSON.stringify({ ok: true, result }) + "\n");
    if (command === "close") break;
  } catch (error) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(error.message || error).slice(0, 2000) }) + "\n");
  }
}
process.exit(0);
