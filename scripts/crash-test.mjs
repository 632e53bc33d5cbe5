#!/usr/bin/env node
/**
 * `npm run test:crash`: process-crash test against a real `wrangler dev`.
 *
 * Starts `wrangler dev` on 127.0.0.1 (free ports, a throwaway --persist-to dir,
 * its own process group), drives a load from 5 devices of 3 users across 2
 * conversations (sends, retried with the same client_msg_id on any error or
 * timeout; to-device sends; cursor acks; page reads; to-device list + ack),
 * SIGKILLs the whole process group at a random moment mid-load, restarts on the
 * same --persist-to, lets every client finish its retries, and then checks
 * ARCHITECTURE.md invariant 1 and friends:
 *
 *   - every acknowledged send (201/200 seen by a client) is in the log exactly
 *     once, by (sender device, client_msg_id), at the seq the client was told
 *     (15% of first attempts also drop their response on the client side, so
 *     retries of committed sends are exercised with and without the kill);
 *   - seqs are gapless 1..head_seq;
 *   - acknowledged cursors (received per device, read per user) are not lower
 *     than what the client saw acknowledged;
 *   - every 202'd to-device entry is in each target device's queue exactly once
 *     unless that device acknowledged it;
 *   - the outbox drains: every member's GET /v1/sync reaches the conversation's
 *     head_seq within a bounded wait.
 *
 * Repeats for --rounds N (default 3), each with a fresh random kill moment, on
 * the same state (the checks are cumulative). Prints counts and ends with
 * "N passed, M failed"; exits non-zero on any failure.
 *
 * Options: --rounds N, --seed S (replays the kill moments and op choices; the
 * timing of a real server is not replayable), --keep (keep the persist dir and
 * the wrangler log). AUTH_SECRET comes from the environment or .dev.vars
 * (scripts/lib/dev-auth.mjs), as `wrangler dev` reads it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mintDevToken, resolveAuthSecret } from "./lib/dev-auth.mjs";
import { DevServer, sleep, within } from "./lib/dev-server.mjs";

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const out = { rounds: 3, seed: Date.now() >>> 0, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || !/^\d{1,10}$/.test(v)) usage(`${a} needs a non-negative integer`);
      return Number(v);
    };
    if (a === "--rounds") out.rounds = value();
    else if (a.startsWith("--rounds=")) out.rounds = Number(a.slice(9));
    else if (a === "--seed") out.seed = value();
    else if (a.startsWith("--seed=")) out.seed = Number(a.slice(7));
    else if (a === "--keep") out.keep = true;
    else usage(`unknown argument ${a}`);
  }
  if (!Number.isInteger(out.rounds) || out.rounds < 1 || out.rounds > 50) usage("--rounds must be 1..50");
  if (!Number.isInteger(out.seed)) usage("--seed must be an integer");
  return out;
}

function usage(message) {
  console.error(`crash-test: ${message}\nusage: node scripts/crash-test.mjs [--rounds N] [--seed S] [--keep]`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

/** mulberry32: a tiny seeded PRNG, so kill moments and op mixes are reproducible from --seed. */
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(opts.seed);
const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

// ---------------------------------------------------------------- tuning (all bounded)

/** Per-request timeout: a request that hangs across the kill is retried. */
const REQUEST_TIMEOUT_MS = 8_000;
/** One operation keeps retrying (same client_msg_id) at most this long: covers a slow restart. */
const OP_DEADLINE_MS = 150_000;
/** Kill moment after the load starts, ms (uniform). */
const KILL_AFTER_MS = [1_000, 6_000];
/** Load keeps running this long after the restart before new operations stop. */
const AFTER_RESTART_MS = [500, 2_000];
/** Outbox drain: how long every member's sync may take to reach the head. */
const DRAIN_WAIT_MS = 60_000;
/** Pause between a device's operations (keeps each device well under the 1200/min rate limit). */
const THINK_MS = [20, 80];
/**
 * Client-side fault: this share of first attempts gives up after a few ms, so the
 * server may commit a request whose answer the client never sees (a lost response)
 * and the retry must be recognised as a duplicate.
 */
const LOST_RESPONSE_RATE = 0.15;
const LOST_RESPONSE_MS = [2, 40];

// ---------------------------------------------------------------- counters and checks

