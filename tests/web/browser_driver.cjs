// Drives Debian's headless Chromium for tests/web/test_browser.py, one JSON command per
// stdin line, one JSON reply per stdout line: {"ok": true, "value": ...} or
// {"ok": false, "error": "..."}. Each page gets its own browser context (no shared
// storage). Page errors and console errors are collected and returned by "errors".
//
// `node browser_driver.cjs --serve SOCKET` starts one Chromium for many drivers (a test
// session: a start costs about half a second): each connection to the Unix socket
// SOCKET is a driver of its own, with its own pages (each in its own context) and its
// own errors; its "quit" closes its contexts and the connection. The server says
// "ready" on stdout once it listens, and closes Chromium when its stdin closes.
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
const net = require("node:net");
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

const LAUNCH = { executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_FLAGS };

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
// One driver's pages and errors, its pages opened in `browser()`'s Chromium.
function session(browser) {
  const pages = new Map();
  const contexts = [];
  const errors = [];

  async function goto({ page: name, url, timeout = 30000 }) {
    const context = await (await browser()).newContext({ viewport: { width: 1100, height: 700 } });
    contexts.push(context);
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
  };
  const close = () => Promise.allSettled(contexts.map((context) => context.close()));
  return { commands, close };
}

// Commands from `input`, one JSON line each; replies through `write`.
function drive(input, write, commands) {
  const reply = (value) => write(`${JSON.stringify(value)}\n`);
  readline.createInterface({ input }).on("line", async (line) => {
    try {
      const command = JSON.parse(line);
      const run = commands[command.cmd];
      if (!run) throw new Error(`unknown command ${command.cmd}`);
      reply({ ok: true, value: (await run(command)) ?? null });
    } catch (error) {
      reply({ ok: false, error: String(error?.message ?? error) });
    }
  });
}

async function serve(socketPath) {
  const browser = await chromium.launch(LAUNCH);
  const server = net.createServer((connection) => {
    const driver = session(async () => browser);
    connection.on("close", driver.close); // a driver gone without its quit
    connection.on("error", () => {});
    const quit = async () => {
      await driver.close();
      connection.end();
    };
    const write = (line) => connection.writableEnded || connection.write(line); // not after quit
    drive(connection, write, { ...driver.commands, quit });
  });
  server.listen(socketPath, () => process.stdout.write("ready\n"));
  process.stdin.on("end", async () => {
    server.close();
    await browser.close();
    process.exit(0);
  });
  process.stdin.resume();
}

function driveStdio() {
  let browser = null;
  const driver = session(async () => (browser ??= await chromium.launch(LAUNCH)));
  const quit = async () => {
    await browser?.close();
    process.exit(0);
  };
  drive(process.stdin, (line) => process.stdout.write(line), { ...driver.commands, quit });
}

const serveAt = process.argv.indexOf("--serve");
if (serveAt >= 0) serve(process.argv[serveAt + 1]);
else driveStdio();
