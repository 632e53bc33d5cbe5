#!/usr/bin/env node
/**
 * /docs as a reader sees it, in Debian's Chromium against a throwaway wrangler
 * dev: a sidebar with one entry per tag and every operation's full path (no
 * clipped labels), readable stable anchors, the request example of a send,
 * query integers shown as integers with their ranges, and a phone-width page
 * without horizontal scrolling. Screenshots at 1280 and 375 px go to e2e/out/.
 */
import { assert, assertEqual, launchBrowser, outPath, report, startServer } from "./lib.mjs";

const SEND = "post-v1-conversations-id-messages";
const PAGE = "get-v1-conversations-id-messages";

const server = await startServer("od-docs");
const browser = await launchBrowser();
const r = report();

async function open(width, height) {
  const page = await browser.newPage({ viewport: { width, height } });
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
  await page.goto(`${server.url}/docs`);
  await page.waitForSelector("nav a[href^='#']", { timeout: 15_000 });
  return { page, errors };
}

try {
  const spec = await (await fetch(`${server.url}/v1/openapi.json`)).json();
  const operations = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  const used = new Set(Object.values(spec.paths).flatMap((ops) => Object.values(ops).map((op) => op.tags[0])));
  // In the document's order of tags, then any it does not list.
  const tags = [...new Set([...(spec.tags ?? []).map((t) => t.name).filter((t) => used.has(t)), ...used])];
  const { page: wide, errors } = await open(1280, 900);

  await r.check("the sidebar lists every operation once, with its whole path", async () => {
    const links = await wide.$$eval("nav a", (as) =>
      as.map((a) => ({
        label: `${a.querySelector(".m")?.textContent ?? ""} ${a.querySelector(".path")?.textContent ?? ""}`.trim(),
        clipped: [...a.querySelectorAll("span")].some((s) => s.scrollWidth > s.clientWidth + 1 || getComputedStyle(s).textOverflow === "ellipsis"),
        href: a.getAttribute("href"),
      })),
    );
    const ops = links.filter((l) => l.href !== "#frames");
    assertEqual(ops.map((l) => l.label).sort(), [...operations].sort(), "sidebar labels are the operations");
    assertEqual(new Set(links.map((l) => l.label)).size, links.length, "sidebar labels are unique");
    const clipped = links.filter((l) => l.clipped).map((l) => l.label);
    assertEqual(clipped, [], "no sidebar label is clipped");
  });

  await r.check("one sidebar heading per tag (realtime once, with the frames)", async () => {
    const headings = await wide.$$eval("nav h3", (hs) => hs.map((h) => h.textContent.trim().toLowerCase()));
    assertEqual(headings, tags, "headings are the tags, in order, once each");
    const framesUnder = await wide.$eval("nav a[href='#frames']", (a) => {
      let el = a.previousElementSibling;
      while (el && el.tagName !== "H3") el = el.previousElementSibling;
      return el?.textContent.trim().toLowerCase();
    });
    assertEqual(framesUnder, "realtime", "the frames link sits under realtime");
  });

  await r.check("anchors are readable and stable (method-path), and every one has its target", async () => {
    const hrefs = await wide.$$eval("nav a", (as) => as.map((a) => a.getAttribute("href")));
    for (const href of hrefs) {
      assert(/^#[a-z0-9]+(-[a-z0-9]+)*$/.test(href) && !/^#op\d+$/.test(href), `readable anchor: ${href}`);
      assert(await wide.$(href), `${href} has a target`);
    }
    assert(hrefs.includes(`#${SEND}`), `#${SEND} is linked`);
    const direct = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await direct.goto(`${server.url}/docs#${SEND}`);
    await direct.waitForSelector(`#${SEND}`);
    await direct.waitForFunction((id) => {
      const top = document.getElementById(id).getBoundingClientRect().top;
      return top >= 0 && top < 100;
    }, SEND, { timeout: 5000 });
    await direct.close();
  });

  await r.check("POST /v1/conversations/{id}/messages shows its request example", async () => {
    const text = await wide.$eval(`#${SEND} .example pre`, (pre) => pre.textContent);
    const example = JSON.parse(text);
    assert(typeof example.client_msg_id === "string" && "body" in example, `the example is a send: ${text}`);
    await wide.$eval(`#${SEND}`, (el) => el.scrollIntoView());
    await wide.screenshot({ path: outPath("docs-1280-send.png") });
  });

  await r.check("limit is shown as an integer 1..500 (not a string with a pattern)", async () => {
    const row = await wide.$$eval(`#${PAGE} tr`, (rows) =>
      rows.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())).find((cells) => cells[0] === "limit"),
    );
    assert(row, "a limit parameter row");
    assertEqual(row[2], "integer, 1..500", "limit's type");
    const syncRow = await wide.$$eval("#get-v1-sync tr", (rows) =>
      rows.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())).find((cells) => cells[0] === "timeline_limit"),
    );
    assertEqual(syncRow?.[2], "integer, 0..50", "timeline_limit's type");
    await wide.evaluate(() => window.scrollTo(0, 0));
    await wide.screenshot({ path: outPath("docs-1280.png") });
  });

  await r.check("at 375 px the page does not scroll sideways and the sidebar does not cover it", async () => {
    const { page: phone } = await open(375, 812);
    const metrics = await phone.evaluate(() => {
      const nav = document.querySelector("nav");
      const ops = document.getElementById("ops").getBoundingClientRect();
      return {
        scroll: document.documentElement.scrollWidth,
        body: document.body.scrollWidth,
        width: window.innerWidth,
        navPosition: getComputedStyle(nav).position,
        ops: { left: Math.round(ops.left), right: Math.round(ops.right) },
        wide: [...document.querySelectorAll("body *")]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest("pre, table"))
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className ? `.${el.className}` : ""}`),
      };
    });
    await phone.screenshot({ path: outPath("docs-375.png") });
    await phone.$eval(`#${SEND}`, (el) => el.scrollIntoView());
    await phone.screenshot({ path: outPath("docs-375-send.png") });
    await phone.close();
    assert(metrics.scroll <= metrics.width && metrics.body <= metrics.width, `no horizontal overflow: ${JSON.stringify(metrics)}`);
    assert(metrics.navPosition !== "fixed" && metrics.navPosition !== "sticky", `the sidebar flows with the page on a phone: ${metrics.navPosition}`);
    assert(metrics.ops.left >= 0 && metrics.ops.right <= metrics.width, `operations fit the screen: ${JSON.stringify(metrics.ops)}`);
    assertEqual(metrics.wide, [], "no element sticks out past the right edge");
  });

  await r.check("the page loaded without errors", async () => {
    assertEqual(errors, [], "console and page errors");
  });
} finally {
  await browser.close();
  await server.stop();
}
r.finish();