const counts = { sends: 0, sendsAcked: 0, duplicateAcks: 0, toDevice: 0, toDeviceAcked: 0, cursorAcks: 0, pageReads: 0, queueAcks: 0, retries: 0, kills: 0, restarts: 0 };
const retryReasons = new Map();
let passed = 0;
let failed = 0;
const failures = [];

function check(ok, what, detail = "") {
  if (ok) passed += 1;
  else {
    failed += 1;
    failures.push(`${what}${detail ? `: ${detail}` : ""}`);
    console.log(`  FAIL ${what}${detail ? `: ${detail}` : ""}`);
  }
  return ok;
}

// ---------------------------------------------------------------- HTTP with retries

const server = new DevServer({ persistTo: "", logPath: "" });

async function call(method, path, token, body, timeoutMs = REQUEST_TIMEOUT_MS) {
  const headers = { authorization: `Bearer ${token}` };
  let payload;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  // A request caught by the SIGKILL can ignore its abort (undici keeps waiting on the dead
  // socket), so the timer settles the call itself (TimeoutError): the loop moves on and retries.
  const [res, text] = await within(timeoutMs, async (signal) => {
    const r = await fetch(server.url + path, { method, headers, body: payload, signal });
    return [r, await r.text()];
  });
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, retryAfter: Number(res.headers.get("retry-after") ?? "0") };
}

function noteRetry(reason) {
  counts.retries += 1;
  retryReasons.set(reason, (retryReasons.get(reason) ?? 0) + 1);
}

/**
 * Repeats the very same request until `done(res)` (bounded by OP_DEADLINE_MS):
 * network errors, timeouts, 5xx and 429 are retried; any other status is a
 * protocol surprise and fails the operation.
 */
