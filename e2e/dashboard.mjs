#!/usr/bin/env node
/**
 * Screenshot test of the operator dashboard (src/admin/dashboard.html).
 *
 * Starts its own `wrangler dev` (detached = its own process group, a free port,
 * a throwaway --persist-to dir; .dev.vars supplies ADMIN_TOKEN=dev-admin-token),
 * generates traffic that moves every signal it can locally (sends, syncs, cursor
 * acks, re-reads below the ack, duplicate sends, socket connects, retention,
 * one push), opens /admin#token=… in Debian's Chromium via playwright-core,
 * checks each of the nine signal charts, the push table, the lookup box and the
 * 401 banner, and saves a screenshot (full page, 1280 wide) to e2e/out/dashboard.png
 * (git-ignored). UPDATE_SCREENSHOTS=1 also copies it to docs/dashboard.png, the
 * README's picture; nothing else writes a tracked file.
 * Prints "N passed, M failed" last and exits non-zero on any failure.
 *
 * Env: as e2e/lib.mjs (CHROMIUM, E2E_KEEP, E2E_OUT), POLLS (default 10) = polls
 * to collect before the screenshot, UPDATE_SCREENSHOTS=1.
 */
import { copyFileSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, api, assert, launchBrowser, outPath, report, sleep, startServer, uid, watchPage } from "./lib.mjs";

const ADMIN_TOKEN = "dev-admin-token";
const SCREENSHOT = outPath("dashboard.png");
const DOCS_SCREENSHOT = join(ROOT, "docs", "dashboard.png");
const POLLS = Number(process.env.POLLS || 10);
/** The nine signals, as the dashboard tags their charts (data-signal = primary metric). */
const SIGNAL_CHARTS = [
  "sync_requests_total",
  "oldest_undelivered_seconds",
  "device_backlog_entries",
  "cursor_advanced_entries_total",
  "duplicate_deliveries_total",
  "socket_connects_total",
  "sync_page_seconds",
  "push_converted_total",
  "retention_unavailable_total",
];

// ---------------------------------------------------------------- traffic

/**
 * A small, steady mix of traffic: alice talks in a group with bob (offline,
 * registered for webhook push) and carol (syncs, acks, re-reads); a retention
 * conversation keeps 3 entries and fresh devices read it from 0; a browser
 * page opens and closes inbox and live sockets.
 */
async function setupTraffic(http) {
  const alice = uid("alice");
  const bob = uid("bob");
  const carol = uid("carol");
  const expect = (res, status, what) => {
    if (res.status !== status) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
  };
  expect(await http.call(bob, "phone", "POST", "/v1/devices", { push: { provider: "webhook", token: uid("tok") } }), 200, "register bob push");
  expect(await http.call(carol, "laptop", "POST", "/v1/devices", {}), 200, "register carol");
  // Carol's phone stays away: its backlog grows (the per-device view of the user lookup).
  expect(await http.call(carol, "phone", "POST", "/v1/devices", {}), 200, "register carol's phone");
  const group = expect(await http.call(alice, "phone", "POST", "/v1/conversations", { members: [bob, carol] }), 201, "create group").id;
  const retained = expect(await http.call(alice, "phone", "POST", "/v1/conversations", { members: [carol], retention: { max_messages: 3 } }), 201, "create retained").id;
  return { alice, bob, carol, group, retained, expect };
}

