/**
 * Raw limit (bench/raw: a minimal Worker whose Durable Object does one RPC + one
 * INSERT, or one page SELECT) side by side with P1 (durable sends into a
 * 50-member conversation, HTTP at 16 and 50 in flight, and live sockets) and P2
 * (catch-up paging).
 */
import { agent, bodyOf, must, openSocketRetry, pool, request, sleep, token } from "../lib/client.mjs";
import { median, quantile } from "../lib/stats.mjs";
import { waitOutboxDrained } from "../lib/admin.mjs";

const BODY_BYTES = 200; // the raw limit's rows carry ~200-byte bodies too

/**
 * Raw: N POST /raw/:name/insert (bench/raw) at concurrency C. Returns the rate
 * (req/s); `lastRawRowsPerInsert` keeps the SQLite rows one raw INSERT wrote.
 */
export async function rawInsert(ctx, name, n, c) {
  const a = agent(c);
  const raw = JSON.stringify(bodyOf(BODY_BYTES));
  const t0 = performance.now();
  const res = await pool(n, c, () => request({ base: ctx.rawUrl, agent: a, method: "POST", path: `/raw/${name}/insert`, raw }));
  const s = (performance.now() - t0) / 1000;
  a.destroy();
  const bad = res.filter((r) => r.status !== 201).length;
  if (bad) throw new Error(`raw insert: ${bad} non-201`);
  lastRawRowsPerInsert.value = res.reduce((sum, r) => sum + (r.body?.rows_written ?? 0), 0) / n;
  return n / s;
}
export const lastRawRowsPerInsert = { value: null };

/**
 * P1 over HTTP: N POST /v1/conversations/:id/messages from `devices`, one request
 * in flight each (concurrency = devices.length). With `capSeconds`, no new send
 * starts after that long (a very slow server still ends in bounded time); the
 * rate is then of the sends that were made, and `capped` says so.
 */
export async function httpSends(ctx, conv, devices, n, tag, { capSeconds = Infinity } = {}) {
  const a = agent(devices.length);
  const t0 = performance.now();
  const deadline = t0 + capSeconds * 1000;
  let shed = 0;
  let issued = 0;
  const res = await pool(n, devices.length, async (i) => {
    if (performance.now() > deadline) return null;
    issued++;
    const d = devices[i % devices.length];
    for (;;) {
      const r = await request({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: d.token, json: { client_msg_id: `${tag}-${i}`, body: bodyOf(BODY_BYTES) } });
      if (r.status === 429 || r.status === 503) { shed++; await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress); continue; }
      return r;
    }
  });
  const s = (performance.now() - t0) / 1000;
  a.destroy();
  const made = res.filter(Boolean);
  const accepted = made.filter((r) => r.status === 201).length;
  if (accepted !== issued) throw new Error(`http send: ${issued - accepted} not accepted: ${JSON.stringify(made.find((r) => r.status !== 201)?.body)}`);
  return { rate: accepted / s, shed, seconds: s, sent: accepted, capped: issued < n };
}

/**
 * P1 over live sockets: `devices.length` sockets, each keeping `inflight` sends
 * pipelined (concurrency = sockets × inflight); counts `sent` replies.
 */
export async function socketSends(ctx, conv, devices, n, tag, inflight = 1) {
  const sockets = [];
  let issued = 0;
  let acked = 0;
  let errors = 0;
  let finish;
  const done = new Promise((r) => (finish = r));
  let t0 = 0;
  const sendNext = (ws) => {
    if (issued >= n) return;
    const i = issued++;
    ws.send(JSON.stringify({ type: "send", client_msg_id: `${tag}-${i}`, body: bodyOf(BODY_BYTES) }));
  };
  const onFrame = (f, ws) => {
    if (f.type === "sent") {
      if (!f.duplicate) acked++;
      if (acked + errors >= n) finish();
      else sendNext(ws);
    } else if (f.type === "error") {
      errors++;
      if (acked + errors >= n) finish();
      else sendNext(ws);
    }
  };
  await pool(devices.length, 10, async (i) => {
    const d = devices[i];
    sockets[i] = await openSocketRetry(`${ctx.wsUrl}/v1/conversations/${conv}/live?access_token=${d.token}`, onFrame);
  });
  await sleep(200); // let catch-up/live frames settle
  t0 = performance.now();
  for (let k = 0; k < inflight; k++) for (const ws of sockets) sendNext(ws);
  await done;
  const s = (performance.now() - t0) / 1000;
  for (const ws of sockets) ws.terminate();
  if (errors) throw new Error(`socket send: ${errors} error frames`);
  return { rate: acked / s };
}

/** Serial paging from `after` to `head` with page size `limit`; latencies in ms. */
async function pageThrough(next, after, head, limit) {
  const lat = [];
  let pos = after;
  let entries = 0;
  let shed = 0;
  const t0 = performance.now();
  while (pos < head) {
    const s = performance.now();
    const r = await next(pos, limit);
    if (r.shed) { shed++; await sleep(r.wait); continue; }
    lat.push(performance.now() - s);
    entries += r.count;
    if (r.count === 0) throw new Error(`paging stalled at ${pos}`);
    pos = r.last;
  }
  return { rate: entries / ((performance.now() - t0) / 1000), entries, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), pages: lat.length, shed };
}

