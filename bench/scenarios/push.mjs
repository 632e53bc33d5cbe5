/**
 * P5 push. (a) 1,000 messages over W seconds to one offline device with a
 * webhook target → provider calls. (b) many offline devices pushed at once
 * while the provider answers 429 + Retry-After → observed request rate vs the
 * PUSH_RATE_PER_SECOND cap.
 */
import { readDevVars } from "../../scripts/lib/dev-auth.mjs";
import { agent, bodyOf, must, pool, request, sleep, token } from "../lib/client.mjs";

/** The webhook gate's counters and dead letters (admin API). */
async function gateStats(ctx) {
  const admin = readDevVars().ADMIN_TOKEN;
  if (!admin) return null;
  const r = await request({ base: ctx.url, path: "/admin/api/push", token: admin });
  if (r.status !== 200) return null;
  const list = Array.isArray(r.body) ? r.body : r.body.gates ?? r.body.providers ?? [];
  return list.find((g) => g.provider === "webhook") ?? null;
}

export async function runPushCollapse(ctx) {
  const { hook } = ctx;
  const W = ctx.push.windowSeconds;
  const N = 1000;
  const target = `pc${ctx.runId}`;
  const sender = `pc${ctx.runId}s`;
  const offline = await token(target, "phone");
  const tokenStr = `tok-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: "/v1/devices", token: offline, json: { push: { provider: "webhook", token: tokenStr } } });
  const conv = `pc-${ctx.runId}`;
  const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => token(sender, `d${i}`)));
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: senders[0], json: { id: conv, members: [target] } }, [201]);
  const a = agent(16);
  const t0 = Date.now();
  let late = 0;
  await pool(N, 16, async (i) => {
    const due = t0 + (i * W * 1000) / N;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -250) late++;
    await must({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: senders[i % senders.length], json: { client_msg_id: `p${i}`, body: bodyOf(120) } }, [201]);
  });
  const sendSeconds = (Date.now() - t0) / 1000;
  // Anything still pending fires after the aggregation delay / device interval; wait them out.
  await sleep(ctx.push.settleSeconds * 1000);
  a.destroy();
  const calls = hook.calls.filter((c) => c.body?.token === tokenStr);
  return {
    messages: N,
    windowSeconds: W,
    sendSeconds,
    lateSends: late,
    providerCalls: calls.length,
    unsigned: calls.filter((c) => !c.signed).length,
    callOffsetsSeconds: calls.map((c) => (c.at - t0) / 1000),
  };
}

export async function runPushThrottle(ctx) {
  const { hook } = ctx;
  const D = ctx.push.throttleDevices;
  const cap = ctx.push.ratePerSecond;
  const burst = ctx.push.burst;
  const users = Array.from({ length: D }, (_, i) => `pt${ctx.runId}u${i}`);
  const tokenOf = (i) => `pt-${ctx.runId}-${i}`;
  const a = agent(32);
  await pool(D, 32, async (i) => {
    await must({ base: ctx.url, agent: a, method: "POST", path: "/v1/devices", token: await token(users[i], "phone"), json: { push: { provider: "webhook", token: tokenOf(i) } } });
  });
  const sender = await token(`pt${ctx.runId}s`, "d0");
  const conv = `pt-${ctx.runId}`;
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: sender, json: { id: conv, members: users } }, [201]);
  const mine = new Set(users.map((_, i) => tokenOf(i)));
  // The provider throttles from its first call for throttleSeconds, with Retry-After.
  const retryAfter = ctx.push.retryAfterSeconds;
  hook.armThrottle(ctx.push.throttleSeconds * 1000, retryAfter);
  const t0 = Date.now();
  await must({ base: ctx.url, method: "POST", path: `/v1/conversations/${conv}/messages`, token: sender, json: { client_msg_id: "go", body: bodyOf(80) } }, [201]);
  const deadline = t0 + ctx.push.throttleTimeoutSeconds * 1000;
  for (;;) {
    const mineCalls = hook.calls.filter((c) => mine.has(c.body?.token));
    const delivered = new Set(mineCalls.filter((c) => !c.throttled).map((c) => c.body.token));
    if (delivered.size >= D || Date.now() > deadline) break;
    await sleep(200);
  }
  hook.throttle(0, 1);
  a.destroy();
  const gate = await gateStats(ctx);
  const deadMine = gate ? gate.dead_letters.filter((d) => users.includes(d.user_id)) : [];
  const calls = hook.calls.filter((c) => mine.has(c.body?.token)).sort((x, y) => x.at - y.at);
  const first = calls[0]?.at ?? t0;
  const last = calls.at(-1)?.at ?? t0;
  // Peak: most calls in any 1-second window.
  let peak = 0;
  for (let i = 0, j = 0; j < calls.length; j++) {
    while (calls[j].at - calls[i].at >= 1000) i++;
    peak = Math.max(peak, j - i + 1);
  }
  // Calls that arrived while the provider's Retry-After from an earlier 429 was still running.
  let duringPause = 0;
  let pausedUntil = 0;
  for (const c of calls) {
    if (c.at < pausedUntil) duringPause++;
    if (c.throttled) pausedUntil = Math.max(pausedUntil, c.at + retryAfter * 1000);
  }
  const delivered = new Set(calls.filter((c) => !c.throttled).map((c) => c.body.token)).size;
  const span = Math.max(0.001, (last - first) / 1000);
  // Sustained rate once the provider's pause is over (the bucket starts empty after a 429).
  const after = calls.filter((c) => c.at >= pausedUntil);
  const sustained = after.length > 1 ? (after.length - 1) / ((after.at(-1).at - after[0].at) / 1000 || 0.001) : null;
  return {
    devices: D,
    cap,
    burst,
    retryAfterSeconds: retryAfter,
    throttleSeconds: ctx.push.throttleSeconds,
    calls: calls.length,
    throttled: calls.filter((c) => c.throttled).length,
    delivered,
    duringPause,
    peakPerSecond: peak,
    meanPerSecond: calls.length / span,
    sustainedPerSecond: sustained,
    firstCallAfterSeconds: (first - t0) / 1000,
    allDeliveredAfterSeconds: (last - t0) / 1000,
    gate: gate ? gate.stats : null,
    deadLetters: deadMine.length,
    deadLetterReasons: [...new Set(deadMine.map((d) => d.reason))],
  };
}
