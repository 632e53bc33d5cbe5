/**
 * P6 inbox screen (issue #14): one device was offline while CONVS conversations
 * got PER_CONV messages each. How many requests, and how long, until it can draw
 * a complete inbox: every conversation's summary plus its newest SCREEN messages?
 *
 *   (a) timeline sync (v1.1): GET /v1/sync?timeline_limit=20, paged with
 *       checkpoints while has_more (50 conversations fit one page of 100).
 *   (b) v1: GET /v1/sync (paged the same way), then one
 *       GET /v1/conversations/:id/messages?limit=20 (newest first) per
 *       conversation, 6 in flight (a browser's connections per origin); and the
 *       same one request at a time.
 *
 * Each repeat uses a device that was current before the messages were sent
 * (received = the membership entry), so each variant starts from the same state;
 * reading moves no cursor. Variants alternate; medians over repeats. The screen
 * is checked: every conversation present, its newest SCREEN seqs exactly.
 * A server without timeline_limit (no `timeline` in the answer) gives n/a for (a).
 */
import { agent, must, pool, request, sleep, token } from "../lib/client.mjs";
import { fillConversations } from "../lib/fill.mjs";
import { median } from "../lib/stats.mjs";

const SCREEN = 20;
const V1_PARALLEL = 6;

async function get(ctx, a, tok, path, counters) {
  for (;;) {
    const r = await request({ base: ctx.url, agent: a, token: tok, path, timeoutMs: 120_000 });
    if (r.status === 429 || r.status === 503) { counters.shed++; await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress); continue; }
    if (r.status !== 200) throw new Error(`GET ${path} → ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    counters.requests++;
    return r.body;
  }
}

/** Complete when every expected conversation is listed with exactly its newest SCREEN seqs. */
function checkScreen(screen, expected) {
  let wrong = 0;
  for (const [id, head] of expected) {
    const seqs = screen.get(id);
    if (!seqs) { wrong++; continue; }
    const want = Array.from({ length: Math.min(SCREEN, head) }, (_, i) => head - Math.min(SCREEN, head) + 1 + i);
    if (seqs.length !== want.length || seqs.some((s, i) => s !== want[i])) wrong++;
  }
  return wrong;
}

async function timelineScreen(ctx, tok) {
  const a = agent(1);
  const counters = { requests: 0, shed: 0 };
  const screen = new Map();
  const t0 = performance.now();
  let since;
  let supported = true;
  for (;;) {
    const s = await get(ctx, a, tok, `/v1/sync?timeline_limit=${SCREEN}${since ? `&since=${encodeURIComponent(since)}` : ""}`, counters);
    for (const c of s.conversations) {
      if (!c.timeline) { supported = false; break; }
      screen.set(c.id, c.timeline.messages.map((m) => m.seq));
    }
    if (!supported) break;
    since = s.checkpoint;
    if (!s.has_more) break;
  }
  const ms = performance.now() - t0;
  a.destroy();
  return { supported, ms, requests: counters.requests, shed: counters.shed, screen };
}

async function v1Screen(ctx, tok, parallel) {
  const a = agent(parallel);
  const counters = { requests: 0, shed: 0 };
  const screen = new Map();
  const t0 = performance.now();
  const convs = [];
  let since;
  for (;;) {
    const s = await get(ctx, a, tok, `/v1/sync${since ? `?since=${encodeURIComponent(since)}` : ""}`, counters);
    convs.push(...s.conversations);
    since = s.checkpoint;
    if (!s.has_more) break;
  }
  await pool(convs.length, parallel, async (i) => {
    const p = await get(ctx, a, tok, `/v1/conversations/${convs[i].id}/messages?limit=${SCREEN}`, counters);
    screen.set(convs[i].id, p.messages.map((m) => m.seq));
  });
  const ms = performance.now() - t0;
  a.destroy();
  return { ms, requests: counters.requests, shed: counters.shed, screen };
}

export async function runInbox(ctx) {
  const CONVS = 50;
  const PER_CONV = ctx.quick ? 60 : 200;
  const repeats = ctx.quick ? 3 : 5;
  const owner = `ib${ctx.runId}`;
  const sender = `ib${ctx.runId}s`;
  const senderTok = await token(sender, "d0");
  // One sending device per conversation: one device's PER_CONV × CONVS sends would trip the per-device rate limit.
  const senderToks = await Promise.all(Array.from({ length: CONVS }, (_, k) => token(sender, `d${k}`)));
  const ids = Array.from({ length: CONVS }, (_, k) => `ib-${ctx.runId}-${k}`);
  const t0 = performance.now();
  const setupAgent = agent(32);
  await pool(CONVS, 8, (k) => must({ base: ctx.url, agent: setupAgent, method: "POST", path: "/v1/conversations", token: senderTok, json: { id: ids[k], members: [owner] } }, [201, 409]));
  // The devices that will come back: current (received = the membership entry at seq 1) before anything is sent.
  const deviceToks = [];
  for (let r = 0; r < repeats; r++) {
    for (const v of ["tl", "v1", "v1s"]) {
      const tok = await token(owner, `${v}${r}`);
      await must({ base: ctx.url, agent: setupAgent, method: "POST", path: "/v1/cursors", token: tok, json: { received: Object.fromEntries(ids.map((id) => [id, 1])) } });
      deviceToks.push([`${v}${r}`, tok]);
    }
  }
  const toks = new Map(deviceToks);
  // The messages, through live sockets (setup only; one sending device per conversation).
  const fill = await fillConversations(ctx, ids.map((conv, k) => ({ conv, token: senderToks[k], n: PER_CONV, tag: "m" })));
  setupAgent.destroy();
  const head = 1 + PER_CONV;
  const expected = new Map(ids.map((id) => [id, head]));
  // Wait for the owner's conversation index (fed by each conversation's outbox) to show every head.
  const probe = await token(owner, "probe");
  const waitStart = performance.now();
  for (;;) {
    const s = await must({ base: ctx.url, path: "/v1/sync?limit=100", token: probe });
    if (s.conversations.length === CONVS && s.conversations.every((c) => c.head_seq === head)) break;
    if (performance.now() - waitStart > 120_000) throw new Error(`inbox index never caught up (${s.conversations.filter((c) => c.head_seq === head).length}/${CONVS})`);
    await sleep(200);
  }
  const setupSeconds = (performance.now() - t0) / 1000;
  ctx.log(`  setup: ${CONVS} conversations × ${PER_CONV} messages to one user in ${setupSeconds.toFixed(1)} s (sent over live sockets${fill.viaHttp ? `; ${fill.viaHttp} conversation(s) over HTTP after a socket failed` : ""})`);

  const out = { convs: CONVS, perConv: PER_CONV, screen: SCREEN, v1Parallel: V1_PARALLEL, repeats, setupSeconds, timeline: [], v1: [], v1serial: [], supported: true };
  for (let r = 0; r < repeats; r++) {
    const runs = [
      async () => {
        if (!out.supported) return;
        const t = await timelineScreen(ctx, toks.get(`tl${r}`));
        if (!t.supported) { out.supported = false; ctx.log("  the server answers sync?timeline_limit without a timeline: (a) n/a"); return; }
        out.timeline.push({ ms: t.ms, requests: t.requests, shed: t.shed, wrong: checkScreen(t.screen, expected) });
      },
      async () => {
        const v = await v1Screen(ctx, toks.get(`v1${r}`), V1_PARALLEL);
        out.v1.push({ ms: v.ms, requests: v.requests, shed: v.shed, wrong: checkScreen(v.screen, expected) });
      },
      async () => {
        const v = await v1Screen(ctx, toks.get(`v1s${r}`), 1);
        out.v1serial.push({ ms: v.ms, requests: v.requests, shed: v.shed, wrong: checkScreen(v.screen, expected) });
      },
    ];
    // Alternate which goes first (the first one after a pause pays for waking objects).
    for (let i = 0; i < runs.length; i++) await runs[(i + r) % runs.length]();
    const last = (l) => (l.length ? `${l.at(-1).requests} req ${l.at(-1).ms.toFixed(0)} ms${l.at(-1).wrong ? ` (${l.at(-1).wrong} wrong)` : ""}` : "n/a");
    ctx.log(`  repeat ${r + 1}/${repeats}: timeline ${last(out.timeline)}; v1 ×${V1_PARALLEL} ${last(out.v1)}; v1 serial ${last(out.v1serial)}`);
  }
  const m = (l, k) => (l.length ? median(l.map((x) => x[k])) : null);
  out.medians = {
    timeline: { ms: m(out.timeline, "ms"), requests: m(out.timeline, "requests") },
    v1: { ms: m(out.v1, "ms"), requests: m(out.v1, "requests") },
    v1serial: { ms: m(out.v1serial, "ms"), requests: m(out.v1serial, "requests") },
  };
  return out;
}
