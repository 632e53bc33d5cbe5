/**
 * P3 reconnect storm: N devices (one per user, users in groups of GROUP sharing
 * one conversation each) with a BACKLOG-entry backlog reconnect within 1 s:
 * GET /v1/sync, page each conversation from the received cursor, POST
 * /v1/cursors. Compared with the same work done serially by one client.
 *
 * P3 with timelines (v1.1, issue #14): the same storm on the same setup (other
 * device ids, same backlog), each device doing GET /v1/sync?timeline_limit=50
 * (one request: the backlog fits the timeline) + POST /v1/cursors, paging
 * backwards only if a timeline says `limited`. Storms alternate (P3, timeline,
 * P3, …). When the server has no timeline_limit yet (no `timeline` in a probe
 * sync), the timeline storms are skipped and reported n/a.
 */
import { agent, must, pool, request, sleep, token } from "../lib/client.mjs";
import { fillConversations } from "../lib/fill.mjs";
import { median } from "../lib/stats.mjs";

const GROUP = 10;
const BACKLOG = 50; // the membership entry + 49 messages
const TIMELINE_LIMIT = 50; // the protocol's maximum; the whole backlog fits

/** One device's reconnect: sync → pages → ack. Returns what it saw. */
async function reconnect(ctx, a, tok, counters) {
  // A request that hangs for 3 minutes is repeated; counted. (A short timeout here would turn
  // queueing into a retry storm: at 2,000 devices a request legitimately waits tens of seconds.)
  const call = callWith(ctx, a, tok, counters);
  const seen = new Map(); // conv -> seqs
  const heads = new Map();
  let since;
  for (;;) {
    const s = await call({ path: `/v1/sync?limit=100${since ? `&since=${encodeURIComponent(since)}` : ""}` });
    for (const c of s.conversations) {
      heads.set(c.id, c.head_seq);
      let after = c.received;
      const seqs = seen.get(c.id) ?? [];
      seen.set(c.id, seqs);
      while (after < c.head_seq) {
        const p = await call({ path: `/v1/conversations/${c.id}/messages?after=${after}&limit=100` });
        for (const m of p.messages) seqs.push(m.seq);
        after = p.next_after;
        if (!p.has_more) break;
      }
    }
    since = s.checkpoint;
    if (!s.has_more) break;
  }
  await call({ method: "POST", path: "/v1/cursors", json: { received: Object.fromEntries(heads) } });
  return { seen, heads };
}

/** One device's reconnect with timelines: sync?timeline_limit → (older pages only if limited) → ack. */
async function reconnectTimeline(ctx, a, tok, counters) {
  const call = callWith(ctx, a, tok, counters);
  const seen = new Map();
  const heads = new Map();
  let since;
  for (;;) {
    const s = await call({ path: `/v1/sync?limit=100&timeline_limit=${TIMELINE_LIMIT}${since ? `&since=${encodeURIComponent(since)}` : ""}` });
    for (const c of s.conversations) {
      heads.set(c.id, c.head_seq);
      const seqs = seen.get(c.id) ?? [];
      seen.set(c.id, seqs);
      const tl = c.timeline;
      if (!tl) throw new Error("sync answered without a timeline");
      for (const m of tl.messages) seqs.push(m.seq);
      let before = tl.limited ? tl.next_before : null;
      while (before !== null && before !== undefined && before > c.received + 1) {
        const p = await call({ path: `/v1/conversations/${c.id}/messages?before=${before}&limit=${Math.min(100, before - 1 - c.received)}` });
        for (const m of p.messages) if (m.seq > c.received) seqs.push(m.seq);
        if (!p.has_more || p.messages.length === 0 || p.messages[0].seq <= c.received + 1) break;
        before = p.next_before;
      }
    }
    since = s.checkpoint;
    if (!s.has_more) break;
  }
  await call({ method: "POST", path: "/v1/cursors", json: { received: Object.fromEntries(heads) } });
  return { seen, heads };
}

