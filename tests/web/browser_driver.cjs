// Drives Debian's headless Chromium for tests/web/test_browser.py, one JSON command per
// stdin line, one JSON reply per stdout line: {"ok": true, "value": ...} or
// {"ok": false, "error": "..."}. Each page gets its own browser context (no shared
// storage). Page errors and console errors are collected and returned by "errors".
//
//   {"cmd": "open", "page": "a", "url": "..."}       load and wait for window.runtimed.ready
//   {"cmd": "goto", "page": "a", "url": "..."}       load any page (JupyterLab), no waiting
//   {"cmd": "reload", "page": "a"}                   reload the page
//   {"cmd": "eval", "page": "a", "js": "..."}        the value of a JS expression
//   {"cmd": "wait", "page": "a", "js": "...", "ms": 15000}   until the expression is truthy
//   {"cmd": "click" | "fill", "page": "a", "selector": "...", "text": "..."}
//   {"cmd": "drag", "page": "a", "selector": "...", "dx": 120}   press, move in steps, release
//   {"cmd": "press", "page": "a", "key": "Shift+Enter"}           one key, as a person presses it
//   {"cmd": "type", "page": "a", "text": "...", "delay": 0}       keystrokes into the focused element
//   {"cmd": "typeTogether", "typing": [{"page", "text", "delay"}]} several pages type at once
//   {"cmd": "screenshot", "page": "a", "path": "..."}
//   {"cmd": "errors"}   then {"cmd": "quit"}
const path = require("node:path");
const readline = require("node:readline");
const { chromium } = require(path.join(process.env.RUNTIMED_JS_DIR, "node_modules", "playwright-core"));

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // tests/web/test_guard.py: a name that resolves to this machine, for DNS rebinding.
  "--host-resolver-rules=MAP rebind.test 127.0.0.1",
];

const pages = new Map();

// Polled from here through page.evaluate (DevTools evaluation, which the page's CSP
// allows), not with page.waitForFunction: that compiles the predicate inside the page,
// and the page's Content-Security-Policy forbids eval.
async function until(page, js, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    let value = false;
    try {
      value = await page.evaluate(js);
    } catch (error) {
      // A page that navigates (a reload) has no context for a moment: poll on.
      if (!/context was destroyed|navigat/i.test(error.message)) throw error;
    }
    if (value) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${js}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
const errors = [];
let browser = null;

async function goto({ page: name, url, timeout = 30000 }) {
  browser ??= await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_FLAGS,
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${name}: console: ${message.text()}`);
  });
  pages.set(name, page);
  await page.goto(url, { timeout });
  return page;
}

async function open({ page: name, url, timeout = 30000 }) {
  const page = await goto({ page: name, url, timeout });
  await until(page, "window.runtimed !== undefined", timeout);
  const state = await page.evaluate(() => ({ ready: window.runtimed.ready, error: window.runtimed.error }));
  if (!state.ready) throw new Error(`the page did not open its notebook: ${state.error}`);
}

async function drag({ page: name, selector, dx, steps = 12 }) {
  const page = pages.get(name);
  const box = await page.locator(selector).first().boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx, y, { steps });
  await page.mouse.up();
}

const commands = {
  open,
  goto: async (command) => {
    await goto(command);
  },
  reload: async ({ page, timeout = 60000 }) => {
    await pages.get(page).reload({ timeout });
  },
  drag,
  eval: ({ page, js }) => pages.get(page).evaluate(js),
  wait: async ({ page, js, ms = 15000 }) => {
    try {
      await until(pages.get(page), js, ms);
    } catch (error) {
      const shown = await pages.get(page).evaluate(() => document.body.innerText);
      throw new Error(`${error.message}; the page shows: ${shown}; errors: ${errors}`);
    }
  },
  click: async ({ page, selector }) => {
    await pages.get(page).locator(selector).first().click();
  },
  fill: async ({ page, selector, text }) => {
    await pages.get(page).locator(selector).first().fill(text);
  },
  press: async ({ page, key }) => {
    await pages.get(page).keyboard.press(key);
  },
  type: async ({ page, text, delay = 0 }) => {
    await pages.get(page).keyboard.type(text, { delay });
  },
  typeTogether: async ({ typing }) => {
    await Promise.all(
      typing.map(({ page, text, delay = 0 }) => pages.get(page).keyboard.type(text, { delay })),
    );
  },
  screenshot: async ({ page, path: file }) => {
    await pages.get(page).screenshot({ path: file, fullPage: true });
  },
  errors: () => errors.splice(0),
  quit: async () => {
    await browser?.close();
    process.exit(0);
  },
};

const reply = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  try {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    reply({ ok: true, value: (await run(command)) ?? null });
  } catch (error) {
    reply({ ok: false, error: String(error?.message ?? error) });
  }
});
