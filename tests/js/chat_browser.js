// Drives the chat example's web page in two headless Chromium pages, as two people would, and
// prints what each page shows as JSON on stdout, for tests/python/test_chat_example.py to check.
//
// Usage: node chat_browser.js URL
// Env: CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 15000), SCREENSHOT (a PNG
// path: saves what alice sees at the end, to look at the page).
//
// Debian's Chromium is driven through playwright-core with `executablePath`: playwright-core never
// downloads a browser of its own. Each step that waits for something records a failure instead of
// throwing, so the caller always gets both pages' message lists and can say what went wrong.

"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node chat_browser.js URL\n");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS || 15000);

// Flags that let Debian's Chromium run headless as root, without a GPU and without any network
// traffic of its own (updates, sync, QUIC probes).
const flags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function messagesOf(page) {
  return page.locator("#messages li").allTextContents();
}

async function waitForMessage(page, text, failures, what) {
  try {
    await page
      .locator("#messages li", { hasText: text })
      .first()
      .waitFor({ state: "attached", timeout: stepTimeout });
  } catch (e) {
    failures.push(`${what}: ${e.message.split("\n")[0]}`);
  }
}

async function say(page, text) {
  await page.fill("#message", text);
  await page.click("#send");
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "hf-chromium-"));
  const result = { failures: [], pages: {} };
  let context = null;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: flags,
      timeout: 60000,
    });
    const alice = await context.newPage();
    const bob = await context.newPage();
    for (const [name, page] of [["alice", alice], ["bob", bob]]) {
      await page.goto(url, { timeout: stepTimeout });
      result.pages[name] = { title: await page.title() };
    }
    for (const [name, page] of [["alice", alice], ["bob", bob]]) {
      try {
        await page.waitForSelector('#status[data-state="open"]', { timeout: stepTimeout });
      } catch (e) {
        result.failures.push(`${name} never connected: ${e.message.split("\n")[0]}`);
      }
    }

    const first = `hello from alice ${Date.now()}`;
    await say(alice, first);
    await waitForMessage(bob, first, result.failures, "bob waiting for alice's message");
    await waitForMessage(alice, first, result.failures, "alice waiting for her own message");

    const second = `hi alice, bob here ${Date.now()}`;
    await bob.fill("#message", second);
    await bob.press("#message", "Enter");
    await waitForMessage(alice, second, result.failures, "alice waiting for bob's reply");
    await waitForMessage(bob, second, result.failures, "bob waiting for his own reply");

    result.sent = [first, second];
    result.pages.alice.messages = await messagesOf(alice);
    result.pages.bob.messages = await messagesOf(bob);
    result.pages.alice.input = await alice.inputValue("#message");
    result.pages.bob.input = await bob.inputValue("#message");
    if (process.env.SCREENSHOT) await alice.screenshot({ path: process.env.SCREENSHOT });
  } catch (e) {
    result.failures.push(`browser error: ${e.stack || e}`);
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(result.failures.length ? 1 : 0);
}

main();
