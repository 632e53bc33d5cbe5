/**
 * Raw limit (BenchDO: one RPC + one INSERT; one page SELECT) side by side with
 * P1 (durable sends, HTTP and live socket) and P2 (catch-up paging).
 */
import { agent, bodyOf, must, openSocket, pool, request, sleep, token } from "../lib/client.mjs";
import { median, quantile } from "../lib/stats.mjs";

const BODY_BYTES = 200; // the raw limit's rows carry ~200-byte bodies too

/** Raw: N POST /bench/:name/insert at concurrency C. */
async function rawInsert(ctx, name, n, c) {
  const a = agent(c);
  const raw = JSON.stringify(bodyOf(BODY_BYTES));
  const t0 = performance.now();
  const res = await pool(n, c, () => request({ base: ctx.url, agent: a, method: "POST", path: `/bench/${name}/insert`, raw }));
  const s = (performance.now() - t0) / 1000;
  a.destroy();
  const bad = res.filter((r) => r.status !== 201).length;
  if (bad) throw new Error(`raw insert: ${bad} non-201`);
  return n / s;
}

/** P1 over HTTP: N POST /v1/conversations/:id/messages from C devices, one request in flight each. */
async function httpSends(ctx, conv, devices, n, tag) {
  const a = agent(devices.length);
  const t0 = performance.now();
  let shed = 0;
  const res = await pool(n, devices.length, async (i) => {
    const d = devices[i % devices.length];
    for (;;) {
      const r = await request({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: d.token, json: { client_msg_id: `${tag}-${i}`, body: bodyOf(BODY_BYTES) } });
      if (r.status === 429 || r.status === 503) { shed++; await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress); continue; }
      return r;
    }
  });
  const s = (performance.now() - t0) / 1000;
  a.destroy();
  const accepted = res.filter((r) => r.status === 201).length;
  if (accepted !== n) throw new Error(`http send: ${n - accepted} not accepted: ${JSON.stringify(res.find((r) => r.status !== 201)?.body)}`);
  return { rate: accepted / s, shed };
}

/**
 * P1 over live sockets: `devices.length` sockets, each keeping `inflight` sends
 * pipelined (concurrency = sockets × inflight); counts `sent` replies.
 */
async function socketSends(ctx, conv, devices, n, tag, inflight = 1) {
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
    sockets[i] = await openSocket(`${ctx.wsUrl}/v1/conversations/${conv}/live?access_token=${d.token}`, onFrame);
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
  const C = ctx.concurrency;
  const repeats = quick ? 2 : 3;
  const nSend = quick ? 600 : 3000;
  const behind = quick ? 3000 : 10_000;
  const pageRepeats = quick ? 2 : 5;

  // ---- setup: one conversation, 5 users × C/5 devices ----
  const users = Array.from({ length: 5 }, (_, i) => `tp${i}`);
  const devices = [];
  for (let i = 0; i < C; i++) devices.push({ user: users[i % 5], device: `d${i}`, token: await token(users[i % 5], `d${i}`) });
  const conv = `tp-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: devices[0].token, json: { id: conv, members: users.slice(1) } }, [201]);

  const rows = { raw_insert: [], p1_http: [], p1_socket: [], p1_socket_each: [], p1_shed: 0 };
  const pipeSockets = 5; // 5 sockets × C/5 pipelined sends: same concurrency, fan-out to 5 sockets per send
  for (let r = 0; r < repeats; r++) {
    rows.raw_insert.push(await rawInsert(ctx, `ins-${ctx.runId}-${r}`, nSend, C));
    const h = await httpSends(ctx, conv, devices, nSend, `h${r}`);
    rows.p1_http.push(h.rate);
    rows.p1_shed += h.shed;
    rows.p1_socket.push((await socketSends(ctx, conv, devices.slice(0, pipeSockets), nSend, `s${r}`, C / pipeSockets)).rate);
    rows.p1_socket_each.push((await socketSends(ctx, conv, devices, nSend, `e${r}`, 1)).rate);
    ctx.log(`  repeat ${r + 1}/${repeats}: raw insert ${rows.raw_insert.at(-1).toFixed(0)}/s, http send ${rows.p1_http.at(-1).toFixed(0)}/s, socket send ${rows.p1_socket.at(-1).toFixed(0)}/s (${pipeSockets} sockets × ${C / pipeSockets} pipelined), ${rows.p1_socket_each.at(-1).toFixed(0)}/s (${C} sockets × 1)`);
  }

  // ---- raw page SELECT and P2 catch-up (interleaved) ----
  const rawName = `pg-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: `/bench/${rawName}/fill?count=${behind}` });
  const a = agent(4);
  const rawNext = async (after, limit) => {
    const r = await request({ base: ctx.url, agent: a, path: `/bench/${rawName}/page?after=${after}&limit=${limit}` });
    if (r.status !== 200) throw new Error(`raw page ${r.status}`);
    const e = r.body.entries;
    return { count: e.length, last: e.length ? e[e.length - 1].seq : after };
  };
  const reader = { token: await token(users[0], "catchup") };
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
  return { C, pipeSockets, repeats, nSend, behind, pageRepeats, rows, pages, head };
}
