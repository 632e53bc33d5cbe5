/**
 * Peer comparison: the same recovery workload against Socket.IO 4.8
 * (connection-state recovery, in memory) and against us (durable log).
 * N clients (200) are connected and current; they drop; M messages (50) are
 * sent; they reconnect and recover. The reference is the same reconnect on the
 * raw limit (bench/raw: an upgrade the Worker hands to the object, one page
 * read, one hibernatable socket, three frames): what the platform itself costs. Figure: the time from the first reconnect
 * until every client has all M (ours: and its socket said `live`); the ratio is
 * Socket.IO's time ÷ ours (≥ 1 = we recover at least as fast). Entries/s
 * (N × M ÷ time) are kept in the results too.
 */
import { io as ioClient } from "socket.io-client";
import { agent, bodyOf, devProxyResets, must, openSocketRetry, pool, request, sleep, token } from "../lib/client.mjs";

const sioOpts = { transports: ["websocket"], reconnection: false, forceNew: true };
// A reconnecting client gives a hung upgrade up to this long before it tries again (wrangler dev's
// proxy occasionally leaves one hanging under load; the default 30 s would dominate the figure).
const HANDSHAKE_TIMEOUT_MS = 10_000;

function waitFor(cond, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timeout waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export async function recoverSocketIo(ctx, N, M) {
  const url = ctx.peerUrl;
  const got = new Array(N).fill(0);
  const clients = [];
  await pool(N, 20, async (i) => {
    const s = ioClient(url, { ...sioOpts, auth: { role: "member" } });
    s.on("message", () => got[i]++);
    await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
    clients[i] = s;
  });
  const sender = ioClient(url, sioOpts);
  await new Promise((res) => sender.once("connect", res));
  // One message so every member has a recovery offset.
  await sender.emitWithAck("send", { k: -1 });
  await waitFor(() => got.every((g) => g >= 1), 10_000, "warm-up message");
  // Abrupt drop (transport close): the case recovery is for.
  for (const s of clients) s.io.engine.close();
  await waitFor(() => clients.every((s) => !s.connected), 10_000, "disconnects");
  await sleep(300);
  got.fill(0);
  const body = bodyOf(200);
  await pool(M, 8, (k) => sender.emitWithAck("send", { k, body }));
  const t0 = performance.now();
  let recovered = 0;
  for (const s of clients) {
    s.once("connect", () => { if (s.recovered) recovered++; });
    s.connect();
  }
  await waitFor(() => got.every((g) => g >= M), 120_000, "socket.io recovery");
  const seconds = (performance.now() - t0) / 1000;
  const lost = got.reduce((n, g) => n + Math.max(0, M - g), 0);
  for (const s of clients) s.disconnect();
  sender.disconnect();
  return { seconds, rate: (N * M) / seconds, recovered, lost };
}

/**
 * Ours, before a reconnect: M durable sends after the members' cursor, from a device of this repeat's own
 * (the per-device rate limit stays out of the figure); the cursor and the N reconnecting devices' tokens.
 */
async function missedWhileAway(ctx, N, M, conv, users, tag) {
  const sender = await token(users[0], `sender-${tag}`);
  const summary = await must({ base: ctx.url, path: `/v1/conversations/${conv}`, token: sender });
  const cursor = summary.head_seq; // every member is current up to here (it had received everything)
  const a = agent(8);
  await pool(M, 8, (k) => must({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: sender, json: { client_msg_id: `${tag}-${k}`, body: bodyOf(200) } }, [201]));
  a.destroy();
  const toks = await Promise.all(Array.from({ length: N }, (_, i) => token(users[i % users.length], `${tag}d${Math.floor(i / users.length)}`)));
  return { cursor, toks };
}

/** Ours: members were live at the head; drop; M durable sends; reconnect with live?after=<cursor> (catch-up then live). */
export async function recoverOursLive(ctx, N, M, conv, users, tag) {
  const { cursor, toks } = await missedWhileAway(ctx, N, M, conv, users, tag);
  const got = new Array(N).fill(0);
  const live = new Array(N).fill(false);
  const sockets = [];
  let shed = 0;
  const retried0 = devProxyResets.socketRetries;
  const t0 = performance.now();
  await Promise.all(
    toks.map(async (tok, i) => {
      for (;;) {
        try {
          sockets[i] = await openSocketRetry(`${ctx.wsUrl}/v1/conversations/${conv}/live?after=${cursor}&access_token=${tok}`, (f) => {
            if (f.type === "messages") got[i] += f.messages.length;
            else if (f.type === "live") live[i] = true;
          }, { timeoutMs: HANDSHAKE_TIMEOUT_MS });
          return;
        } catch (err) {
          if (err.status === 503 || err.status === 429) { shed++; await sleep((err.retryAfter || 1) * 1000 * ctx.retryCompress); continue; }
          throw err;
        }
      }
    }),
  );
  await waitFor(() => live.every(Boolean), 120_000, "live catch-up");
  const seconds = (performance.now() - t0) / 1000;
  for (const ws of sockets) ws.terminate();
  const lost = got.reduce((n, g) => n + Math.max(0, M - g), 0);
  const dup = got.reduce((n, g) => n + Math.max(0, g - M), 0);
  return { seconds, rate: (N * M) / seconds, lost, dup, shed, upgradeRetries: devProxyResets.socketRetries - retried0 };
}

/** The raw limit's reconnect (bench/raw `GET /raw/:name/live?after`): no auth, no checks, the same three frames. */
export async function recoverRawLive(ctx, N, M, name) {
  const a = agent(8);
  const { rows: after } = (await request({ base: ctx.rawUrl, agent: a, path: `/raw/${name}/stats` })).body;
  await pool(M, 8, () => request({ base: ctx.rawUrl, agent: a, method: "POST", path: `/raw/${name}/insert`, raw: JSON.stringify(bodyOf(200)) }));
  a.destroy();
  const got = new Array(N).fill(0);
  const live = new Array(N).fill(false);
  const sockets = [];
  const retried0 = devProxyResets.socketRetries;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: N }, async (_, i) => {
      sockets[i] = await openSocketRetry(`${ctx.rawUrl.replace(/^http/, "ws")}/raw/${name}/live?after=${after}`, (f) => {
        if (f.type === "messages") got[i] += f.messages.length;
        else if (f.type === "live") live[i] = true;
      }, { timeoutMs: HANDSHAKE_TIMEOUT_MS });
    }),
  );
  await waitFor(() => live.every(Boolean), 120_000, "raw live catch-up");
  const seconds = (performance.now() - t0) / 1000;
  for (const ws of sockets) ws.terminate();
  const lost = got.reduce((n, g) => n + Math.max(0, M - g), 0);
  return { seconds, rate: (N * M) / seconds, lost, upgradeRetries: devProxyResets.socketRetries - retried0 };
}

