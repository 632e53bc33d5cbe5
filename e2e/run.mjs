#!/usr/bin/env node
/**
 * Browser end-to-end tests of the demo app + client SDK (`npm run test:e2e`).
 *
 * Starts its own `wrangler dev` (new session via setsid semantics — detached
 * process group —, a free port, a throwaway --persist-to dir), builds the demo
 * bundle, drives Debian's Chromium with playwright-core (one browser context per
 * device), and kills the server's whole process group at the end.
 * Prints "N passed, M failed" and exits non-zero on any failure.
 *
 * Env: CHROMIUM (default /usr/bin/chromium), E2E_ONLY (substring filter),
 * E2E_KEEP=1 keeps the persist dir and wrangler log.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, ROOT, assert, sleep, startServer as startDevServer, uid, waitFor } from "./lib.mjs";


// ---------------------------------------------------------------- plumbing





function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}\n  expected: ${e.slice(0, 600)}\n  actual:   ${a.slice(0, 600)}`);
}

const trace = (line) => process.env.E2E_TRACE && console.log(`    ${line}`);

// ---------------------------------------------------------------- server

async function startServer() {
  const built = spawnSync(process.execPath, [join(ROOT, "scripts", "build-demo.mjs")], { stdio: "inherit" });
  if (built.status !== 0) throw new Error("build:demo failed");
  return startDevServer("od-e2e");
}

// ---------------------------------------------------------------- API helpers (Node side)

function api(base) {
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
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }
  return { token, call };
}

// ---------------------------------------------------------------- browser helpers

async function openDevice(browser, base, { user, device, conv, peers = [], page: pageSize = 100 }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  const q = new URLSearchParams({ conv, devices: `${user}:${device}`, peers: peers.join(","), page: String(pageSize) });
  const href = `${base}/?${q}`;
  const load = async () => {
    await page.goto(href);
    await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
  };
  await load();
  const sel = `#dev-${user}-${device}`;
  return {
    context,
    page,
    errors,
    load,
    snap: () => page.evaluate(() => window.demo.snapshot()[0]),
    async type(text) {
      await page.fill(`${sel} input[name=text]`, text);
      await page.press(`${sel} input[name=text]`, "Enter");
    },
    async toggleOnline(on) {
      const box = page.locator(`${sel} .online-toggle`);
      if ((await box.isChecked()) !== on) await box.click();
    },
    /** Texts as rendered in the DOM, in order. */
    domTexts: () => page.$$eval(`${sel} .messages li.msg.message .text, ${sel} .messages li.msg.pending .text`, (els) => els.map((e) => e.textContent)),
  };
}

const waitStatus = async (dev, status, ms = 30_000) => { const t = Date.now(); await waitFor(`status ${status}`, async () => (await dev.snap()).status === status, ms); if (process.env.E2E_TRACE) console.log(`    status ${status} after ${Date.now() - t} ms`); };

function countOf(list, x) {
  return list.filter((y) => y === x).length;
}

// ---------------------------------------------------------------- tests

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("B offline (context.setOffline), A sends 20; B back online gets all 20 once and in order", async ({ browser, url, http }) => {
  const conv = uid("e2e1");
  const alice = uid("alice");
  const bob = uid("bob");
  assertEqual((await http.call(alice, "phone", "POST", "/v1/conversations", { id: conv, members: [bob] })).status, 201, "create");
  const A = await openDevice(browser, url, { user: alice, device: "phone", conv, peers: [bob] });
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv, peers: [alice] });
  try {
    await waitStatus(A, "online");
    await waitStatus(B, "online");
    await B.context.setOffline(true);
    await waitStatus(B, "offline");
    const texts = Array.from({ length: 20 }, (_, i) => `hello ${i + 1}`);
    const t0 = Date.now();
    for (const t of texts) await A.type(t);
    trace(`typed 20 in ${Date.now() - t0} ms`);
    await waitFor("A: 20 confirmed and in its log", async () => {
      const s = await A.snap();
      return s.outbox === 0 && s.texts.length === 20 && s.pending.length === 0;
    });
    assertEqual((await A.snap()).texts, texts, "A shows its 20 in order");
    await sleep(500);
    assertEqual((await B.snap()).texts, [], "B received nothing while offline");
    trace(`A confirmed after ${Date.now() - t0} ms`);
    await B.context.setOffline(false);
    const t1 = Date.now();
    await waitFor("B: 20 messages", async () => (await B.snap()).texts.length >= 20);
    trace(`B caught up ${Date.now() - t1} ms after going online`);
    await sleep(500); // anything extra (a duplicate) would show up now
    const s = await B.snap();
    assertEqual(s.texts, texts, "B has all 20, once, in order");
    await waitFor("B DOM matches", async () => JSON.stringify(await B.domTexts()) === JSON.stringify(texts));
    assertEqual(await B.domTexts(), texts, "B's DOM shows all 20, once, in order");
    assertEqual(s.duplicates, 0, "no duplicate deliveries on B");
    assertEqual(s.delivered, 21, "B's handler saw 21 entries (member entry + 20)");
    assertEqual([...A.errors, ...B.errors], [], "no page errors");
  } finally {
    await A.context.close();
    await B.context.close();
  }
});