function startTraffic(http, t, onError) {
  let running = true;
  let round = 0;
  const loop = (async () => {
    while (running) {
      round += 1;
      try {
        // Sends (one of them repeated: a duplicate send).
        const id = uid("m");
        await http.call(t.alice, "phone", "POST", `/v1/conversations/${t.group}/messages`, { client_msg_id: id, body: { text: `hello ${round}` } });
        if (round % 3 === 0) await http.call(t.alice, "phone", "POST", `/v1/conversations/${t.group}/messages`, { client_msg_id: id, body: { text: `hello ${round}` } });
        await http.call(t.alice, "phone", "POST", `/v1/conversations/${t.retained}/messages`, { client_msg_id: uid("r"), body: { text: `r${round}` } });
        // Carol syncs, acks what she has, and every other round re-reads from 0 (duplicate deliveries).
        const sync = await http.call(t.carol, "laptop", "GET", "/v1/sync?limit=100");
        if (sync.status === 200) {
          const head = sync.body.conversations.find((c) => c.id === t.group)?.head_seq ?? 0;
          await http.call(t.carol, "laptop", "POST", "/v1/cursors", { received: { [t.group]: head } });
          if (round % 2 === 0) await http.call(t.carol, "laptop", "GET", `/v1/conversations/${t.group}/messages?after=0&limit=50`);
        }
        // A fresh device reads the retained conversation from 0: entries below the floor are unavailable.
        if (round % 2 === 1) await http.call(t.carol, `tablet${round}`, "GET", `/v1/conversations/${t.retained}/messages?after=0`);
        // Bob is offline with push: every few rounds he comes back and syncs (push-to-sync conversion).
        if (round % 8 === 0) await http.call(t.bob, "phone", "GET", "/v1/sync?limit=100");
      } catch (err) {
        onError(err);
      }
      await sleep(250);
    }
  })();
  return {
    rounds: () => round,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** Opens and closes inbox and live sockets from a browser page (Node 20 has no WebSocket client). */
async function socketChurn(page, url, tokenInbox, tokenLive, conv) {
  await page.goto(`${url}/healthz`);
  await page.evaluate(
    ({ url, tokenInbox, tokenLive, conv }) => {
      const ws = url.replace(/^http/, "ws");
      window.__churn = setInterval(() => {
        const a = new WebSocket(`${ws}/v1/inbox?access_token=${encodeURIComponent(tokenInbox)}`);
        const b = new WebSocket(`${ws}/v1/conversations/${conv}/live?after=0&access_token=${encodeURIComponent(tokenLive)}`);
        setTimeout(() => {
          a.close();
          b.close();
        }, 400);
      }, 700);
    },
    { url, tokenInbox, tokenLive, conv },
  );
}

// ---------------------------------------------------------------- main

const { check, finish } = report();

async function main() {
  let server = null;
  let browser = null;
  let traffic = null;
  try {
    server = await startServer("od-dashboard");
    const { url } = server;
    console.log(`wrangler dev on ${url}`);
    const http = api(url);
    const trafficErrors = [];
    const t = await setupTraffic(http);
    traffic = startTraffic(http, t, (err) => trafficErrors.push(String(err)));

    browser = await launchBrowser();
    const churnContext = await browser.newContext();
    await socketChurn(await churnContext.newPage(), url, await http.token(t.carol, "laptop"), await http.token(t.alice, "phone"), t.group);

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const problems = watchPage(page);
    const external = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(url)) external.push(req.url());
    });
    await page.goto(`${url}/admin#token=${ADMIN_TOKEN}`);

    await check("dashboard loads and polls /admin/api/metrics.json twice", async () => {
      await page.waitForFunction(() => Number(document.body.dataset.polls) >= 2, null, { timeout: 15_000 });
      assert(!(await page.locator("#banner-auth").isVisible()), "no auth banner with the right token");
    });

    await check("the token is taken from the fragment and removed from the address bar", async () => {
      const state = await page.evaluate(() => ({ hash: location.hash, stored: sessionStorage.getItem("offline-delivery.admin-token") }));
      assert(state.hash === "", `hash cleared, got ${JSON.stringify(state.hash)}`);
      assert(state.stored === ADMIN_TOKEN, "token kept in sessionStorage");
    });

    // Let a few more polls land while traffic runs, so every chart has a line worth looking at.
    await page.waitForFunction((n) => Number(document.body.dataset.polls) >= n, POLLS, { timeout: POLLS * 2000 + 15_000 });

    await check("one svg.chart per signal, each with a non-empty polyline", async () => {
      const charts = await page.$$eval("svg.chart", (svgs) =>
        svgs.map((s) => ({ signal: s.dataset.signal, lines: Array.from(s.querySelectorAll("polyline")).map((p) => (p.getAttribute("points") || "").trim()) })),
      );
      assert(charts.length === 9, `9 charts, got ${charts.length}`);
      const missing = [];
      for (const signal of SIGNAL_CHARTS) {
        const chart = charts.find((c) => c.signal === signal);
        if (!chart) missing.push(`${signal}: no chart`);
        else if (!chart.lines.some((p) => p.split(/\s+/).length >= 1 && /\d/.test(p))) missing.push(`${signal}: no polyline points`);
      }
      assert(missing.length === 0, missing.join("; "));
    });

    await check("the signals caused by the traffic show non-zero totals", async () => {
      const res = await fetch(`${url}/admin/api/metrics.json`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert(res.status === 200, `metrics.json ${res.status}`);
      const snap = await res.json();
      const total = (name) => snap.counters.filter((c) => c.name === name).reduce((s, c) => s + c.value, 0);
      const hist = (name) => snap.histograms.find((h) => h.name === name)?.count ?? 0;
      const zero = [
        "sync_requests_total", "cursor_advanced_entries_total", "duplicate_deliveries_total", "duplicate_sends_total",
        "socket_connects_total", "push_sent_total", "retention_expired_total", "retention_unavailable_total",
      ].filter((n) => !(total(n) > 0));
      for (const h of ["device_backlog_entries", "sync_page_seconds"]) if (!(hist(h) > 0)) zero.push(h);
      assert(zero.length === 0, `still zero: ${zero.join(", ")}`);
      assert(snap.gauges.some((g) => g.name === "oldest_undelivered_seconds"), "oldest_undelivered_seconds reported");
    });

    await check("each card shows a current value", async () => {
      const values = await page.$$eval(".card .value", (els) => els.map((e) => e.textContent.trim()));
      assert(values.length === 9 && values.every((v) => v.length > 0), JSON.stringify(values));
    });

    await check("push provider table lists the four providers", async () => {
      await page.waitForFunction(() => document.querySelectorAll("#push tbody tr").length === 4, null, { timeout: 15_000 });
      const providers = await page.$$eval("#push tbody tr td:first-child", (tds) => tds.map((td) => td.textContent.trim()));
      assert(JSON.stringify(providers) === JSON.stringify(["webhook", "webpush", "apns", "fcm"]), JSON.stringify(providers));
    });

    await check("user lookup renders the per-device backlog and the JSON", async () => {
      await page.selectOption("#lookup-kind", "users");
      await page.fill("#lookup-id", t.carol);
      await page.click("#lookup-form button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#lookup-out").textContent.includes("backlog_entries"), null, { timeout: 10_000 });
      const rows = await page.$$eval("#lookup-devices tbody tr", (trs) => trs.length);
      assert(rows === 2, `two device rows (laptop, phone), got ${rows}`);
      const phone = JSON.parse(await page.textContent("#lookup-out")).devices.find((d) => d.device_id === "phone");
      assert(phone && phone.backlog_entries > 0, `phone has a backlog: ${JSON.stringify(phone)}`);
    });

    await check("conversation lookup renders floor_seq and expired_total", async () => {
      await page.selectOption("#lookup-kind", "conversations");
      await page.fill("#lookup-id", t.retained);
      await page.click("#lookup-form button[type=submit]");
      await page.waitForFunction(() => document.querySelector("#lookup-out").textContent.includes("expired_total"), null, { timeout: 10_000 });
      const body = JSON.parse(await page.textContent("#lookup-out"));
      assert(body.floor_seq > 0 && body.expired_total > 0, JSON.stringify(body));
    });

    // The screenshot shows a user lookup (its device table is the "backlog by device" view).
    await page.selectOption("#lookup-kind", "users");
    await page.fill("#lookup-id", t.carol);
    await page.click("#lookup-form button[type=submit]");
    await page.waitForFunction(() => document.querySelectorAll("#lookup-devices tbody tr").length > 0, null, { timeout: 10_000 }).catch(() => undefined);
    // One more poll so the charts are drawn at their final width.
    const polls = await page.evaluate(() => Number(document.body.dataset.polls));
    await page.waitForFunction((n) => Number(document.body.dataset.polls) > n, polls, { timeout: 10_000 });

    await check(`the screenshot is saved (full page, 1280 wide): ${SCREENSHOT}`, async () => {
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const png = readFileSync(SCREENSHOT);
      assert(png.subarray(1, 4).toString() === "PNG", "is a PNG");
      const width = png.readUInt32BE(16);
      assert(width === 1280, `width 1280, got ${width}`);
      assert(statSync(SCREENSHOT).size > 10_000, "not blank");
      if (process.env.UPDATE_SCREENSHOTS === "1") {
        copyFileSync(SCREENSHOT, DOCS_SCREENSHOT);
        console.log(`    UPDATE_SCREENSHOTS=1: copied to ${DOCS_SCREENSHOT}`);
      }
    });

    await check("no page or console errors, failed requests or error responses, and no request leaves the origin", async () => {
      assert(problems.length === 0, problems.join("; "));
      assert(external.length === 0, external.join(", "));
    });

    await check("a wrong token shows the 401 banner and no charts data", async () => {
      const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const p = await other.newPage();
      await p.goto(`${url}/admin#token=not-the-token`);
      await p.waitForSelector("#banner-auth.show", { timeout: 10_000 });
      const text = await p.textContent("#banner-auth");
      assert(/401/.test(text), `banner mentions 401: ${text}`);
      assert(Number(await p.evaluate(() => document.body.dataset.polls)) === 0, "no successful poll");
      // Entering the right token recovers.
      await p.fill("#token-input", ADMIN_TOKEN);
      await p.click("#token-form button[type=submit]");
      await p.waitForFunction(() => Number(document.body.dataset.polls) >= 1, null, { timeout: 10_000 });
      assert(!(await p.locator("#banner-auth").isVisible()), "banner hidden after a good token");
      await other.close();
    });

    await check("no page without a token asks for one", async () => {
      const other = await browser.newContext();
      const p = await other.newPage();
      await p.goto(`${url}/admin`);
      await p.waitForSelector("#banner-auth.show", { timeout: 10_000 });
      assert(await p.locator("#token-input").isVisible(), "token input shown");
      await other.close();
    });

    await check("traffic ran without errors", async () => {
      assert(traffic.rounds() > 5, `rounds ${traffic.rounds()}`);
      assert(trafficErrors.length === 0, trafficErrors.slice(0, 3).join("; "));
    });
  } catch (err) {
    await check("setup", () => Promise.reject(err));
  } finally {
    if (traffic) await traffic.stop().catch(() => undefined);
    if (browser) await browser.close().catch(() => undefined);
    if (server) await server.stop();
  }
  finish();
}

main();
