/**
 * PushGateDO: one shard of a provider's gate. The provider's cap is split over
 * gateShardCount() shards, each a token bucket of rate/K and burst/K, so the
 * shards together never exceed the provider's rate or burst while no single
 * object has to grant every permit of a large fan-out.
 *
 * A provider 429 pauses the whole provider until its Retry-After, and a circuit
 * breaker stops sending after sustained 5xx. The shard that sees either tells
 * its siblings (at most K−1 calls, only when it happens). The breaker counts
 * consecutive 5xx per shard rather than across shards, because a shared count
 * would cost a cross-shard call per error; a provider outage fails every
 * shard's sends, so the first shard to reach the threshold opens the circuit
 * for all of them, after at most K × threshold failed requests.
 *
 * Shard 0 keeps the provider's own name (the former singleton's) and holds the
 * dead letters: they are rare and arrive in DLQ batches (one bulk write each),
 * and one table keeps exactly the newest TUNING.maxDeadLetters per provider.
 *
 * Buckets, pauses and the circuit live in memory: an object only leaves memory
 * after it has been idle, by which time a fresh bucket is what the refill would
 * have produced. The stats are written by an alarm at most once per
 * TUNING.pushGateStatsWriteMs, not on every call: a row write (and the wait for it to be
 * durable) per acquire would cap a shard at a few hundred calls a second, and
 * a crash loses at most that interval of counts, never a permit decision.
 */
import type { Env } from "../env";
import { PlatformObject } from "../platform/object";
import type { Schema } from "../platform/schema";
import { log } from "../platform/log";
import { call } from "../platform/rpc";
import v1 from "../../migrations/push_gate/0001_init.sql";
import { settings, type PushTuning } from "../config/settings";
import { TUNING } from "../config/tuning";

const SCHEMA: Schema = { migrations: [{ version: 1, sql: v1 }] };

export type DenyReason = "rate" | "paused" | "circuit_open";
export interface Refusal {
  retryAfterMs: number;
  reason: DenyReason;
}
/** Up to the permits asked for; when fewer, `refused` says why and when to ask again. */
export interface Permits {
  granted: number;
  refused: Refusal | null;
}

export type GateReport = "delivered" | "throttled" | "server_error" | "dead_token" | "rejected";
/** What one granted request came to; `retryAfterSeconds` is the provider's, on a 429. */
export interface GateOutcome {
  report: GateReport;
  retryAfterSeconds?: number;
}

export type DeadLetter = {
  user_id: string;
  device_id: string;
  conversation_id: string;
  attempts: number;
  reason: string;
};
export type StoredDeadLetter = DeadLetter & { created_at: number };

const STAT_FIELDS = ["granted", "denied", "delivered", "throttled", "server_errors", "dead_tokens", "breaker_trips", "dead_letters"] as const;
export type GateStats = Record<(typeof STAT_FIELDS)[number], number>;
export interface GateView {
  stats: GateStats;
  dead_letters: StoredDeadLetter[];
  circuit_open: boolean;
}

/**
 * Shards per provider: TUNING.pushGateShards, but never so many that a shard's
 * burst falls below one permit (it could never grant), so the shards' bursts
 * add up to the provider's and never to more.
 */
export function gateShardCount(tuning: PushTuning): number {
  return Math.max(1, Math.min(TUNING.pushGateShards, Math.floor(tuning.burst)));
}

export function gateShardName(provider: string, shard: number): string {
  return shard === 0 ? provider : `${provider}#${shard}`;
}

/** The shard that keeps a provider's dead letters. */
export function deadLetterGateName(provider: string): string {
  return gateShardName(provider, 0);
}

function gateShardNames(env: Env, provider: string): string[] {
  return Array.from({ length: gateShardCount(settings(env).push) }, (_, shard) => gateShardName(provider, shard));
}

