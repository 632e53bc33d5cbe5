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
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT, api, assert, assertEqual, buildDemo, countOf, deviceDriver, launchBrowser, newConversation, openDevice, openPair, outPath, report, sleep, startServer, trace, uid, waitFor, watchPage } from "./lib.mjs";

// ---------------------------------------------------------------- tests

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("B offline (context.setOffline), A sends 20; B back online gets all 20 once and in order", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "e2e1");
  const { A, B, close } = await openPair(browser, url, { conv, alice, bob });
  try {
    await B.context.setOffline(true);
    await B.waitStatus("offline");
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
    await B.expectDom(texts, "B's DOM shows all 20, once, in order");
    assertEqual(s.duplicates, 0, "no duplicate deliveries on B");
    assertEqual(s.delivered, 21, "B's handler saw 21 entries (member entry + 20)");
    assertEqual([...A.errors, ...B.errors], [], "no page errors");
  } finally {
    await close();
  }
});

/** The demo's static files from a second origin (localhost:<other port>): a browser app that is not served by the Worker. */
async function staticOrigin() {
  const { createServer } = await import("node:http");
  const { readFile } = await import("node:fs/promises");
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".ico": "image/x-icon", ".map": "application/json" };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = path === "/" ? "index.html" : path.slice(1);
    if (file.includes("..")) return void res.writeHead(400).end();
    try {
      const body = await readFile(join(ROOT, "public", file));
      res.writeHead(200, { "content-type": types[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { origin: `http://localhost:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

test("a page on another origin (CORS): B offline, A sends 5; B back online gets all 5 once and in order", async ({ browser, url, http }) => {
  const site = await staticOrigin();
  const { conv, alice, bob } = await newConversation(http, "e2ecors");
  const { A, B, close } = await openPair(browser, site.origin, { conv, alice, bob, api: url });
  try {
    assert(!url.startsWith(site.origin), `the page (${site.origin}) and the API (${url}) are different origins`);
    await B.context.setOffline(true);
    await B.waitStatus("offline");
    const texts = Array.from({ length: 5 }, (_, i) => `cross ${i + 1}`);
    for (const t of texts) await A.type(t);
    await waitFor("A: 5 confirmed", async () => {
      const s = await A.snap();
      return s.outbox === 0 && s.texts.length === 5 && s.pending.length === 0;
    });
    await B.context.setOffline(false);
    await waitFor("B: 5 messages", async () => (await B.snap()).texts.length >= 5);
    await sleep(500);
    const s = await B.snap();
    assertEqual(s.texts, texts, "B has all 5, once, in order");
    assertEqual(s.duplicates, 0, "no duplicate deliveries on B");
    assertEqual([...A.errors, ...B.errors], [], "no page errors");
    // Offline requests fail on purpose; a CORS refusal or an error status would show here.
    assertEqual([...A.problems, ...B.problems].filter((p) => /CORS|Access-Control|HTTP [45]\d\d/.test(p)), [], "no CORS refusals or error responses");
  } finally {
    await close();
    await site.close();
  }
});

test("B sends 5 while offline, reloads, comes online: each appears once on both sides", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "e2e2");
  const { A, B, close } = await openPair(browser, url, { conv, alice, bob });
  try {
    // Offline both ways: the demo's toggle (persisted across the reload) and the browser's network.
    await B.toggleOnline(false);
    await B.context.setOffline(true);
    await B.waitStatus("offline");
    const texts = Array.from({ length: 5 }, (_, i) => `offline ${i + 1}`);
    for (const t of texts) await B.type(t);
    await waitFor("B: 5 pending", async () => (await B.snap()).outbox === 5);
    await B.context.setOffline(false);
    await B.load(); // reload; the toggle keeps the SDK offline
    let s = await B.snap();
    assertEqual(s.status, "offline", "B stays offline after reload");
    assertEqual(s.pending, texts, "the outbox survived the reload, in order");
    await B.expectDom(texts, "pending messages rendered once each");
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
    await B.expectDom(texts, "B's DOM shows each once");
    await A.expectDom(texts, "A's DOM shows each once");
    const log = await http.call(alice, "phone", "GET", `/v1/conversations/${conv}/messages?after=0`);
    assertEqual(log.body.messages.filter((m) => m.type === "message").length, 5, "the server log holds 5 messages");
    assertEqual([...A.errors, ...B.errors], [], "no page errors");
  } finally {
    await close();
  }
});

test("reload in the middle of a 600-entry sync (page 20) resumes without duplicates", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "e2e3");
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

test("the two-device demo page: no console errors or failed requests on a fresh load and on a reload", async ({ browser, url, receiverPort }) => {
  for (const asset of ["/favicon.svg", "/favicon.ico"]) assertEqual((await fetch(url + asset)).status, 200, `GET ${asset}`);
  const conv = uid("e2e4");
  const users = [uid("alice"), uid("bob")];
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const problems = watchPage(page);
    const devices = `${users[0]}:phone,${users[1]}:laptop`;
    await page.goto(`${url}/?${new URLSearchParams({ conv, devices, receiver: String(receiverPort) })}`);
    for (const load of ["fresh load", "reload"]) {
      if (load === "reload") await page.reload();
      await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
      await waitFor(`${load}: both devices online with the conversation's first entry`, async () =>
        (await page.evaluate(() => window.demo.snapshot())).every((d) => d.status === "online" && d.seqs[0] === 1),
      );
      await waitFor(`${load}: both devices asked the push receiver`, async () => (await page.$$eval("[data-k=push]", (els) => els.map((e) => e.textContent))).every((t) => /^\d+$/.test(t)));
      await sleep(500);
      assertEqual(problems, [], `${load}: no console errors, failed requests or error responses`);
    }
  } finally {
    await context.close();
  }
});

