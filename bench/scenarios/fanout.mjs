/**
 * P4 fan-out: one conversation, S live sockets (USERS users × S/USERS devices),
 * a series of messages sent over HTTP; send→receive latency on every socket.
 * With `ctx.fanoutPeer`, beside Socket.IO 4.8 broadcasting to S clients in one
 * room on the same machine (the peer's broadcast mode): the same number of
 * messages, the same gap, ~200-byte bodies, its rounds alternating with ours.
 * With `ctx.fanoutRaw`, beside the raw limit too (bench/raw: one object holding all S
 * sockets, one INSERT then one frame per socket per POST): what the platform's durable
 * write plus S socket sends cost before any of our work.
 * Send and receive times are both taken in this process (performance.now()).
 */
import { io as ioClient } from "socket.io-client";
import { agent, bodyOf, must, openSocketRetry, pool, request, sleep, token } from "../lib/client.mjs";
import { quantile } from "../lib/stats.mjs";

const sioOpts = { transports: ["websocket"], reconnection: false, forceNew: true };

/**
 * One round: `messages` sends `gapMs` apart (`send(k, t0)`), then 1 s for the last frames;
 * send→receive quantiles over what the receivers pushed into `latencies()` since the round began.
 */
async function measureRound(messages, gapMs, send, latencies, expected, who) {
  const sendLat = [];
  for (let k = 0; k < messages; k++) {
    const t0 = performance.now();
    await send(k, t0);
    sendLat.push(performance.now() - t0);
    await sleep(gapMs);
  }
  await sleep(1000);
  const lat = latencies();
  if (lat.length === 0) throw new Error(`no ${who} received anything`);
  return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: Math.max(...lat), missing: expected - lat.length, sendP50: quantile(sendLat, 0.5) };
}

/** S Socket.IO clients in one room of the peer, plus a sender; `round()` broadcasts `messages` and measures. */
async function socketIoRoom(ctx, S, tag) {
  const room = `fan-${tag}`;
  let lat = [];
  const got = new Array(S).fill(0);
  const clients = [];
  const tc = performance.now();
  await pool(S, 16, async (i) => {
    const s = ioClient(ctx.peerUrl, { ...sioOpts, auth: { room } });
    s.on("message", (p) => {
      if (typeof p?.t0 === "number") {
        lat.push(performance.now() - p.t0);
        got[i]++;
      }
    });
    await new Promise((res, rej) => { s.once("connect", res); s.once("connect_error", rej); });
    clients[i] = s;
  });
  const connectSeconds = (performance.now() - tc) / 1000;
  const sender = ioClient(ctx.peerUrl, sioOpts);
  await new Promise((res, rej) => { sender.once("connect", res); sender.once("connect_error", rej); });
  const body = bodyOf(200);
  return {
    connectSeconds,
    round(messages, gapMs) {
      lat = [];
      return measureRound(messages, gapMs, (k, t0) => sender.emitWithAck("broadcast", { room, payload: { t0, k, body } }), () => lat, S * messages, "Socket.IO client");
    },
    close() {
      for (const s of clients) s.disconnect();
      sender.disconnect();
    },
  };
}

/** S sockets on one raw-limit object; `round()` POSTs `messages` broadcasts and measures send→receive. */
async function rawRoom(ctx, S, tag) {
  const name = `fan-${tag}`;
  let lat = [];
  const sockets = [];
  const tc = performance.now();
  await pool(S, 16, async (i) => {
    sockets[i] = await openSocketRetry(`${ctx.rawUrl.replace(/^http/, "ws")}/raw/${name}/live?after=0`, (f) => {
      if (f.type === "message" && typeof f.message?.body?.t0 === "number") lat.push(performance.now() - f.message.body.t0);
    });
  });
  const connectSeconds = (performance.now() - tc) / 1000;
  const a = agent(2);
  return {
    connectSeconds,
    round(messages, gapMs) {
      lat = [];
      const send = async (_k, t0) => {
        const r = await request({ base: ctx.rawUrl, agent: a, method: "POST", path: `/raw/${name}/broadcast`, raw: JSON.stringify(bodyOf(200, { t0 })) });
        if (r.status !== 201) throw new Error(`raw broadcast ${r.status}`);
      };
      return measureRound(messages, gapMs, send, () => lat, S * messages, "raw-limit socket");
    },
    close() {
      a.destroy();
      for (const ws of sockets) ws.terminate();
    },
  };
}