function callWith(ctx, a, tok, counters) {
  return async (o) => {
    for (;;) {
      let r;
      try {
        r = await request({ base: ctx.url, agent: a, token: tok, timeoutMs: 180_000, ...o });
      } catch (err) {
        counters.timeouts++;
        continue;
      }
      if (r.status === 429 || r.status === 503) {
        counters[r.status]++;
        await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress);
        continue;
      }
      if (r.status !== 200) throw new Error(`${o.path} → ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      counters.requests++;
      return r.body;
    }
  };
}

function check(results, expected) {
  let lost = 0;
  let dup = 0;
  for (const { seen } of results) {
    for (const [conv, seqs] of seen) {
      const uniq = new Set(seqs);
      dup += seqs.length - uniq.size;
      for (let s = 1; s <= expected.get(conv); s++) if (!uniq.has(s)) lost++;
    }
    if (seen.size === 0) lost += BACKLOG; // saw no conversation at all
  }
  return { lost, dup };
}

export async function runStorm(ctx) {
  const N = ctx.stormDevices;
  // Storms per kind (P3, timeline): 2 each, alternating, in the full run too (keeps it ≤ ~20 min).
  const repeats = 2;
  const groups = Math.ceil(N / GROUP);
  const users = Array.from({ length: N }, (_, i) => `st${ctx.runId}u${i}`);
  const a = agent(Infinity);

  // ---- setup: conversations of GROUP users, each with a BACKLOG-entry log ----
  const t0 = performance.now();
  const expected = new Map();
  const setupAgent = agent(64);
  // New objects are slow to create locally (~30-60/s): modest concurrency.
  await pool(groups, 8, async (g) => {
    const members = users.slice(g * GROUP, (g + 1) * GROUP);
    const owner = await token(members[0], "setup");
    const id = `st-${ctx.runId}-${g}`;
    await must({ base: ctx.url, agent: setupAgent, method: "POST", path: "/v1/conversations", token: owner, json: { id, members: members.slice(1) } }, [201, 409]);
    expected.set(id, BACKLOG);
  });
  // The backlog, through live sockets (setup only).
  const fill = await fillConversations(ctx, await Promise.all(Array.from({ length: groups }, async (_, g) => ({ conv: `st-${ctx.runId}-${g}`, token: await token(users[g * GROUP], "setup"), n: BACKLOG - 1, tag: "b" }))));
  setupAgent.destroy();
  // The conversation index (UserDO) is updated by each conversation's outbox: wait until the last user of each group sees head = BACKLOG.
  const waitStart = performance.now();
  for (let g = 0; g < groups; g++) {
    const u = users[Math.min(N - 1, g * GROUP + GROUP - 1)];
    for (;;) {
      const s = await must({ base: ctx.url, agent: a, path: "/v1/sync", token: await token(u, "probe") });
      if (s.conversations.length === 1 && s.conversations[0].head_seq === BACKLOG) break;
      if (performance.now() - waitStart > 120_000) throw new Error(`index for ${u} never caught up: ${JSON.stringify(s)}`);
      await sleep(200);
    }
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  ctx.log(`  setup: ${N} users, ${groups} conversations, ${BACKLOG}-entry backlog each, in ${setupSeconds.toFixed(1)} s (messages over live sockets${fill.viaHttp ? `; ${fill.viaHttp} conversation(s) over HTTP after a socket failed` : ""})`);
  const tokens = async (device) => Promise.all(users.map((u) => token(u, device)));

  // ---- serial baseline: one client, one device after another ----
  const serialCounters = { 429: 0, 503: 0, requests: 0, timeouts: 0 };
  const serialTokens = await tokens("serial");
  const sa = agent(1);
  const s0 = performance.now();
  const serialResults = [];
  for (const tok of serialTokens) serialResults.push(await reconnect(ctx, sa, tok, serialCounters));
  const serialSeconds = (performance.now() - s0) / 1000;
  sa.destroy();
  const serialCheck = check(serialResults, expected);
  ctx.log(`  serial: ${serialSeconds.toFixed(2)} s for ${N} devices (${serialCounters.requests} requests), lost ${serialCheck.lost}, dup ${serialCheck.dup}`);

  // Does the server answer timelines? (A probe device; reading a timeline moves no cursor.)
  const probe = await must({ base: ctx.url, agent: a, path: `/v1/sync?timeline_limit=${TIMELINE_LIMIT}`, token: await token(users[0], "tlprobe") });
  const timelines = probe.conversations.length > 0 && probe.conversations.every((c) => c.timeline && Array.isArray(c.timeline.messages));
  if (!timelines) ctx.log(`  the server answers sync?timeline_limit without a timeline: timeline storms skipped (n/a)`);

  // ---- storms: all devices start within 1 s; P3 and timeline storms alternate ----
  const storm = async (device, fn) => {
    const toks = await tokens(device);
    const counters = { 429: 0, 503: 0, requests: 0, timeouts: 0 };
    const start = performance.now();
    const perDevice = [];
    const results = await Promise.all(
      toks.map(async (tok, i) => {
        await sleep((i / toks.length) * 1000);
        const res = await fn(ctx, a, tok, counters);
        perDevice.push(performance.now() - start);
        return res;
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const c = check(results, expected);
    return { seconds, ...c, shed429: counters[429], shed503: counters[503], timeouts: counters.timeouts, requests: counters.requests, p50DeviceMs: median(perDevice) };
  };
  const storms = [];
  const timelineStorms = [];
  for (let r = 0; r < repeats; r++) {
    const s = await storm(`storm${r}`, reconnect);
    storms.push(s);
    ctx.log(`  storm ${r + 1}/${repeats}: ${s.seconds.toFixed(2)} s, ${s.requests} requests, lost ${s.lost}, dup ${s.dup}, shed 429=${s.shed429} 503=${s.shed503}, timed out and repeated ${s.timeouts}`);
    if (timelines) {
      const t = await storm(`tl${r}`, reconnectTimeline);
      timelineStorms.push(t);
      ctx.log(`  timeline storm ${r + 1}/${repeats}: ${t.seconds.toFixed(2)} s, ${t.requests} requests, lost ${t.lost}, dup ${t.dup}, shed 429=${t.shed429} 503=${t.shed503}, timed out and repeated ${t.timeouts}`);
    }
  }
  a.destroy();
  return { N, groups, backlog: BACKLOG, setupSeconds, serialSeconds, serialCheck, serialRequests: serialCounters.requests, storms, timelines, timelineLimit: TIMELINE_LIMIT, timelineStorms };
}