test("B sends 5 while offline, reloads, comes online: each appears once on both sides", async ({ browser, url, http }) => {
  const conv = uid("e2e2");
  const alice = uid("alice");
  const bob = uid("bob");
  assertEqual((await http.call(alice, "phone", "POST", "/v1/conversations", { id: conv, members: [bob] })).status, 201, "create");
  const A = await openDevice(browser, url, { user: alice, device: "phone", conv, peers: [bob] });
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv, peers: [alice] });
  try {
    await waitStatus(A, "online");
    await waitStatus(B, "online");
    // Offline both ways: the demo's toggle (persisted across the reload) and the browser's network.
    await B.toggleOnline(false);
    await B.context.setOffline(true);
    await waitStatus(B, "offline");
    const texts = Array.from({ length: 5 }, (_, i) => `offline ${i + 1}`);
    for (const t of texts) await B.type(t);
    await waitFor("B: 5 pending", async () => (await B.snap()).outbox === 5);
    await B.context.setOffline(false);
    await B.load(); // reload; the toggle keeps the SDK offline
    let s = await B.snap();
    assertEqual(s.status, "offline", "B stays offline after reload");
    assertEqual(s.pending, texts, "the outbox survived the reload, in order");
    // The page renders on the next animation frame: wait for it (bounded) before comparing.
    await waitFor("B renders the 5 pending messages", async () => JSON.stringify(await B.domTexts()) === JSON.stringify(texts));
    assertEqual(await B.domTexts(), texts, "pending messages rendered once each");
    await sleep(300);
    assertEqual((await A.snap()).texts, [], "A got nothing yet");
    await B.toggleOnline(true);
    await waitFor("B: outbox drained and 5 in the log", async () => {
      const x = await B.snap();
      return x.outbox === 0 && x.pending.length === 0 && x.texts.length === 5;
    });
    await waitFor("A: 5 messages", async () => (await A.snap()).texts.length >= 5);
    await sleep(500);
    s = await B.snap();
    const a = await A.snap();
    for (const t of texts) {
      assertEqual(countOf(s.texts, t), 1, `B shows "${t}" once`);
      assertEqual(countOf(a.texts, t), 1, `A shows "${t}" once`);
    }
    assertEqual(a.texts, texts, "A has them in send order");
    await waitFor("B DOM matches", async () => JSON.stringify(await B.domTexts()) === JSON.stringify(texts));
    assertEqual(await B.domTexts(), texts, "B's DOM shows each once");
    await waitFor("A DOM matches", async () => JSON.stringify(await A.domTexts()) === JSON.stringify(texts));
    assertEqual(await A.domTexts(), texts, "A's DOM shows each once");
    const log = await http.call(alice, "phone", "GET", `/v1/conversations/${conv}/messages?after=0`);
    assertEqual(log.body.messages.filter((m) => m.type === "message").length, 5, "the server log holds 5 messages");
    assertEqual([...A.errors, ...B.errors], [], "no page errors");
  } finally {
    await A.context.close();
    await B.context.close();
  }
});