/** A provider's gate as one: stats summed over its shards, the newest dead letters of all, open if any shard is. */
export async function readGate(env: Env, provider: string): Promise<GateView> {
  const shards = await Promise.all(gateShardNames(env, provider).map((name) => call(env.PUSH_GATE, name, "stats")));
  const stats = Object.fromEntries(STAT_FIELDS.map((f) => [f, shards.reduce((sum, s) => sum + s.stats[f], 0)])) as GateStats;
  const letters = shards.flatMap((s) => s.dead_letters).sort((a, b) => b.created_at - a.created_at);
  return { stats, dead_letters: letters.slice(0, TUNING.recentDeadLetters), circuit_open: shards.some((s) => s.circuit_open) };
}

export class PushGateDO extends PlatformObject {
  readonly #tuning: PushTuning;
  /** This shard's share of the provider's bucket. */
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt = Date.now();
  #pausedUntil = 0;
  #consecutiveErrors = 0;
  #openUntil = 0;
  /** Counts not yet written (see TUNING.pushGateStatsWriteMs). */
  #pending: Partial<GateStats> = {};

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, SCHEMA);
    this.#tuning = settings(env).push;
    const shards = gateShardCount(this.#tuning);
    this.#rate = this.#tuning.ratePerSecond / shards;
    this.#burst = this.#tuning.burst / shards;
    this.#tokens = this.#burst;
  }

  /**
   * Asks for up to `wanted` requests to the provider now. `countShortfall`:
   * whether permits refused for rate count as denied here; a caller that will
   * ask the next shard for them passes false, so a deferred task counts once.
   */
  async acquire(wanted: number, countShortfall = true): Promise<Permits> {
    this.ready();
    const n = Math.max(0, Math.floor(wanted));
    const now = Date.now();
    let granted = 0;
    let refused = this.#held(now);
    if (refused === null) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#rate);
      this.#refilledAt = now;
      granted = Math.min(n, Math.floor(this.#tokens));
      this.#tokens -= granted;
      if (granted < n) refused = { retryAfterMs: Math.ceil(((1 - this.#tokens) / this.#rate) * 1000), reason: "rate" };
    }
    const short = granted < n;
    const counted = short && refused !== null && (refused.reason !== "rate" || countShortfall);
    await this.#add({ granted, denied: counted ? n - granted : 0 });
    return { granted, refused: short ? refused : null };
  }

  /** The outcomes of granted requests, in the order they came back; feeds the pause and the breaker. */
  async report(provider: string, outcomes: readonly GateOutcome[]): Promise<void> {
    this.ready();
    const now = Date.now();
    const pausedBefore = this.#pausedUntil;
    const openBefore = this.#openUntil;
    const delta: Partial<GateStats> = {};
    for (const outcome of outcomes) this.#apply(outcome, now, delta);
    await this.#add(delta);
    // Only what this report started or lengthened is news to the siblings.
    const pauseMs = this.#pausedUntil > pausedBefore ? this.#pausedUntil - now : 0;
    const openMs = this.#openUntil > openBefore ? this.#openUntil - now : 0;
    if (pauseMs > 0 || openMs > 0) await this.#tellSiblings(provider, pauseMs, openMs);
  }

  /** A sibling saw a 429 or opened the circuit. Durations, not instants, so the shards' clocks need not agree. */
  async hold(pauseMs: number, openMs: number): Promise<void> {
    this.ready();
    const now = Date.now();
    if (pauseMs > 0) this.#pause(now + pauseMs);
    if (openMs > 0) this.#open(now + openMs);
  }

  async recordDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    this.ready();
    if (letters.length === 0) return;
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const l of letters) {
        this.sql.run(
          "INSERT INTO dead_letters (user_id, device_id, conversation_id, attempts, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
          l.user_id, l.device_id, l.conversation_id, l.attempts, l.reason, now,
        );
      }
      this.sql.run("DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?", TUNING.maxDeadLetters);
      this.#write({ dead_letters: letters.length });
    });
  }

  /** This shard alone; readGate() merges a provider's shards. */
  async stats(): Promise<GateView> {
    this.ready();
    const written = this.sql.one<GateStats>(`SELECT ${STAT_FIELDS.join(", ")} FROM gate_stats`);
    const stats = Object.fromEntries(STAT_FIELDS.map((f) => [f, written[f] + (this.#pending[f] ?? 0)])) as GateStats;
    const letters = this.sql.all<StoredDeadLetter>(
      "SELECT user_id, device_id, conversation_id, attempts, reason, created_at FROM dead_letters ORDER BY id DESC LIMIT ?",
      TUNING.recentDeadLetters,
    );
    return { stats, dead_letters: letters, circuit_open: this.#openUntil > Date.now() };
  }

  #held(now: number): Refusal | null {
    if (this.#pausedUntil > now) return { retryAfterMs: Math.ceil(this.#pausedUntil - now), reason: "paused" };
    if (this.#openUntil > now) return { retryAfterMs: Math.ceil(this.#openUntil - now), reason: "circuit_open" };
    return null;
  }

  #apply(outcome: GateOutcome, now: number, delta: Partial<GateStats>): void {
    const bump = (field: keyof GateStats) => void (delta[field] = (delta[field] ?? 0) + 1);
    if (outcome.report === "server_error") {
      bump("server_errors");
      this.#consecutiveErrors += 1;
      if (this.#consecutiveErrors >= this.#tuning.breakerThreshold && this.#openUntil <= now) {
        this.#open(now + this.#tuning.breakerCooldownMs);
        bump("breaker_trips");
      }
      return;
    }
    this.#consecutiveErrors = 0;
    if (outcome.report === "throttled") {
      bump("throttled");
      this.#pause(now + (outcome.retryAfterSeconds ?? 1) * 1000);
    } else if (outcome.report === "delivered") bump("delivered");
    else if (outcome.report === "dead_token") bump("dead_tokens");
  }

  #pause(until: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, until);
    this.#tokens = 0;
  }

  /** Open; after the cooldown requests flow again (half-open) and the first 5xx reopens at once. */
  #open(until: number): void {
    this.#openUntil = Math.max(this.#openUntil, until);
    this.#consecutiveErrors = this.#tuning.breakerThreshold - 1;
  }

  async #tellSiblings(provider: string, pauseMs: number, openMs: number): Promise<void> {
    const siblings = gateShardNames(this.env, provider).filter((name) => !this.ctx.id.equals(this.env.PUSH_GATE.idFromName(name)));
    const results = await Promise.allSettled(siblings.map((name) => call(this.env.PUSH_GATE, name, "hold", pauseMs, openMs)));
    // A sibling that missed the news learns it from its own next 429 or 5xx; nothing is sent unchecked.
    results.forEach((r, i) => {
      if (r.status === "rejected") log("push_gate_hold_failed", { provider, sibling: siblings[i], error: String(r.reason) });
    });
  }

  protected override onAlarm(): void {
    const pending = this.#pending;
    this.#pending = {};
    this.#write(pending);
  }

  /** Counts in memory, written by the alarm; a burst of calls sets the alarm once. */
  async #add(delta: Partial<GateStats>): Promise<void> {
    const fields = STAT_FIELDS.filter((f) => (delta[f] ?? 0) !== 0);
    if (fields.length === 0) return;
    for (const f of fields) this.#pending[f] = (this.#pending[f] ?? 0) + (delta[f] ?? 0);
    const due = Date.now() + TUNING.pushGateStatsWriteMs;
    if (!this.alarms.covers(due)) await this.alarms.atOrBefore(due);
  }

  /** One row write for all the counts given. */
  #write(delta: Partial<GateStats>): void {
    const fields = STAT_FIELDS.filter((f) => (delta[f] ?? 0) !== 0);
    if (fields.length === 0) return;
    this.sql.run(`UPDATE gate_stats SET ${fields.map((f) => `${f} = ${f} + ?`).join(", ")}`, ...fields.map((f) => delta[f] ?? 0));
  }
}