export async function runFanout(ctx) {
  const S = ctx.fanoutSockets;
  const perUser = ctx.fanoutPerUser ?? 10;
  const nUsers = Math.ceil(S / perUser);
  const messages = ctx.quick ? 15 : 40;
  const gapMs = ctx.quick ? 150 : 250;
  const users = Array.from({ length: nUsers }, (_, i) => `fo${ctx.runId}u${i}`);
  const conv = `fo-${ctx.runId}`;
  const sender = await token(users[0], "sender");
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: sender, json: { id: conv, members: users.slice(1) } }, [201]);

  let lat = [];
  const receivedBy = new Array(S).fill(0);
  const onFrame = (i) => (f) => {
    if (f.type !== "message") return;
    const t = performance.now();
    const m = f.message;
    const began = m.body?.t0;
    if (typeof began === "number") {
      lat.push(t - began);
      receivedBy[i]++;
    }
  };
  const sockets = [];
  const tc = performance.now();
  let refused = 0;
  await pool(S, 16, async (i) => {
    const tok = await token(users[i % nUsers], `s${Math.floor(i / nUsers)}`);
    for (;;) {
      try {
        sockets[i] = await openSocketRetry(`${ctx.wsUrl}/v1/conversations/${conv}/live?access_token=${tok}`, onFrame(i));
        return;
      } catch (err) {
        if (err.status === 503 || err.status === 429) { refused++; await sleep((err.retryAfter || 1) * 1000 * ctx.retryCompress); continue; }
        throw err;
      }
    }
  });
  const connectSeconds = (performance.now() - tc) / 1000;
  ctx.log(`  ${S} sockets open in ${connectSeconds.toFixed(1)} s (${refused} refused and retried)`);
  const sio = ctx.fanoutPeer && ctx.peerUrl ? await socketIoRoom(ctx, S, ctx.runId) : null;
  if (sio) ctx.log(`  Socket.IO: ${S} clients in one room in ${sio.connectSeconds.toFixed(1)} s`);
  const raw = ctx.fanoutRaw && ctx.rawUrl ? await rawRoom(ctx, S, ctx.runId) : null;
  if (raw) ctx.log(`  raw limit: ${S} sockets on one object in ${raw.connectSeconds.toFixed(1)} s`);
  const sioRounds = [];
  const rawRounds = [];
  await sleep(500);

  const a = agent(2);
  const rounds = [];
  // Time origin shared with the receivers: performance.now() in this process.
  for (let r = 0; r < (ctx.fanoutRounds ?? (ctx.quick ? 2 : 3)); r++) {
    lat = [];
    const send = (k, t0) => must({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: sender, json: { client_msg_id: `f${r}-${k}`, body: bodyOf(200, { t0 }) } }, [201]);
    rounds.push(await measureRound(messages, gapMs, send, () => lat, S * messages, "socket (sockets dropped?)"));
    ctx.log(`  round ${r + 1}: send→receive p50 ${rounds.at(-1).p50.toFixed(1)} ms, p99 ${rounds.at(-1).p99.toFixed(1)} ms, max ${rounds.at(-1).max.toFixed(1)} ms, missing ${rounds.at(-1).missing}, HTTP send p50 ${rounds.at(-1).sendP50.toFixed(1)} ms`);
    if (sio) {
      const q = await sio.round(messages, gapMs);
      sioRounds.push(q);
      ctx.log(`  round ${r + 1} Socket.IO broadcast: p50 ${q.p50.toFixed(1)} ms, p99 ${q.p99.toFixed(1)} ms, max ${q.max.toFixed(1)} ms, missing ${q.missing}, emit→ack p50 ${q.sendP50.toFixed(1)} ms`);
    }
    if (raw) {
      const q = await raw.round(messages, gapMs);
      rawRounds.push(q);
      ctx.log(`  round ${r + 1} raw limit: p50 ${q.p50.toFixed(1)} ms, p99 ${q.p99.toFixed(1)} ms, max ${q.max.toFixed(1)} ms, missing ${q.missing}, HTTP send p50 ${q.sendP50.toFixed(1)} ms`);
    }
  }
  a.destroy();
  for (const ws of sockets) ws.terminate();
  sio?.close();
  raw?.close();
  return { sockets: S, users: nUsers, devicesPerUser: perUser, messages, gapMs, connectSeconds, rounds, sioRounds, rawRounds, sioConnectSeconds: sio?.connectSeconds ?? null };
}