test("a push is announced once: a reload does not announce it again", async ({ browser, url, http, receiverPort }) => {
  const { conv, alice, bob } = await newConversation(http, "e2e5");
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv, peers: [alice], receiver: receiverPort });
  const pushLines = async () => (await B.logLines()).filter((l) => l.includes("push: conversation"));
  try {
    await B.waitStatus("online");
    await B.toggleOnline(false); // its inbox socket closes: the server pushes to it now
    await B.waitStatus("offline");
    assertEqual((await http.call(alice, "phone", "POST", `/v1/conversations/${conv}/messages`, { client_msg_id: "p1", body: { text: "wake up" } })).status, 201, "send");
    await waitFor("B announces the push", async () => (await pushLines()).length > 0, 30_000, 250);
    await sleep(2500); // another poll of the receiver
    const before = await pushLines();
    assert(before.length === 1 && before[0].includes(`push: conversation ${conv} head 2`), `one push announced: ${JSON.stringify(before)}`);
    await B.load();
    await waitFor("B asked the receiver after the reload", async () => (await B.page.textContent(`#dev-${bob}-laptop [data-k=push]`)) === "1");
    await sleep(2500);
    assertEqual(await pushLines(), [], "nothing re-announced after the reload");
    assertEqual(B.problems, [], "no console errors, failed requests or error responses");
  } finally {
    await B.context.close();
  }
});