async function retrying(label, method, path, token, body, done) {
  const deadline = Date.now() + OP_DEADLINE_MS;
  for (let attempt = 0; ; attempt++) {
    let reason;
    let wait = Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)) * (0.5 + rand() / 2);
    const inject = attempt === 0 && method === "POST" && rand() < LOST_RESPONSE_RATE;
    try {
      const res = await call(method, path, token, body, inject ? between(...LOST_RESPONSE_MS) : REQUEST_TIMEOUT_MS);
      if (done(res)) return res;
      if (res.status >= 500 || res.status === 429) {
        reason = `http ${res.status}`;
        if (res.retryAfter > 0) wait = Math.min(res.retryAfter * 1000, 5_000);
      } else {
        throw new Error(`${label}: unexpected ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
    } catch (err) {
      if (err instanceof Error && err.message.startsWith(`${label}:`)) throw err;
      reason = err?.name === "TimeoutError" ? (inject ? "injected lost response" : "timeout") : "network";
    }
    if (Date.now() + wait > deadline) throw new Error(`${label}: gave up after ${attempt + 1} attempts (${reason})`);
    noteRetry(reason);
    await sleep(wait);
  }
}

// ---------------------------------------------------------------- the world

const run = `cr${Date.now().toString(36)}${Math.floor(rand() * 1e6).toString(36)}`;
const users = { a: `${run}a`, b: `${run}b`, c: `${run}c` };
const DEVICES = [
  { user: users.a, device: "phone" },
  { user: users.a, device: "laptop" },
  { user: users.a, device: "web" },
  { user: users.b, device: "phone" },
  { user: users.b, device: "tablet" },
  { user: users.c, device: "phone" },
  { user: users.c, device: "laptop" },
];
/** Concurrent operation loops per device: more requests in flight when the kill lands. */
const LOOPS_PER_DEVICE = 2;
const CONVS = [
  { id: `${run}c1`, members: [users.a, users.b, users.c] },
  { id: `${run}c2`, members: [users.a, users.b] },
];
const devicesOf = (user) => DEVICES.filter((d) => d.user === user).map((d) => d.device);
const key = (...parts) => parts.join("/");

/** Everything the clients saw acknowledged, the truth the checks compare against. */
const seen = {
  /** key(user, device, cmid) → { conv, seq | null } */
  sends: new Map(),
  /** to-device sends: { from, toUser, device?, tag, targets, acked } */
  toDevice: [],
  /** key(user, device, conv) → highest effective `received` acknowledged */
  received: new Map(),
  /** key(user, conv) → highest effective `read` acknowledged */
  read: new Map(),
  /** key(user, device) → Map(tag → queue id) from GET /v1/to-device */
  queueSeen: new Map(),
  /** key(user, device) → highest `up_to` ever sent (acknowledged or not: it may have committed) */
  queueAckAttempt: new Map(),
};

class Client {
  constructor(d, token) {
    this.user = d.user;
    this.device = d.device;
    this.token = token;
    this.n = 0;
    /** conv → highest seq this device knows exists (its sends, its page reads) */
    this.known = new Map();
    this.convs = CONVS.filter((c) => c.members.includes(d.user)).map((c) => c.id);
  }

  async send(conv) {
    const cmid = `${this.device}-${++this.n}-${Math.floor(rand() * 1e9).toString(36)}`;
    const entry = { conv, seq: null };
    seen.sends.set(key(this.user, this.device, cmid), entry);
    counts.sends += 1;
    const res = await retrying("send", "POST", `/v1/conversations/${conv}/messages`, this.token, { client_msg_id: cmid, body: { text: `hello ${cmid}`, from: this.device } }, (r) => r.status === 201 || r.status === 200);
    entry.seq = res.body.seq;
    if (res.body.duplicate) counts.duplicateAcks += 1;
    counts.sendsAcked += 1;
    this.known.set(conv, Math.max(this.known.get(conv) ?? 0, res.body.seq));
  }

  async toDevice() {
    const toUser = pick(Object.values(users));
    const explicit = rand() < 0.5;
    const candidates = devicesOf(toUser).filter((d) => !(toUser === this.user && d === this.device));
    const device = explicit ? pick(devicesOf(toUser)) : undefined;
    const targets = device !== undefined ? [device] : candidates;
    const tag = `${this.user}.${this.device}.${++this.n}`;
    const entry = { from: key(this.user, this.device), toUser, device, tag, targets, acked: false };
    seen.toDevice.push(entry);
    counts.toDevice += 1;
    const body = { user: toUser, client_msg_id: tag.replaceAll(".", "_"), body: { tag }, ...(device !== undefined ? { device } : {}) };
    const res = await retrying("to-device", "POST", "/v1/to-device", this.token, body, (r) => r.status === 202);
    check(res.body.queued === targets.length, "to-device queued count", `${tag} → ${toUser}${device ? `/${device}` : ""}: queued ${res.body.queued}, expected ${targets.length} (${targets.join(",")})`);
    entry.acked = true;
    counts.toDeviceAcked += 1;
  }

  async cursors(conv) {
    const seq = this.known.get(conv) ?? 0;
    if (seq === 0) return this.page(conv);
    const withRead = rand() < 0.5;
    const body = { received: { [conv]: seq }, ...(withRead ? { read: { [conv]: seq } } : {}) };
    const res = await retrying("cursors", "POST", "/v1/cursors", this.token, body, (r) => r.status === 200);
    counts.cursorAcks += 1;
    const rk = key(this.user, this.device, conv);
    seen.received.set(rk, Math.max(seen.received.get(rk) ?? 0, res.body.received[conv]));
    check(res.body.received[conv] >= seq, "cursor ack takes effect", `${rk}: asked ${seq}, effective ${res.body.received[conv]}`);
    if (withRead) {
      const k = key(this.user, conv);
      seen.read.set(k, Math.max(seen.read.get(k) ?? 0, res.body.read[conv]));
    }
  }

  async page(conv) {
    const after = seen.received.get(key(this.user, this.device, conv)) ?? 0;
    const res = await retrying("page", "GET", `/v1/conversations/${conv}/messages?after=${after}&limit=100`, this.token, undefined, (r) => r.status === 200);
    counts.pageReads += 1;
    const last = res.body.messages.at(-1);
    if (last) this.known.set(conv, Math.max(this.known.get(conv) ?? 0, last.seq));
  }

  async queue() {
    const res = await retrying("to-device list", "GET", "/v1/to-device?limit=50", this.token, undefined, (r) => r.status === 200);
    const mine = seen.queueSeen.get(key(this.user, this.device)) ?? new Map();
    seen.queueSeen.set(key(this.user, this.device), mine);
    for (const e of res.body.entries) mine.set(e.body.tag, e.id);
    const last = res.body.entries.at(-1);
    if (!last) return;
    const k = key(this.user, this.device);
    seen.queueAckAttempt.set(k, Math.max(seen.queueAckAttempt.get(k) ?? 0, last.id));
    await retrying("to-device ack", "POST", "/v1/to-device/ack", this.token, { up_to: last.id }, (r) => r.status === 200);
    counts.queueAcks += 1;
  }

  /** One device's load: operations back to back until `stop()` says so; each one finishes its retries. */
  async loop(stop) {
    while (!stop()) {
      const r = rand();
      const conv = pick(this.convs);
      if (r < 0.55) await this.send(conv);
      else if (r < 0.67) await this.toDevice();
      else if (r < 0.8) await this.cursors(conv);
      else if (r < 0.92) await this.page(conv);
      else await this.queue();
      await sleep(between(...THINK_MS));
    }
  }
}

// ---------------------------------------------------------------- verification

/** All pages of a conversation, forward from 0, as `client`. */
async function fullLog(client, conv) {
  const messages = [];
  const gaps = [];
  let after = 0;
  let head = 0;
  for (let i = 0; i < 1000; i++) {
    const res = await retrying("verify page", "GET", `/v1/conversations/${conv}/messages?after=${after}&limit=500`, client.token, undefined, (r) => r.status === 200);
    messages.push(...res.body.messages);
    gaps.push(...res.body.gaps);
    head = res.body.head_seq;
    if (!res.body.has_more) break;
    after = res.body.next_after;
  }
  return { messages, gaps, head };
}

async function fullSync(client) {
  const out = new Map();
  let since;
  for (let i = 0; i < 1000; i++) {
    const q = since ? `?since=${encodeURIComponent(since)}&limit=500` : "?limit=500";
    const res = await retrying("verify sync", "GET", `/v1/sync${q}`, client.token, undefined, (r) => r.status === 200);
    for (const c of res.body.conversations) out.set(c.id, c);
    if (!res.body.has_more) break;
    since = res.body.checkpoint;
  }
  return out;
}

async function verify(clients, round) {
  const byUser = (user) => clients.find((c) => c.user === user);
  const heads = new Map();
  // 1. the log: gapless, each acked send once at its seq, no (device, client_msg_id) twice.
  for (const conv of CONVS) {
    const reader = byUser(users.a); // a member of both since seq 1: sees everything
    const { messages, gaps, head } = await fullLog(reader, conv.id);
    heads.set(conv.id, head);
    const seqs = messages.map((m) => m.seq);
    const gapless = seqs.length === head && seqs.every((s, i) => s === i + 1);
    check(gapless, `round ${round}: ${conv.id} seqs gapless 1..${head}`, gapless ? "" : `got ${seqs.length} entries, first break at index ${seqs.findIndex((s, i) => s !== i + 1)}`);
    check(gaps.length === 0, `round ${round}: ${conv.id} no gaps for a member since seq 1`, JSON.stringify(gaps).slice(0, 200));
    const byKey = new Map();
    for (const m of messages) {
      if (m.type !== "message") continue;
      const k = key(m.sender.user, m.sender.device, m.client_msg_id);
      byKey.set(k, [...(byKey.get(k) ?? []), m.seq]);
    }
    const twice = [...byKey].filter(([, s]) => s.length > 1);
    check(twice.length === 0, `round ${round}: ${conv.id} no client_msg_id twice`, twice.slice(0, 5).map(([k, s]) => `${k}@${s}`).join(", "));
    let acked = 0;
    const missing = [];
    for (const [k, e] of seen.sends) {
      if (e.conv !== conv.id || e.seq === null) continue;
      acked += 1;
      const at = byKey.get(k);
      if (!at || at.length !== 1 || at[0] !== e.seq) missing.push(`${k} acked@${e.seq} found@${at ?? "none"}`);
    }
    check(missing.length === 0, `round ${round}: ${conv.id} all ${acked} acked sends present exactly once at their seq`, missing.slice(0, 5).join(", "));
  }
  const unacked = [...seen.sends].filter(([, e]) => e.seq === null);
  check(unacked.length === 0, `round ${round}: every send was eventually acknowledged`, unacked.slice(0, 5).map(([k]) => k).join(", "));

  // 2. outbox drained: every member's sync reaches the head (bounded wait); cursors not lower than acked.
  const deadline = Date.now() + DRAIN_WAIT_MS;
  for (const client of clients) {
    let synced = await fullSync(client);
    const behind = () =>
      CONVS.filter((c) => c.members.includes(client.user)).filter((c) => synced.get(c.id)?.head_seq !== heads.get(c.id));
    while (behind().length > 0 && Date.now() < deadline) {
      await sleep(500);
      synced = await fullSync(client);
    }
    const late = behind();
    check(late.length === 0, `round ${round}: ${client.user}/${client.device} sync reaches head (outbox drained)`, late.map((c) => `${c.id}: sync ${synced.get(c.id)?.head_seq} vs log ${heads.get(c.id)}`).join(", "));
    for (const conv of client.convs) {
      const s = synced.get(conv);
      const rAcked = seen.received.get(key(client.user, client.device, conv)) ?? 0;
      check((s?.received ?? 0) >= rAcked, `round ${round}: ${client.user}/${client.device} received cursor of ${conv} not below acked`, `sync ${s?.received} < acked ${rAcked}`);
      const readAcked = seen.read.get(key(client.user, conv)) ?? 0;
      check((s?.read ?? 0) >= readAcked, `round ${round}: ${client.user}/${client.device} read cursor of ${conv} not below acked`, `sync ${s?.read} < acked ${readAcked}`);
    }
  }

  // 3. per-device queues: every 202'd entry present exactly once until its device acked it.
  for (const client of clients) {
    const k = key(client.user, client.device);
    const present = new Map();
    const dupes = [];
    for (let i = 0; i < 100; i++) {
      const res = await retrying("verify queue", "GET", "/v1/to-device?limit=500", client.token, undefined, (r) => r.status === 200);
      for (const e of res.body.entries) {
        if (present.has(e.body.tag)) dupes.push(e.body.tag);
        present.set(e.body.tag, e.id);
      }
      if (!res.body.has_more) break;
      // Page on the way a client does: acknowledge what was read (and remember it was consumed).
      const last = res.body.entries.at(-1).id;
      const mine = seen.queueSeen.get(k) ?? new Map();
      seen.queueSeen.set(k, mine);
      for (const e of res.body.entries) mine.set(e.body.tag, e.id);
      seen.queueAckAttempt.set(k, Math.max(seen.queueAckAttempt.get(k) ?? 0, last));
      await retrying("verify queue ack", "POST", "/v1/to-device/ack", client.token, { up_to: last }, (r) => r.status === 200);
    }
    check(dupes.length === 0, `round ${round}: ${k} queue has no entry twice`, dupes.slice(0, 5).join(", "));
    const consumedUpTo = seen.queueAckAttempt.get(k) ?? 0;
    const seenIds = seen.queueSeen.get(k) ?? new Map();
    const lost = [];
    let expected = 0;
    for (const e of seen.toDevice) {
      if (!e.acked || e.toUser !== client.user || !e.targets.includes(client.device)) continue;
      expected += 1;
      if (present.has(e.tag)) continue;
      const id = seenIds.get(e.tag);
      if (id !== undefined && id <= consumedUpTo) continue; // acknowledged by the device: gone by design
      lost.push(e.tag);
    }
    check(lost.length === 0, `round ${round}: ${k} all ${expected} 202'd to-device entries present or acked`, lost.slice(0, 5).join(", "));
  }
}

/**
 * The verifier must be able to fail: plant one acknowledged send that was never
 * made and one 202'd to-device entry that was never queued, verify again, and
 * require both to be flagged. The planted failures are then taken back out.
 */
async function selfCheck(clients) {
  const saved = { passed, failed, failures: failures.length };
  const fakeSend = key(users.a, "phone", "planted-never-sent");
  seen.sends.set(fakeSend, { conv: CONVS[0].id, seq: 1 });
  seen.toDevice.push({ from: key(users.c, "phone"), toUser: users.b, device: "tablet", tag: "planted.never.queued", targets: ["tablet"], acked: true });
  console.log("self-check: verifying again with a planted lost send and a planted lost queue entry (the FAIL lines below are expected)");
  await verify(clients, "self-check");
  const flagged = failures.slice(saved.failures);
  passed = saved.passed;
  failed = saved.failed;
  failures.length = saved.failures;
  seen.sends.delete(fakeSend);
  seen.toDevice.pop();
  const caughtSend = flagged.some((f) => f.includes("planted-never-sent"));
  const caughtQueue = flagged.some((f) => f.includes("planted.never.queued"));
  check(caughtSend && caughtQueue, "self-check: the verifier flags a planted lost send and a planted lost queue entry", `flagged: ${flagged.join(" | ").slice(0, 300)}`);
}

// ---------------------------------------------------------------- main

/** Whole-run watchdog: a hang must fail CI in minutes, with the server stopped, not eat its 90. */
const WATCHDOG_MS = 8 * 60_000;

async function main() {
  setTimeout(() => {
    console.log(`crash-test: watchdog: no result after ${WATCHDOG_MS / 60_000} min; stopping`);
    console.log("0 passed, 1 failed");
    server.kill().finally(() => process.exit(1));
  }, WATCHDOG_MS).unref();
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "crash-test-"));
  server.persistTo = join(dir, "state");
  server.logPath = join(dir, "wrangler.log");
  process.on("exit", () => server.signal("SIGKILL"));
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

  const { secret, source } = resolveAuthSecret();
  console.log(`crash-test: seed ${opts.seed}, ${opts.rounds} round(s), users ${Object.values(users).join(" ")}, AUTH_SECRET from ${source}`);
  console.log(`crash-test: state ${server.persistTo}, log ${server.logPath}`);
  const clients = await Promise.all(DEVICES.map(async (d) => new Client(d, await mintDevToken({ user: d.user, device: d.device, secret, ttl: 3600 }))));

  try {
    await server.start();
    counts.restarts = 0;
    console.log(`crash-test: wrangler dev up on ${server.url} after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // Setup: every device registered (so fan-out targets are known), both conversations created.
    for (const c of clients) await retrying("register", "POST", "/v1/devices", c.token, {}, (r) => r.status === 200);
    const creator = clients[0];
    for (const conv of CONVS) {
      // A retried create whose first attempt committed answers 409: the conversation is there.
      await retrying("create", "POST", "/v1/conversations", creator.token, { id: conv.id, members: conv.members.filter((u) => u !== creator.user) }, (r) => r.status === 201 || r.status === 409);
    }

    for (let round = 1; round <= opts.rounds; round++) {
      const t0 = Date.now();
      let stopped = false;
      const loops = clients.flatMap((c) => Array.from({ length: LOOPS_PER_DEVICE }, () => c.loop(() => stopped)));
      const killAt = between(...KILL_AFTER_MS);
      await sleep(killAt);
      const inFlightSends = counts.sends - counts.sendsAcked;
      await server.kill();
      counts.kills += 1;
      console.log(`round ${round}: SIGKILL to the process group at +${killAt} ms (${counts.sendsAcked} sends acked so far, ${inFlightSends} in flight)`);
      await sleep(between(0, 1000));
      const r0 = Date.now();
      await server.start();
      counts.restarts += 1;
      console.log(`round ${round}: restarted on ${server.url} in ${((Date.now() - r0) / 1000).toFixed(1)} s`);
      await sleep(between(...AFTER_RESTART_MS));
      stopped = true;
      const results = await Promise.allSettled(loops);
      for (const r of results) check(r.status === "fulfilled", `round ${round}: client finished its retries`, r.status === "rejected" ? String(r.reason?.message ?? r.reason) : "");
      const before = passed + failed;
      await verify(clients, round);
      console.log(`round ${round}: ${passed + failed - before} checks, ${failures.length} failures so far, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    await selfCheck(clients);
  } catch (err) {
    check(false, "harness", err instanceof Error ? err.message : String(err));
  } finally {
    await server.stop();
  }

  const reasons = [...retryReasons].map(([r, n]) => `${r}: ${n}`).join(", ") || "none";
  console.log(
    `crash-test: ${counts.kills} kill(s), ${counts.restarts} restart(s); sends ${counts.sendsAcked}/${counts.sends} acked (${counts.duplicateAcks} acked as duplicate after a retry); ` +
      `to-device ${counts.toDeviceAcked}/${counts.toDevice}; cursor acks ${counts.cursorAcks}; page reads ${counts.pageReads}; queue acks ${counts.queueAcks}; ` +
      `retries ${counts.retries} (${reasons}); ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  if (failures.length > 0 || opts.keep) console.log(`crash-test: kept ${dir} (wrangler.log, state)`);
  else rmSync(dir, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
