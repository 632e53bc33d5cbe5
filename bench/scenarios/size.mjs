/**
 * Size scaling (issue #16): does a send cost more in a bigger conversation?
 *
 * (a) Send rate into one conversation at 9, 1,000 and 10,000 members (--quick:
 *     9, 1,000, 3,000): HTTP sends,
 *     16 in flight, the same number of messages each, interleaved over repeats
 *     (sizes rotated), with the raw limit at 16 in flight in the same repeat.
 *     After each burst the bench waits until the conversation's outbox (member
 *     notification) is drained, so one size's background work does not land on
 *     the next size's measurement; that wait is reported as "notify drain".
 * (b) SQLite rows written per send at 10, 1,000, 10,000 and the biggest size that
 *     fits the time budget (100,000 when it does; else the largest multiple of
 *     10,000 that does), from the deltas of the admin
 *     API's `sends_total` / `rows_written_sends_total`
 *     (GET /admin/api/conversations/:id). An older server without those fields
 *     gives "n/a".
 *
 * Members are added with POST /v1/conversations/:id/members, at most 1,000 per
 * request (the creation request carries the first 999). Member users are shared
 * between the conversations (user i is the same user everywhere), so only the
 * biggest conversation creates new user objects past the first 1,000. How long
 * adding members takes is measured and reported; the biggest size is chosen from
 * the measured rate (members/s while growing to 10,000) and the budget.
 */
import { convStats, waitOutboxDrained } from "../lib/admin.mjs";
import { agent, must, request, sleep, token } from "../lib/client.mjs";
import { median } from "../lib/stats.mjs";
import { httpSends, lastRawRowsPerInsert, rawInsert } from "./throughput.mjs";

const PER_REQUEST = 1000;
const INFLIGHT = 16;

/** sends_total / rows_written_sends_total, or null when the server does not expose them. */
function sendCounters(stats) {
  if (!stats || typeof stats.sends_total !== "number" || typeof stats.rows_written_sends_total !== "number") return null;
  return { sends: stats.sends_total, rows: stats.rows_written_sends_total };
}

/**
 * Adds members users[from..to) in requests of ≤ 1,000, one request at a time.
 * Returns { added, seconds, error } (error: the first refusal, e.g. an older server's member cap).
 */