/**
 * Ours over HTTP: each device GET /v1/conversations/:id/messages?after=<cursor>&limit=<backlog, ≤ 500>
 * until has_more is false (a client knows its backlog from sync's head_seq − received).
 */
export async function recoverOursHttp(ctx, N, M, conv, users, tag) {
  const { cursor, toks } = await missedWhileAway(ctx, N, M, conv, users, tag);
  const a = agent(Infinity);
  let shed = 0;
  let lost = 0;
  const t0 = performance.now();
  await Promise.all(
    toks.map(async (tok) => {
      let after = cursor;
      let n = 0;
      for (;;) {
        const r = await request({ base: ctx.url, agent: a, token: tok, path: `/v1/conversations/${conv}/messages?after=${after}&limit=${Math.min(500, M)}`, timeoutMs: 120_000 });
        if (r.status === 503 || r.status === 429) { shed++; await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress); continue; }
        if (r.status !== 200) throw new Error(`recover page ${r.status}`);
        n += r.body.messages.length;
        after = r.body.next_after;
        if (!r.body.has_more) break;
      }
      lost += Math.max(0, M - n);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  a.destroy();
  return { seconds, rate: (N * M) / seconds, lost, shed };
}

export async function runRecovery(ctx) {
  const N = ctx.recovery.clients;
  const M = ctx.recovery.messages;
  const repeats = ctx.recovery.repeats ?? (ctx.quick ? 2 : 3);
  // Ours: one conversation, N devices (users × devices, ≤ 1000 members).
  const perUser = 5;
  const users = Array.from({ length: Math.ceil(N / perUser) }, (_, i) => `rc${ctx.runId}u${i}`);
  const conv = `rc-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: await token(users[0], "sender"), json: { id: conv, members: users.slice(1) } }, [201]);
  const out = { N, M, sio: [], live: [], http: [], rawLive: [] };
  for (let r = 0; r < repeats; r++) {
    out.sio.push(await recoverSocketIo(ctx, N, M));
    out.live.push(await recoverOursLive(ctx, N, M, conv, users, `l${r}`));
    out.http.push(await recoverOursHttp(ctx, N, M, conv, users, `h${r}`));
    out.rawLive.push(await recoverRawLive(ctx, N, M, `rc-${ctx.runId}`));
    const ms = (x) => `${(x.seconds * 1000).toFixed(0)} ms (${x.rate.toFixed(0)} entries/s)`;
    ctx.log(`  repeat ${r + 1}/${repeats}: socket.io ${ms(out.sio.at(-1))}, ${out.sio.at(-1).recovered}/${N} recovered; ours live ${ms(out.live.at(-1))}; ours http ${ms(out.http.at(-1))}; raw live ${ms(out.rawLive.at(-1))}`);
  }
  return out;
}
