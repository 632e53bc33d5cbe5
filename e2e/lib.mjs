/**
 * Shared plumbing of the browser tests (e2e/run.mjs, e2e/dashboard.mjs): Debian's
 * Chromium settings and launch, a throwaway `wrangler dev` in its own process
 * group (scripts/lib/dev-server.mjs, the one the crash test uses too), a Node-side
 * API client, where test output goes, waits, assertions and the pass/fail report.
 *
 * Env: CHROMIUM (default /usr/bin/chromium), E2E_KEEP=1 keeps the persist dir and
 * the wrangler log, E2E_OUT (default e2e/out, git-ignored) for screenshots,
 * E2E_TRACE=1 prints timings.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DevServer, HOST, freePort, sleep } from "../scripts/lib/dev-server.mjs";

export { sleep };

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Without the background-networking flags Chromium keeps dialling out, and this machine refuses it. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const uid = (p) => `${p}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
export const trace = (line) => process.env.E2E_TRACE && console.log(`    ${line}`);

export async function waitFor(what, pred, ms = 30_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 400)})`);
    await sleep(every);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}\n  expected: ${e.slice(0, 600)}\n  actual:   ${a.slice(0, 600)}`);
}

/**
 * Checks run one after another: `check(name, fn)` prints ✓/✗ with the time taken
 * and never throws; `finish()` prints "N passed, M failed" last and exits
 * non-zero on any failure (or when nothing passed).
 */
export function report() {
  let passed = 0;
  let failed = 0;
  return {
    async check(name, fn) {
      const started = Date.now();
      try {
        await fn();
        passed++;
        console.log(`  ✓ ${name} (${Date.now() - started} ms)`);
        return true;
      } catch (err) {
        failed++;
        console.log(`  ✗ ${name} (${Date.now() - started} ms)\n    ${String(err?.stack ?? err).split("\n").join("\n    ")}`);
        return false;
      }
    },
    finish() {
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed === 0 && passed > 0 ? 0 : 1);
    },
  };
}

/** Debian's Chromium through playwright-core (both installed by CI: npm ci, apt-get install chromium). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install -y chromium, or set CHROMIUM`);
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Rebuilds public/app.js (written only when it changes, so a running `npm start` is not reloaded). */
export function buildDemo() {
  const built = spawnSync(process.execPath, [join(ROOT, "scripts", "build-demo.mjs")], { stdio: "inherit" });
  if (built.status !== 0) throw new Error("build:demo failed");
}

/**
 * Where the tests write what they produce (screenshots): E2E_OUT or e2e/out/.
 * The directory ignores itself (a `*` .gitignore inside, as .pytest_cache does),
 * so a run never dirties `git status`.
 */
export function outPath(name) {
  const dir = process.env.E2E_OUT || join(ROOT, "e2e", "out");
  mkdirSync(dir, { recursive: true });
  const ignore = join(dir, ".gitignore");
  if (!existsSync(ignore)) writeFileSync(ignore, "# written by e2e/lib.mjs: test output, never committed\n*\n");
  return join(dir, name);
}

/**
 * Starts `wrangler dev` on a free port with a throwaway --persist-to dir, detached
 * (setsid: wrangler and workerd share a new process group, stopped as one).
 * `pushReceiver: true` also runs scripts/push-receiver.mjs on a free port (its
 * log next to wrangler's) and points the Worker's PUSH_WEBHOOK_URL at it; without
 * it pushes go nowhere. E2E_KEEP=1 keeps the dir and the logs.
 * @returns {Promise<{ url: string, receiverPort: number | null, stop: () => Promise<void>, logPath: string }>}
 */
export async function startServer(prefix, { pushReceiver = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  // Pages served from another local origin (the cross-origin test) may call the API.
  const vars = { ALLOWED_ORIGINS: "http://localhost:*,http://127.0.0.1:*" };
  let receiver = null;
  let server = null;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server?.stop();
    if (receiver && receiver.child.exitCode === null) {
      receiver.child.kill("SIGTERM");
      await Promise.race([new Promise((r) => receiver.child.once("exit", r)), sleep(3000)]);
    }
    if (!process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir} (wrangler and push receiver logs)`);
  };
  try {
    if (pushReceiver) {
      const port = await freePort();
      const log = openSync(join(dir, "push-receiver.log"), "a");
      // Not detached: it shares this process group, so it ends with the test run.
      receiver = { port, child: spawn(process.execPath, [join(ROOT, "scripts", "push-receiver.mjs"), "--port", String(port)], { cwd: ROOT, stdio: ["ignore", log, log] }) };
      closeSync(log);
      vars.PUSH_WEBHOOK_URL = `http://${HOST}:${port}/push`;
      await waitFor("push receiver GET /pushes", async () => (await fetch(`http://${HOST}:${port}/pushes`)).ok, 10_000);
    }
    server = new DevServer({ persistTo: join(dir, "state"), logPath: join(dir, "wrangler.log"), vars });
    await server.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: server.url, receiverPort: receiver?.port ?? null, stop, logPath: server.logPath };
}