async function addMembers(ctx, conv, ownerTok, users, from, to, deadlineMs = Infinity) {
  const a = agent(1);
  const t0 = performance.now();
  let added = 0;
  let error = null;
  for (let i = from; i < to; i += PER_REQUEST) {
    if (performance.now() > deadlineMs) { error = "stopped: over the time budget"; break; }
    const batch = users.slice(i, Math.min(to, i + PER_REQUEST));
    let r;
    for (;;) {
      r = await request({ base: ctx.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/members`, token: ownerTok, json: { add: batch }, timeoutMs: 600_000 });
      if (r.status === 429 || r.status === 503) { await sleep(Number(r.headers["retry-after"] ?? 1) * 1000 * ctx.retryCompress); continue; }
      break;
    }
    if (r.status !== 200) { error = `POST …/members → ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`; break; }
    added += batch.length;
  }
  a.destroy();
  return { added, seconds: (performance.now() - t0) / 1000, error };
}

/** Creates a conversation owned by users[0] with users[1..size) (first 999 in the creation, the rest in batches). */
async function createOfSize(ctx, conv, users, size, deadlineMs) {
  const ownerTok = await token(users[0], "owner");
  const t0 = performance.now();
  const first = Math.min(size, PER_REQUEST) - 1;
  await must({ base: ctx.url, method: "POST", path: "/v1/conversations", token: ownerTok, json: { id: conv, members: users.slice(1, 1 + first) }, timeoutMs: 600_000 }, [201]);
  const rest = size > first + 1 ? await addMembers(ctx, conv, ownerTok, users, first + 1, size, deadlineMs) : { added: 0, seconds: 0, error: null };
  return { members: 1 + first + rest.added, seconds: (performance.now() - t0) / 1000, addSeconds: rest.seconds, added: rest.added, error: rest.error };
}

const SAMPLED = 20;

/**
 * Sync to sampled members: SAMPLED members (spread over the slots, none of the
 * senders) sync, one message is sent, and each polls GET /v1/sync until it
 * shows the new head; its unread must have grown by exactly 1. Reports how
 * long the slowest took and how many were exact.
 */
async function sampleSyncs(ctx, conv, users, size) {
  const picks = Array.from({ length: SAMPLED }, (_, i) => users[5 + Math.floor(((size - 6) * i) / (SAMPLED - 1))]);
  const toks = await Promise.all(picks.map((u) => token(u, "sample")));
  const entry = async (tok) => (await must({ base: ctx.url, path: "/v1/sync?limit=500", token: tok })).conversations.find((c) => c.id === conv);
  const before = await Promise.all(toks.map(entry));
  const sent = await must({ base: ctx.url, method: "POST", path: `/v1/conversations/${conv}/messages`, token: await token(users[0], "owner"), json: { client_msg_id: `sample-${ctx.runId}-${size}`, body: { text: "sampled" } } }, [201]);
  const t0 = performance.now();
  const seen = await Promise.all(
    toks.map(async (tok, i) => {
      for (;;) {
        const e = await entry(tok);
        const ms = performance.now() - t0;
        if (e && e.head_seq >= sent.seq) return { ms, exact: before[i] !== undefined && e.unread === before[i].unread + 1 };
        if (ms > 60_000) return { ms: null, exact: false };
        await sleep(100);
      }
    }),
  );
  const times = seen.map((x) => x.ms).filter((x) => x !== null);
  return { sampled: SAMPLED, saw: times.length, exact: seen.filter((x) => x.exact).length, maxMs: times.length ? Math.max(...times) : null, medianMs: times.length ? median(times) : null };
}

export async function runSizeScaling(ctx) {
  const { quick } = ctx;
  const repeats = quick ? 2 : 3;
  const nSend = quick ? 300 : 1500;
  const nRowsSends = quick ? 100 : 200;
  // A burst stops starting sends after this long (a server whose sends cost O(members) would
  // otherwise take minutes at 1,000+ members); a capped burst is reported with its count.
  const capSeconds = quick ? 20 : 30;
  // Seconds the biggest conversation may spend growing past 10,000 members.
  const growBudget = ctx.sizeGrowBudgetSeconds ?? (quick ? 30 : 180);
  const SIZES = quick ? [9, 1000, 3000] : [9, 1000, 10_000];
  const LARGE = SIZES[2];
  const BIG = 100_000;
  const users = Array.from({ length: BIG }, (_, i) => `sz${ctx.runId}u${i}`);
  const senders = await Promise.all(Array.from({ length: INFLIGHT }, async (_, i) => ({ token: await token(users[1 + (i % 4)], `s${i}`) })));

  // ---- setup ----
  const convs = new Map(); // size -> { id, members, setup }
  const setupLog = [];
  for (const size of SIZES) {
    const id = `sz-${ctx.runId}-${size}`;
    const c = await createOfSize(ctx, id, users, size);
    const perSec = c.added > 0 ? c.added / c.addSeconds : null;
    setupLog.push({ size, members: c.members, seconds: c.seconds, addSeconds: c.addSeconds, added: c.added, membersPerSecond: perSec, error: c.error });
    ctx.log(`  setup ${size.toLocaleString("en-US")} members: ${c.members.toLocaleString("en-US")} in ${c.seconds.toFixed(1)} s${perSec ? ` (added ${c.added} with POST …/members at ${perSec.toFixed(0)} members/s)` : ""}${c.error ? `; ${c.error}` : ""}`);
    convs.set(size, { id, members: c.members, reached: c.members >= size, error: c.error });
  }
  const conv10 = `sz-${ctx.runId}-10`;
  await createOfSize(ctx, conv10, users, 10);

  for (const size of SIZES) if (convs.get(size).reached) await waitOutboxDrained(ctx, convs.get(size).id);
  const stats0 = new Map();
  for (const size of SIZES) if (convs.get(size).reached) stats0.set(size, sendCounters(await convStats(ctx, convs.get(size).id)));
  const rowsApi = [...stats0.values()].some(Boolean);

  // ---- (a) send rate at 9 / 1,000 / 10,000 members, interleaved ----
  const rates = Object.fromEntries(SIZES.map((s) => [s, []]));
  const sent = Object.fromEntries(SIZES.map((s) => [s, []]));
  const drains = Object.fromEntries(SIZES.map((s) => [s, []]));
  const raw16 = [];
  let shed = 0;
  for (let r = 0; r < repeats; r++) {
    raw16.push(await rawInsert(ctx, `sz16-${ctx.runId}-${r}`, nSend, INFLIGHT));
    const order = SIZES.map((_, i) => SIZES[(i + r) % SIZES.length]);
    const parts = [];
    for (const size of order) {
      const c = convs.get(size);
      if (!c.reached) continue;
      const h = await httpSends(ctx, c.id, senders, nSend, `z${r}`, { capSeconds });
      rates[size].push(h.rate);
      sent[size].push(h.sent);
      shed += h.shed;
      const d = await waitOutboxDrained(ctx, c.id, 180_000);
      drains[size].push(typeof d === "number" ? d : d?.seconds ?? null);
      parts.push(`${size.toLocaleString("en-US")}: ${h.rate.toFixed(0)}/s${h.capped ? ` (capped at ${capSeconds} s: ${h.sent} sent)` : ""}${typeof d === "number" ? ` (notify drain ${d.toFixed(1)} s)` : d?.timedOut ? ` (outbox still ${d.pending} after ${d.seconds.toFixed(0)} s)` : ""}`);
    }
    ctx.log(`  repeat ${r + 1}/${repeats}: raw insert ${raw16.at(-1).toFixed(0)}/s; sends at ${INFLIGHT} in flight by members: ${parts.join(", ")}`);
  }

  // ---- sync to sampled members, after the bursts ----
  const samples = {};
  for (const size of SIZES.slice(1)) {
    const c = convs.get(size);
    if (!c.reached) continue;
    samples[size] = await sampleSyncs(ctx, c.id, users, c.members);
    const x = samples[size];
    ctx.log(`  sampled syncs at ${size.toLocaleString("en-US")} members: ${x.saw}/${x.sampled} saw the new head (slowest ${x.maxMs?.toFixed(0) ?? "n/a"} ms, median ${x.medianMs?.toFixed(0) ?? "n/a"} ms), unread exact for ${x.exact}/${x.sampled}`);
  }

  // ---- (b) rows written per send ----
  const rows = {}; // members -> { sends, rows, perSend } | null
  const delta = (a, b) => (a && b ? { sends: b.sends - a.sends, rows: b.rows - a.rows, perSend: b.sends > a.sends ? (b.rows - a.rows) / (b.sends - a.sends) : null } : null);
  for (const size of SIZES) {
    const c = convs.get(size);
    if (!c.reached) continue;
    rows[size] = delta(stats0.get(size), sendCounters(await convStats(ctx, c.id)));
  }
  {
    const before = sendCounters(await convStats(ctx, conv10));
    await httpSends(ctx, conv10, senders, nRowsSends, "r10", { capSeconds });
    rows[10] = delta(before, sendCounters(await convStats(ctx, conv10)));
  }
  // The biggest conversation: grow the largest one as far as the budget allows.
  const big = { target: null, members: null, projectedSeconds: null, seconds: null, membersPerSecond: null, note: "", rate: null };
  const c10k = convs.get(LARGE);
  const growRate = setupLog.find((x) => x.size === LARGE)?.membersPerSecond ?? null;
  if (!c10k.reached) {
    big.note = `not measured: the server refused ${c10k.members.toLocaleString("en-US")}+ members (${c10k.error})`;
  } else if (!growRate) {
    big.note = "not measured: no member-add rate";
  } else {
    big.membersPerSecond = growRate;
    big.projectedSeconds = (BIG - c10k.members) / growRate;
    const candidates = [BIG, 90_000, 80_000, 70_000, 60_000, 50_000, 40_000, 30_000, 20_000, 10_000, 5_000].filter((s) => s > c10k.members);
    const fits = candidates.find((s) => (s - c10k.members) / growRate <= growBudget);
    if (!fits) {
      big.note = `not grown: ${BIG.toLocaleString("en-US")} members would take ~${big.projectedSeconds.toFixed(0)} s at ${growRate.toFixed(0)} members/s (budget ${growBudget} s); even ${candidates.at(-1).toLocaleString("en-US")} does not fit`;
    } else {
      big.target = fits;
      const ownerTok = await token(users[0], "owner");
      const g = await addMembers(ctx, c10k.id, ownerTok, users, c10k.members, fits, performance.now() + growBudget * 1.5 * 1000);
      big.members = c10k.members + g.added;
      big.seconds = g.seconds;
      big.membersPerSecond = g.added > 0 ? g.added / g.seconds : growRate;
      big.note = `${big.members.toLocaleString("en-US")} members: grew ${g.added.toLocaleString("en-US")} in ${g.seconds.toFixed(0)} s (${big.membersPerSecond.toFixed(0)} members/s)` +
        (fits < BIG ? `; ${BIG.toLocaleString("en-US")} would take ~${big.projectedSeconds.toFixed(0)} s at the ${growRate.toFixed(0)} members/s measured while growing to ${LARGE.toLocaleString("en-US")} (budget ${growBudget} s), so the biggest that fits is ${fits.toLocaleString("en-US")}` : "") +
        (g.error ? `; ${g.error}` : "");
      if (big.members > c10k.members) {
        const before = sendCounters(await convStats(ctx, c10k.id));
        const h = await httpSends(ctx, c10k.id, senders, nRowsSends, "rbig", { capSeconds });
        big.rate = h.rate;
        rows[big.members] = delta(before, sendCounters(await convStats(ctx, c10k.id)));
        const d = await waitOutboxDrained(ctx, c10k.id, 180_000);
        big.drainSeconds = typeof d === "number" ? d : null;
      }
    }
  }
  ctx.log(`  biggest conversation: ${big.note}`);
  ctx.log(`  rows written per send: ${Object.entries(rows).map(([m, v]) => `${Number(m).toLocaleString("en-US")} members: ${v?.perSend != null ? v.perSend.toFixed(1) : "n/a"}`).join(", ")}${rowsApi ? "" : " (the admin API has no sends_total / rows_written_sends_total yet)"}`);
  // The raw reference: rows one raw INSERT writes (from its SQL cursor's rowsWritten).
  const rawRowsPerInsert = lastRawRowsPerInsert.value;
  return {
    inflight: INFLIGHT,
    repeats,
    nSend,
    nRowsSends,
    sizes: SIZES,
    setup: setupLog,
    reached: Object.fromEntries(SIZES.map((s) => [s, convs.get(s).members])),
    rates,
    sent,
    capSeconds,
    medians: Object.fromEntries(SIZES.map((s) => [s, rates[s].length ? median(rates[s]) : null])),
    drains,
    raw16,
    shed,
    rowsApi,
    samples,
    rows,
    rawRowsPerInsert,
    big,
    growBudgetSeconds: growBudget,
  };
}