export async function runThroughput(ctx) {
  const { quick } = ctx;
  const C = ctx.concurrency; // 50
  const C16 = 16;
  const repeats = quick ? 2 : 3;
  const nSend = quick ? 600 : 3000;
  const behind = quick ? 3000 : 10_000;
  const pageRepeats = quick ? 2 : 5;
  const MEMBERS = 50;

  // ---- setup: one conversation of MEMBERS users, one device each ----
  const users = Array.from({ length: MEMBERS }, (_, i) => `tp${ctx.runId}u${i}`);
  const devices = [];
  for (let i = 0; i < C; i++) devices.push({ user: users[i % MEMBERS], device: "d0", token: await token(users[i % MEMBERS], "d0") });
  const conv = `tp-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: devices[0].token, json: { id: conv, members: users.slice(1) } }, [201]);

  const rows = { raw_insert: [], p1_http: [], raw_insert_16: [], p1_http_16: [], p1_socket: [], p1_socket_each: [], p1_shed: 0, p1_shed_16: 0 };
  const pipeSockets = 5; // 5 sockets × C/5 pipelined sends: same concurrency, fan-out to 5 sockets per send
  // Before each burst: the previous burst's member notification (outbox drain) finishes first.
  const settle = async () => { await waitOutboxDrained(ctx, conv, 60_000); };
  for (let r = 0; r < repeats; r++) {
    rows.raw_insert_16.push(await rawInsert(ctx, `ins16-${ctx.runId}-${r}`, nSend, C16));
    await settle();
    const h16 = await httpSends(ctx, conv, devices.slice(0, C16), nSend, `q${r}`);
    rows.p1_http_16.push(h16.rate);
    rows.p1_shed_16 += h16.shed;
    rows.raw_insert.push(await rawInsert(ctx, `ins-${ctx.runId}-${r}`, nSend, C));
    await settle();
    const h = await httpSends(ctx, conv, devices, nSend, `h${r}`);
    rows.p1_http.push(h.rate);
    rows.p1_shed += h.shed;
    await settle();
    rows.p1_socket.push((await socketSends(ctx, conv, devices.slice(0, pipeSockets), nSend, `s${r}`, C / pipeSockets)).rate);
    await settle();
    rows.p1_socket_each.push((await socketSends(ctx, conv, devices, nSend, `e${r}`, 1)).rate);
    ctx.log(`  repeat ${r + 1}/${repeats} (${MEMBERS} members): 16 in flight: raw insert ${rows.raw_insert_16.at(-1).toFixed(0)}/s, http send ${rows.p1_http_16.at(-1).toFixed(0)}/s; ${C} in flight: raw ${rows.raw_insert.at(-1).toFixed(0)}/s, http ${rows.p1_http.at(-1).toFixed(0)}/s, socket ${rows.p1_socket.at(-1).toFixed(0)}/s (${pipeSockets} sockets × ${C / pipeSockets} pipelined), ${rows.p1_socket_each.at(-1).toFixed(0)}/s (${C} sockets × 1)`);
  }

  // ---- raw page SELECT and P2 catch-up (interleaved) ----
  const rawName = `pg-${ctx.runId}`;
  await must({ base: ctx.rawUrl, method: "POST", path: `/raw/${rawName}/fill?count=${behind}` });
  const a = agent(4);
  const rawNext = async (after, limit) => {
    const r = await request({ base: ctx.rawUrl, agent: a, path: `/raw/${rawName}/page?after=${after}&limit=${limit}` });
    if (r.status !== 200) throw new Error(`raw page ${r.status}`);
    const e = r.body.entries;
    return { count: e.length, last: e.length ? e[e.length - 1].seq : after };
  };
  const reader = { token: await token(users[1], "catchup") };
  const summary = await must({ base: ctx.url, path: `/v1/conversations/${conv}`, token: reader.token });
  const head = summary.head_seq;
  const start = Math.max(0, head - behind);
  const oursNext = async (after, limit) => {
    const r = await request({ base: ctx.url, agent: a, path: `/v1/conversations/${conv}/messages?after=${after}&limit=${limit}`, token: reader.token });
    if (r.status === 503 || r.status === 429) return { shed: true, wait: Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress };
    if (r.status !== 200) throw new Error(`page ${r.status} ${JSON.stringify(r.body)}`);
    const m = r.body.messages;
    return { count: m.length, last: r.body.next_after ?? (m.length ? m[m.length - 1].seq : after) };
  };
  const pages = {};
  for (const limit of [100, 500]) {
    pages[limit] = { raw: [], ours: [] };
    for (let r = 0; r < pageRepeats; r++) {
      pages[limit].raw.push(await pageThrough(rawNext, 0, behind, limit));
      pages[limit].ours.push(await pageThrough(oursNext, start, head, limit));
    }
    const m = (list, k) => median(list.map((x) => x[k]));
    ctx.log(`  page ${limit}: raw ${m(pages[limit].raw, "rate").toFixed(0)} entries/s (p50 ${m(pages[limit].raw, "p50").toFixed(1)} ms), ours ${m(pages[limit].ours, "rate").toFixed(0)} entries/s (p50 ${m(pages[limit].ours, "p50").toFixed(1)} p99 ${m(pages[limit].ours, "p99").toFixed(1)} ms)`);
  }
  a.destroy();
  return { C, C16, members: MEMBERS, pipeSockets, repeats, nSend, behind, pageRepeats, rows, pages, head };
}