/**
 * The service's HTTP API from Node, as (user, device): dev tokens from
 * POST /dev/token (DEV_MODE), cached. `call` resolves { status, body } with the
 * body parsed as JSON when it is JSON, else the text (null when empty).
 */
export function api(base) {
  const tokens = new Map();
  async function token(user, device) {
    const key = `${user}/${device}`;
    if (!tokens.has(key)) {
      const res = await fetch(`${base}/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user, device }) });
      if (!res.ok) throw new Error(`dev token: ${res.status} ${await res.text()}`);
      tokens.set(key, (await res.json()).token);
    }
    return tokens.get(key);
  }
  async function call(user, device, method, path, body) {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${await token(user, device)}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  }
  return { token, call };
}

/**
 * What a user would see as broken on `page`: uncaught errors, console errors (the
 * browser logs every failed request and every 4xx/5xx response there), failed
 * requests and error responses. Requests a navigation cancels (ERR_ABORTED, a
 * reload) are not problems.
 */
export function watchPage(page) {
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console error: ${msg.text()} (${msg.location().url})`));
  page.on("requestfailed", (req) => {
    const why = req.failure()?.errorText ?? "failed";
    if (why !== "net::ERR_ABORTED") problems.push(`request failed: ${req.method()} ${req.url()} ${why}`);
  });
  page.on("response", (res) => res.status() >= 400 && problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`));
  return problems;
}

/**
 * Opens the demo page (public/index.html) for one device in a fresh browser
 * context and waits until it is ready. `receiver` is the push receiver's port
 * ("off" when there is none); `viewport` e.g. { width: 375, height: 812 }.
 * Returns a driver: snapshots, typing, the online toggle, the chat list, the
 * open conversation (texts, ticks, member sentences, gap lines), the Details
 * panel, the device's log, page errors (`errors`) and everything `watchPage`
 * collects (`problems`).
 */
export async function openDevice(browser, base, { user, device, conv, peers = [], page: pageSize = 100, receiver = "off", viewport, api: apiOrigin } = {}) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  const problems = watchPage(page);
  const q = new URLSearchParams({ conv, devices: `${user}:${device}`, peers: peers.join(","), page: String(pageSize), receiver: String(receiver), ...(apiOrigin ? { api: apiOrigin } : {}) });
  const href = `${base}/?${q}`;
  const load = async () => {
    await page.goto(href);
    await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
  };
  await load();
  const dev = deviceDriver(page, { user, device });
  Object.assign(dev, { context, errors, problems, load });
  return dev;
}

/**
 * Drives one device pane (`#dev-<user>-<device>`) of a demo page, whichever
 * page holds it (a one-device page or the two-device page). Selectors are the
 * demo's stable ones: .chat-row[data-conv], .messages li.msg[data-seq|data-cmid]
 * [data-receipt], .tick, .sentence, .gap, .details, .auth-banner, [data-k].
 */
export function deviceDriver(page, { user, device }) {
  const sel = `#dev-${user}-${device}`;
  const index = () => page.evaluate(([u, d]) => window.demo.devices.findIndex((v) => v.user === u && v.device === d), [user, device]);
  const dev = {
    page,
    sel,
    snap: async () => page.evaluate((i) => window.demo.snapshot()[i], await index()),
    async type(text) {
      await page.fill(`${sel} input[name=text]`, text);
      await page.press(`${sel} input[name=text]`, "Enter");
    },
    async toggleOnline(on) {
      const box = page.locator(`${sel} .online-toggle`);
      if ((await box.isChecked()) !== on) await box.click();
    },
    async waitStatus(status, ms = 30_000) {
      const t = Date.now();
      await waitFor(`${user}/${device} status ${status}`, async () => (await dev.snap()).status === status, ms);
      trace(`${user}/${device} status ${status} after ${Date.now() - t} ms`);
    },
    /** Texts as rendered in the DOM, in order. */
    domTexts: () => page.$$eval(`${sel} .messages li.msg.message .text, ${sel} .messages li.msg.pending .text`, (els) => els.map((e) => e.textContent)),
    /** Waits (bounded: the page renders on the next animation frame) until the DOM shows exactly `texts`. */
    async expectDom(texts, what) {
      await waitFor(`${what} (DOM)`, async () => {
        const now = await dev.domTexts();
        if (JSON.stringify(now) === JSON.stringify(texts)) return true;
        throw new Error(`DOM now ${JSON.stringify(now)}`);
      });
      assertEqual(await dev.domTexts(), texts, what);
    },
    /** The chat list as drawn, top to bottom. */
    chatRows: () =>
      page.$$eval(`${sel} .chat-list .chat-row`, (rows) =>
        rows.map((r) => ({
          id: r.dataset.conv,
          name: r.querySelector(".chat-name")?.textContent ?? "",
          preview: r.querySelector(".chat-preview")?.textContent ?? "",
          time: r.querySelector(".chat-time")?.textContent ?? "",
          unread: Number(r.dataset.unread),
          badge: r.querySelector(".badge")?.textContent ?? null,
          current: r.getAttribute("aria-current") === "true",
          receipt: r.querySelector(".tick")?.dataset.receipt ?? null,
        })),
      ),
    /** Waits until `pred(rows)` holds for the chat list; returns the rows. */
    async expectRows(what, pred, ms = 30_000) {
      return waitFor(what, async () => {
        const rows = await dev.chatRows();
        if (pred(rows)) return rows;
        throw new Error(`rows now ${JSON.stringify(rows)}`);
      }, ms);
    },
    /** Opens a conversation as a person would: its row in the chat list (on a narrow screen: back to the list first). */
    async openChat(id) {
      const row = page.locator(`${sel} .chat-row[data-conv="${id}"]`);
      if (!(await row.isVisible())) await page.locator(`${sel} .chat .back`).click();
      await row.click();
      await waitFor(`${user}/${device} opened ${id}`, async () => (await dev.snap()).open === id);
    },
    /** The user's own messages in the open conversation: text, tick state and the tick's label. */
    ticks: () =>
      page.$$eval(`${sel} .messages li.mine`, (els) =>
        els.map((e) => ({
          text: e.querySelector(".text")?.textContent ?? "",
          receipt: e.dataset.receipt ?? null,
          label: e.querySelector(".tick")?.getAttribute("aria-label") ?? "",
          readBy: e.querySelector(".read-by")?.textContent ?? null,
        })),
      ),
    /** Waits until the tick of the own message `text` shows `state` (pending, sent, delivered, read); returns it. */
    async expectTick(text, state, ms = 30_000) {
      let found;
      await waitFor(`${user}/${device}: "${text}" ${state}`, async () => {
        found = (await dev.ticks()).find((t) => t.text === text);
        if (found?.receipt === state) return found;
        throw new Error(`now ${JSON.stringify(found ?? "not shown")}`);
      }, ms);
      return found;
    },
    /** Member entries of the open conversation, as the sentences shown. */
    sentences: () => page.$$eval(`${sel} .messages li.msg.member .sentence`, (els) => els.map((e) => e.textContent)),
    /** Gap lines of the open conversation. */
    gapLines: () => page.$$eval(`${sel} .messages li.gap`, (els) => els.map((e) => e.textContent)),
    /** The Details panel: open (true/false) and, when open, whether its figures are visible. */
    details: () =>
      page.$eval(`${sel} details.details`, (d) => ({
        open: d.open,
        figuresVisible: d.querySelector(".figures").checkVisibility(),
        figures: [...d.querySelectorAll(".figure")].map((f) => ({ name: f.querySelector("dt").textContent, value: f.querySelector("[data-k]").textContent, legend: f.querySelector(".legend").textContent })),
      })),
    toggleDetails: () => page.click(`${sel} details.details > summary`),
    /** The "signed out" banner: shown or not. */
    authBanner: () => page.locator(`${sel} .auth-banner`).isVisible(),
    /** The device's log panel (in Details), newest line first. */
    logLines: async () => (await page.textContent(`${sel} .log`)).split("\n").filter(Boolean),
  };
  return dev;
}

/** alice/phone and bob/laptop of a `newConversation`, each on its own page, both online; `close()` closes both. */
export async function openPair(browser, base, { conv, alice, bob, api: apiOrigin }) {
  const A = await openDevice(browser, base, { user: alice, device: "phone", conv, peers: [bob], api: apiOrigin });
  const B = await openDevice(browser, base, { user: bob, device: "laptop", conv, peers: [alice], api: apiOrigin });
  const close = async () => {
    await A.context.close();
    await B.context.close();
  };
  try {
    await A.waitStatus("online");
    await B.waitStatus("online");
  } catch (err) {
    await close();
    throw err;
  }
  return { A, B, close };
}

/** A conversation with fresh ids, created over the API by alice/phone with bob as the other member. */
export async function newConversation(http, prefix) {
  const conv = uid(prefix);
  const alice = uid("alice");
  const bob = uid("bob");
  assertEqual((await http.call(alice, "phone", "POST", "/v1/conversations", { id: conv, members: [bob] })).status, 201, "create");
  return { conv, alice, bob };
}

export const countOf = (list, x) => list.filter((y) => y === x).length;