const send = async (http, user, device, conv, text) => {
  const r = await http.call(user, device, "POST", `/v1/conversations/${conv}/messages`, { client_msg_id: uid("m"), body: { text } });
  assert(r.status === 201, `send "${text}": ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.seq;
};
const create = async (http, user, device, body) => {
  const r = await http.call(user, device, "POST", "/v1/conversations", body);
  assert(r.status === 201, `create: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};
const changeMembers = async (http, user, device, conv, body) => {
  const r = await http.call(user, device, "POST", `/v1/conversations/${conv}/members`, body);
  assert(r.status === 200, `members ${JSON.stringify(body)}: ${r.status} ${JSON.stringify(r.body)}`);
};
const ids = (rows) => rows.map((r) => r.id);

test("the chat list orders by activity, shows unread badges and the newest message; a click or the keyboard opens a chat", async ({ browser, url, http }) => {
  const alice = uid("alice");
  const bob = uid("bob");
  const [c1, c2, c3] = [uid("one"), uid("two"), uid("three")];
  for (const id of [c1, c2, c3]) await create(http, alice, "phone", { id, members: [bob] });
  await send(http, alice, "phone", c2, "two-1");
  await send(http, alice, "phone", c1, "one-1");
  await send(http, alice, "phone", c1, "one-2");
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv: c3, peers: [alice] });
  try {
    await B.waitStatus("online");
    let rows = await B.expectRows("three chats, newest activity first", (r) => ids(r).join() === [c1, c2, c3].join());
    assertEqual(rows.map((r) => [r.name, r.unread, r.badge, r.preview]), [
      [c1, 2, "2", "one-2"],
      [c2, 1, "1", "two-1"],
      [c3, 0, null, `${alice} created the conversation with you`],
    ], "names, unread badges and the newest message of each chat");
    assert(rows.every((r) => r.time.length > 0), `each row shows a time: ${JSON.stringify(rows.map((r) => r.time))}`);
    assertEqual(rows.map((r) => r.current), [false, false, true], "the open chat is marked current");

    // New activity moves a chat to the top; the open one gets no badge (it is read on arrival).
    await send(http, alice, "phone", c3, "three-1");
    rows = await B.expectRows(`${c3} moves to the top`, (r) => r[0]?.id === c3 && r[0].preview === "three-1");
    assertEqual(rows[0].unread, 0, "the open chat has no badge");
    await send(http, alice, "phone", c2, "two-2");
    rows = await B.expectRows(`${c2} moves to the top with 2 unread`, (r) => ids(r).join() === [c2, c3, c1].join() && r[0].unread === 2);
    assertEqual(rows[0].preview, "two-2", "its newest message is shown");

    // A click opens it: the badge goes, the messages show, and the read cursor reaches the server.
    await B.openChat(c2);
    await B.expectDom(["two-1", "two-2"], `${c2} shows its messages`);
    rows = await B.expectRows(`${c2} read`, (r) => r.find((x) => x.id === c2)?.unread === 0 && r.find((x) => x.id === c2)?.current);
    await waitFor("the server counts c2 as read", async () => {
      const sync = await http.call(bob, "laptop", "GET", "/v1/sync?limit=100");
      return sync.body.conversations.find((c) => c.id === c2)?.unread === 0;
    });

    // Keyboard: arrow keys move between chats, Enter opens one.
    await B.page.focus(`${B.sel} .chat-row[data-conv="${c2}"]`);
    await B.page.keyboard.press("ArrowDown");
    assertEqual(await B.page.evaluate(() => document.activeElement?.dataset.conv), c3, "ArrowDown focuses the next chat");
    await B.page.keyboard.press("End");
    assertEqual(await B.page.evaluate(() => document.activeElement?.dataset.conv), c1, "End focuses the last chat");
    await B.page.keyboard.press("Enter");
    await waitFor("Enter opens c1", async () => (await B.snap()).open === c1);
    await B.expectDom(["one-1", "one-2"], `${c1} shows its messages`);
    assertEqual(B.problems, [], "no console errors, failed requests or error responses");
  } finally {
    await B.context.close();
  }
});

test("New chat (+): the dialog creates a conversation, opens it, and the other device lists it", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "newchat");
  const { A, B, close } = await openPair(browser, url, { conv, alice, bob });
  try {
    const name = uid("plans");
    await A.page.click(`${A.sel} .new-chat`);
    const dialog = A.page.locator(`${A.sel} dialog.new-chat-dialog`);
    assert(await dialog.isVisible(), "the dialog opens");
    assertEqual(await dialog.locator("input[name=members]").inputValue(), bob, "the peer is suggested");
    await dialog.locator("input[name=name]").fill("not valid!");
    await dialog.locator("button[type=submit]").click();
    assert((await dialog.locator(".form-error").textContent()).includes("not a valid id"), "a bad name is explained");
    await dialog.locator("input[name=name]").fill(name);
    await dialog.locator("button[type=submit]").click();
    await waitFor("A opened the new chat", async () => (await A.snap()).open === name);
    assert(!(await dialog.isVisible()), "the dialog closes");
    await A.type("first message");
    await A.expectTick("first message", "delivered");
    const rows = await B.expectRows("B lists it first, unread", (r) => r[0]?.id === name && r[0].unread === 1);
    assertEqual(rows[0].preview, "first message", "with its newest message");
    assertEqual([...A.problems, ...B.problems], [], "no console errors, failed requests or error responses");
  } finally {
    await close();
  }
});