test("reload in the middle of a 600-entry sync (page 20) resumes without duplicates", async ({ browser, url, http }) => {
  const conv = uid("e2e3");
  const alice = uid("alice");
  const bob = uid("bob");
  assertEqual((await http.call(alice, "phone", "POST", "/v1/conversations", { id: conv, members: [bob] })).status, 201, "create");
  for (let i = 0; i < 600; i += 20) {
    const batch = Array.from({ length: 20 }, (_, j) => http.call(alice, "phone", "POST", `/v1/conversations/${conv}/messages`, { client_msg_id: `m${i + j}`, body: { text: `bulk ${i + j}` } }));
    for (const r of await Promise.all(batch)) assert(r.status === 201, `send: ${r.status}`);
  }
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv, peers: [alice], page: 20 });
  try {
    // Slow history pages a little so the reload lands mid-sync.
    await B.page.route("**/v1/conversations/*/messages?*", async (route) => {
      await sleep(40);
      await route.continue();
    });
    const mid = await waitFor("B mid-sync", async () => {
      const s = await B.snap();
      return s.delivered >= 120 && s.delivered < 500 ? s : null;
    }, 60_000, 20);
    await B.load();
    const after = await B.snap();
    assert(after.delivered >= mid.delivered, `persisted progress kept (${after.delivered} >= ${mid.delivered})`);
    assert(after.delivered < 601, `reload happened before the end (${after.delivered})`);
    await waitFor("B: all 601 entries", async () => (await B.snap()).seqs.length === 601, 90_000, 200);
    await sleep(500);
    const s = await B.snap();
    assertEqual(s.seqs, Array.from({ length: 601 }, (_, i) => i + 1), "every seq once");
    assertEqual(s.duplicates, 0, "no entry handed to the app twice (persisted check)");
    assertEqual(s.delivered, 601, "handler deliveries across both page loads = 601");
    assertEqual(s.received, 601, "watermark at head");
    assertEqual(B.errors, [], "no page errors");
  } finally {
    await B.context.close();
  }
});

test("FileStorage (Node entry): atomic batches survive a new instance", async () => {
  const dir = mkdtempSync(join(tmpdir(), "od-fs-"));
  try {
    const out = join(dir, "fs.mjs");
    const esbuild = await import("esbuild");
    await esbuild.build({ entryPoints: [join(ROOT, "src/client/node-file-storage.ts")], outfile: out, bundle: true, format: "esm", platform: "node", logLevel: "warning" });
    const { FileStorage } = await import(pathToFileURL(out).href);
    const path = join(dir, "state.json");
    const a = new FileStorage(path);
    await a.batch([{ op: "set", key: "od:conv:x", value: { received: 3 } }, { op: "set", key: "app:1", value: 1 }, { op: "set", key: "gone", value: true }]);
    await a.delete("gone");
    const b = new FileStorage(path);
    assertEqual(await b.get("od:conv:x"), { received: 3 }, "value persisted");
    assertEqual(await b.keys("od:"), ["od:conv:x"], "keys by prefix");
    assertEqual(await b.get("gone"), undefined, "delete persisted");
    writeFileSync(join(dir, "noop"), "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- runner

const only = process.env.E2E_ONLY;
const selected = tests.filter((t) => !only || t.name.includes(only));
let passed = 0;
let failed = 0;
let server;
let browser;
try {
  server = await startServer();
  console.log(`e2e: wrangler dev at ${server.url}`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const http = api(server.url);
  for (const t of selected) {
    const started = Date.now();
    try {
      await t.fn({ browser, url: server.url, http });
      passed++;
      console.log(`  ✓ ${t.name} (${Date.now() - started} ms)`);
    } catch (err) {
      failed++;
      console.log(`  ✗ ${t.name} (${Date.now() - started} ms)\n    ${String(err?.stack ?? err).split("\n").join("\n    ")}`);
    }
  }
} catch (err) {
  failed++;
  console.log(`e2e setup failed: ${err?.stack ?? err}`);
} finally {
  await browser?.close().catch(() => undefined);
  await server?.stop();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