test("member entries read as sentences; gaps as one quiet line", async ({ browser, url, http }) => {
  const alice = uid("alice");
  const bob = uid("bob");
  const carol = uid("carol");
  const dave = uid("dave");
  const group = uid("group");
  await create(http, alice, "phone", { id: group, members: [bob, carol] });
  await changeMembers(http, alice, "phone", group, { add: [dave] });
  await changeMembers(http, alice, "phone", group, { remove: [carol] });
  await send(http, alice, "phone", group, "welcome, dave");
  // Retention: keep 3 messages of 7, so the older ones are gone before bob's device looks.
  const kept = uid("kept");
  await create(http, alice, "phone", { id: kept, members: [bob], retention: { max_messages: 3 } });
  for (let i = 1; i <= 7; i++) await send(http, alice, "phone", kept, `kept ${i}`);
  // Retention works in the background: wait until it is done (no more than 3 entries above the floor).
  const retention = await waitFor("retention removed the oldest", async () => {
    const page = await http.call(alice, "phone", "GET", `/v1/conversations/${kept}/messages?after=0`);
    const gap = page.body.gaps.find((g) => g.reason === "retention");
    return gap && page.body.head_seq - page.body.floor_seq <= 3 ? gap : null;
  });
  // Not a member: bob is added after 4 messages.
  const late = uid("late");
  await create(http, alice, "phone", { id: late, members: [carol] });
  for (let i = 1; i <= 4; i++) await send(http, alice, "phone", late, `before bob ${i}`);
  await changeMembers(http, alice, "phone", late, { add: [bob] });
  await send(http, alice, "phone", late, "hi bob");
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv: group, peers: [alice] });
  try {
    await B.waitStatus("online");
    const expected = [`${alice} created the conversation with you and ${carol}`, `${alice} added ${dave}`, `${alice} removed ${carol}`];
    await waitFor("three member sentences", async () => (await B.sentences()).length === 3);
    assertEqual(await B.sentences(), expected, "member entries as sentences, not JSON");
    await B.expectDom(["welcome, dave"], "the message after them");
    const html = await B.page.innerHTML(`${B.sel} .messages`);
    assert(!html.includes("&quot;added&quot;") && !html.includes('"added"'), "no JSON in the conversation");

    await B.openChat(kept);
    const n = retention.to - retention.from + 1;
    await waitFor("the retention gap line", async () => (await B.gapLines()).length === 1);
    assertEqual(await B.gapLines(), [`${n} older messages were removed by retention`], "retention gap as one line");
    const keptTexts = await B.domTexts();
    assert(keptTexts.length > 0 && keptTexts.at(-1) === "kept 7", `the kept messages follow: ${JSON.stringify(keptTexts)}`);

    await B.openChat(late);
    const hidden = await http.call(bob, "laptop", "GET", `/v1/conversations/${late}/messages?after=0`);
    const gap = hidden.body.gaps.find((g) => g.reason === "not_member");
    assert(gap, `the server reports a not_member gap: ${JSON.stringify(hidden.body.gaps)}`);
    await waitFor("the not-member gap line", async () => (await B.gapLines()).length === 1);
    assertEqual(await B.gapLines(), [`You were not a member for ${gap.to - gap.from + 1} messages`], "not-member gap as one line");
    assertEqual(await B.sentences(), [`${alice} added you`], "being added reads as a sentence");
    await B.expectDom(["hi bob"], "only what bob may read");
    assertEqual(B.problems, [], "no console errors, failed requests or error responses");
  } finally {
    await B.context.close();
  }
});

test("receipt ticks: a clock while queued, ✓ sent, ✓✓ delivered when the other device comes online, blue ✓✓ once read", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "tick");
  const other = uid("other");
  await create(http, alice, "phone", { id: other, members: [bob] });
  const { A, B, close } = await openPair(browser, url, { conv, alice, bob });
  try {
    // Bob looks at another chat, then goes offline: alice's message reaches the server only.
    await B.openChat(other);
    await B.toggleOnline(false);
    await B.waitStatus("offline");
    await A.type("are you there?");
    const sent = await A.expectTick("are you there?", "sent");
    assert(/^Sent/.test(sent.label), `the ✓ says sent: ${sent.label}`);
    await sleep(1500); // a receipt round would have come by now
    assertEqual((await A.ticks()).find((t) => t.text === "are you there?").receipt, "sent", "still ✓ while bob is offline");

    // Bob's device comes online and gets it (the chat is not open there): delivered, not read.
    await B.toggleOnline(true);
    const delivered = await A.expectTick("are you there?", "delivered");
    assertEqual(delivered.label, "Delivered to 1 of 1 person", "the ✓✓ says delivered");
    const rows = await B.expectRows("bob sees it unread", (r) => r.find((x) => x.id === conv)?.unread === 1);
    assertEqual(rows.find((x) => x.id === conv).preview, "are you there?", "bob's list shows the newest message");
    await sleep(1500);
    assertEqual((await A.ticks()).find((t) => t.text === "are you there?").receipt, "delivered", "not read before bob opens it");

    // Bob opens the chat: read.
    await B.openChat(conv);
    const read = await A.expectTick("are you there?", "read");
    assertEqual(read.label, "Read", "the blue ✓✓ says read");

    // A message written offline waits with a clock, then goes.
    await A.toggleOnline(false);
    await A.waitStatus("offline");
    await A.type("written offline");
    const queued = await A.expectTick("written offline", "pending");
    assert(/^Waiting to send/.test(queued.label), `the clock says waiting: ${queued.label}`);
    assertEqual(await A.page.locator(`${A.sel} li.pending .tick .icon-clock`).count(), 1, "a clock icon");
    await A.toggleOnline(true);
    await A.expectTick("written offline", "read");
    await B.expectDom(["are you there?", "written offline"], "bob has both, once");
    assertEqual([...A.problems, ...B.problems], [], "no console errors, failed requests or error responses");
  } finally {
    await close();
  }
});

test("receipt ticks in a group: delivered with “read by 1 of 3”, blue when all have read", async ({ browser, url, http }) => {
  const alice = uid("alice");
  const [bob, carol, dave] = [uid("bob"), uid("carol"), uid("dave")];
  const group = uid("group");
  await create(http, alice, "phone", { id: group, members: [bob, carol, dave] });
  const A = await openDevice(browser, url, { user: alice, device: "phone", conv: group, peers: [bob, carol, dave] });
  try {
    await A.waitStatus("online");
    await A.type("group hello");
    await A.expectTick("group hello", "sent");
    const seq = await waitFor("the message's seq", async () => {
      const page = await http.call(alice, "phone", "GET", `/v1/conversations/${group}/messages?after=0`);
      return page.body.messages.find((m) => m.body?.text === "group hello")?.seq;
    });
    const cursors = (user, fields) => http.call(user, "phone", "POST", "/v1/cursors", fields);
    assertEqual((await cursors(carol, { received: { [group]: seq }, read: { [group]: seq } })).status, 200, "carol reads");
    assertEqual((await cursors(bob, { received: { [group]: seq } })).status, 200, "bob's phone gets it");
    const some = await A.expectTick("group hello", "delivered");
    await waitFor("read by 1 of 3", async () => (await A.ticks()).find((t) => t.text === "group hello")?.readBy === "read by 1 of 3");
    assertEqual((await A.ticks()).find((t) => t.text === "group hello").label, "Delivered to 2 of 3 people, read by 1", "the hover text counts");
    assert(some, "delivered");
    assertEqual((await cursors(bob, { read: { [group]: seq } })).status, 200, "bob reads");
    assertEqual((await cursors(dave, { received: { [group]: seq }, read: { [group]: seq } })).status, 200, "dave reads");
    const all = await A.expectTick("group hello", "read");
    assertEqual([all.label, all.readBy], ["Read by all 3", null], "blue ✓✓, no count left to show");
    assertEqual(A.problems, [], "no console errors, failed requests or error responses");
  } finally {
    await A.context.close();
  }
});

test("the Details panel: closed at first, toggles by click and keyboard, explains each figure in one line", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "details");
  await send(http, alice, "phone", conv, "hello");
  const B = await openDevice(browser, url, { user: bob, device: "laptop", conv, peers: [alice] });
  try {
    await B.waitStatus("online");
    await B.expectDom(["hello"], "the message");
    let d = await B.details();
    assert(!d.open && !d.figuresVisible, "closed at first: the figures are out of the way");
    await B.toggleDetails();
    d = await B.details();
    assert(d.open && d.figuresVisible, "a click opens it");
    const names = d.figures.map((f) => f.name);
    for (const k of ["received", "read", "server_received", "checkpoint", "gaps", "outbox"]) assert(names.includes(k), `shows ${k}`);
    for (const f of d.figures) assert(f.legend.length > 10 && !f.legend.includes("\n"), `${f.name} has a one-line legend: ${JSON.stringify(f.legend)}`);
    const s = await B.snap();
    const value = (k) => d.figures.find((f) => f.name === k).value;
    await waitFor("received and checkpoint filled in", async () => {
      d = await B.details();
      return value("received") === String(s.received) && value("checkpoint") !== "-";
    });
    assertEqual(value("received"), "2", "received = the head (member entry + 1 message)");
    await B.toggleDetails();
    assert(!(await B.details()).open, "a second click closes it");
    await B.page.focus(`${B.sel} details.details > summary`);
    await B.page.keyboard.press("Enter");
    assert((await B.details()).open, "Enter opens it");
    await B.page.keyboard.press("Space");
    assert(!(await B.details()).open, "Space closes it");
    assertEqual(B.problems, [], "no console errors, failed requests or error responses");
  } finally {
    await B.context.close();
  }
});

test("auth_required: a banner with a way to get a new token; what was written meanwhile is sent once", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "auth");
  const { A, B, close } = await openPair(browser, url, { conv, alice, bob });
  try {
    assert(!(await A.authBanner()), "no banner while the token works");
    await A.toggleDetails();
    await A.page.click(`${A.sel} .expire-token`);
    await A.waitStatus("auth_required");
    assert(await A.authBanner(), "the banner shows");
    assertEqual(await A.page.getAttribute(`${A.sel} .auth-banner`, "role"), "alert", "announced");
    await A.type("kept while signed out");
    await A.expectTick("kept while signed out", "pending");
    await sleep(1000);
    assertEqual((await B.snap()).texts, [], "nothing left the device");
    await A.page.click(`${A.sel} .renew-token`);
    await A.waitStatus("online");
    assert(!(await A.authBanner()), "the banner goes");
    await waitFor("B gets it", async () => (await B.snap()).texts.length === 1);
    await sleep(500);
    assertEqual((await B.snap()).texts, ["kept while signed out"], "once");
    await A.expectTick("kept while signed out", "read");
    assertEqual([...A.problems, ...B.problems], [], "no console errors, failed requests or error responses");
  } finally {
    await close();
  }
});

test("a 375 px screen: nothing clipped, the chat list and the open chat take turns", async ({ browser, url, http }) => {
  const { conv, alice, bob } = await newConversation(http, "narrow");
  const other = uid("other");
  await create(http, alice, "phone", { id: other, members: [bob] });
  await send(http, alice, "phone", other, "a longer message that has to wrap inside its bubble on a phone-sized screen without pushing anything sideways");
  await send(http, alice, "phone", conv, "hi");
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2 });
  try {
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${url}/?${new URLSearchParams({ conv, devices: `${alice}:phone,${bob}:laptop`, receiver: "off" })}`);
    await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
    const A = deviceDriver(page, { user: alice, device: "phone" });
    const B = deviceDriver(page, { user: bob, device: "laptop" });
    await A.waitStatus("online");
    await B.waitStatus("online");
    await B.expectDom(["hi"], "bob's open chat");
    const overflow = async () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assertEqual(await overflow(), 0, "no horizontal scrolling");
    const outside = await page.evaluate(() =>
      [...document.querySelectorAll(".device-bar *, .composer *, .chat-head *")]
        .filter((e) => e.checkVisibility())
        .map((e) => [e.className.baseVal ?? e.className, e.getBoundingClientRect()])
        .filter(([, r]) => r.width > 0 && (r.left < 0 || r.right > document.documentElement.clientWidth + 0.5))
        .map(([c, r]) => `${c}: ${Math.round(r.left)}..${Math.round(r.right)}`),
    );
    assertEqual(outside, [], "the bars and the composer fit the screen");
    assert(await page.isVisible(`${B.sel} .chat .back`), "a back button to the chat list");
    assert(!(await page.isVisible(`${B.sel} .chat-list`)), "the list is behind it");
    await page.click(`${B.sel} .chat .back`);
    await B.expectRows("the list with both chats", (r) => r.length === 2);
    assert(!(await page.isVisible(`${B.sel} .chat`)), "the list replaces the chat");
    assertEqual(await page.evaluate((s) => document.activeElement?.closest(s) !== null && document.activeElement?.classList.contains("chat-row"), B.sel), true, "focus lands on the list");
    await B.openChat(other);
    await waitFor("the long message", async () => (await B.domTexts()).length === 1);
    assertEqual(await overflow(), 0, "the long message wraps");
    await page.screenshot({ path: outPath("demo-375.png"), fullPage: true });
    assertEqual(problems, [], "no console errors, failed requests or error responses");
  } finally {
    await context.close();
  }
});

test("screenshot: two devices, a conversation open with ticks (e2e/out/demo.png)", async ({ browser, url, http }) => {
  // Fixed names look like a real inbox; this run's server state is its own.
  const [alice, bob, carol] = ["alice", "bob", "carol"];
  await create(http, alice, "phone", { id: "book-club", members: [bob, carol] });
  await send(http, carol, "phone", "book-club", "Chapter 7 for Thursday?");
  await send(http, bob, "laptop", "book-club", "Works for me");
  await create(http, carol, "phone", { id: "weekend-plans", members: [alice, bob] });
  await send(http, carol, "phone", "weekend-plans", "Hike on Saturday?");
  await create(http, alice, "phone", { id: "lunch", members: [bob] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    const problems = watchPage(page);
    await page.goto(`${url}/?${new URLSearchParams({ conv: "lunch", devices: `${alice}:phone,${bob}:laptop`, receiver: "off" })}`);
    await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
    const A = deviceDriver(page, { user: alice, device: "phone" });
    const B = deviceDriver(page, { user: bob, device: "laptop" });
    await A.waitStatus("online");
    await B.waitStatus("online");
    await A.type("Lunch today?");
    await B.expectDom(["Lunch today?"], "bob gets it");
    await B.type("Sure! The noodle place?");
    await A.expectDom(["Lunch today?", "Sure! The noodle place?"], "alice gets the answer");
    await A.type("Perfect, 12:30 there");
    await A.expectTick("Perfect, 12:30 there", "read");
    await B.toggleOnline(false);
    await B.waitStatus("offline");
    await A.type("I'll book a table for two");
    await A.expectTick("I'll book a table for two", "sent");
    await send(http, carol, "phone", "weekend-plans", "Bring snacks");
    await B.expectRows("alice's list", () => true);
    await A.expectRows("alice's list shows weekend-plans unread", (r) => r.find((x) => x.id === "weekend-plans")?.unread === 2);
    await A.expectTick("Lunch today?", "read");
    await sleep(300);
    await page.screenshot({ path: outPath("demo.png"), fullPage: true });
    await A.toggleDetails();
    await sleep(200);
    await page.locator(A.sel).screenshot({ path: outPath("demo-details.png") });
    assertEqual(problems, [], "no console errors, failed requests or error responses");
  } finally {
    await context.close();
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
const { check, finish } = report();
let server;
let browser;
try {
  buildDemo();
  server = await startServer("od-e2e", { pushReceiver: true });
  console.log(`e2e: wrangler dev at ${server.url}, push receiver on port ${server.receiverPort}`);
  browser = await launchBrowser();
  const http = api(server.url);
  for (const t of selected) await check(t.name, () => t.fn({ browser, url: server.url, http, receiverPort: server.receiverPort }));
} catch (err) {
  await check("e2e setup", () => Promise.reject(err));
} finally {
  await browser?.close().catch(() => undefined);
  await server?.stop();
}
finish();
