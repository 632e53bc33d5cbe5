/**
 * PushGateDO: one per provider. A token bucket caps the request rate to the
 * provider, a provider 429 pauses everyone until its Retry-After, and a circuit
 * breaker stops sending after sustained 5xx. It also records dead letters.
 *
 * The bucket lives in memory: the object only leaves memory after it has been
 * idle, by which time a fresh bucket is what the refill would have produced.
 */
import type { Env } from "../env";
import { SqlDurableObject } from "../storage/sql-object";
import type { Migration } from "../storage/migrate";
import v1 from "../../migrations/push_gate/0001_init.sql";
import { pushTuning, type PushTuning } from "./settings";

const MIGRATIONS: readonly Migration[] = [{ version: 1, sql: v1 }];
const MAX_DEAD_LETTERS = 1000;

export type Permit = { granted: true } | { granted: false; retryAfterMs: number; reason: "rate" | "paused" | "circuit_open" };
export type GateReport = "delivered" | "throttled" | "server_error" | "dead_token" | "rejected";

export type DeadLetter = {
  user_id: string;
  device_id: string;
  conversation_id: string;
  attempts: number;
  reason: string;
};

export type GateStats = Record<"granted" | "denied" | "delivered" | "throttled" | "server_errors" | "dead_tokens" | "breaker_trips" | "dead_letters", number>;

export class PushGateDO extends SqlDurableObject {
  readonly #tuning: PushTuning;
  #tokens: number;
  #refilledAt = Date.now();
  #pausedUntil = 0;
  #consecutiveErrors = 0;
  #openUntil = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
    this.#tuning = pushTuning(env);
    this.#tokens = this.#tuning.burst;
  }

  /** Asks to send one request to the provider now. */
  async acquire(): Promise<Permit> {
    this.ready();
    const now = Date.now();
    const denied = (retryAfterMs: number, reason: "rate" | "paused" | "circuit_open"): Permit => {
      this.#count("denied");
      return { granted: false, retryAfterMs: Math.ceil(retryAfterMs), reason };
    };
    if (this.#pausedUntil > now) return denied(this.#pausedUntil - now, "paused");
    if (this.#openUntil > now) return denied(this.#openUntil - now, "circuit_open");
    this.#tokens = Math.min(this.#tuning.burst, this.#tokens + ((now - this.#refilledAt) / 1000) * this.#tuning.ratePerSecond);
    this.#refilledAt = now;
    if (this.#tokens < 1) return denied(((1 - this.#tokens) / this.#tuning.ratePerSecond) * 1000, "rate");
    this.#tokens -= 1;
    this.#count("granted");
    return { granted: true };
  }

  /** The outcome of a granted request; feeds the pause and the breaker. */
  async report(outcome: GateReport, retryAfterSeconds?: number): Promise<void> {
    this.ready();
    const now = Date.now();
    if (outcome === "server_error") {
      this.#count("server_errors");
      this.#consecutiveErrors += 1;
      if (this.#consecutiveErrors >= this.#tuning.breakerThreshold && this.#openUntil <= now) {
        // Open; after the cooldown one request is let through (half-open) and decides.
        this.#openUntil = now + this.#tuning.breakerCooldownMs;
        this.#consecutiveErrors = this.#tuning.breakerThreshold - 1;
        this.#count("breaker_trips");
      }
      return;
    }
    this.#consecutiveErrors = 0;
    if (outcome === "throttled") {
      this.#count("throttled");
      this.#pausedUntil = Math.max(this.#pausedUntil, now + (retryAfterSeconds ?? 1) * 1000);
      this.#tokens = 0;
    } else if (outcome === "delivered") this.#count("delivered");
    else if (outcome === "dead_token") this.#count("dead_tokens");
  }

  async recordDeadLetter(letter: DeadLetter): Promise<void> {
    this.ready();
    this.ctx.storage.transactionSync(() => {
      this.sql.run(
        "INSERT INTO dead_letters (user_id, device_id, conversation_id, attempts, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        letter.user_id, letter.device_id, letter.conversation_id, letter.attempts, letter.reason, Date.now(),
      );
      this.sql.run("DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?", MAX_DEAD_LETTERS);
      this.#count("dead_letters");
    });
  }

  async stats(): Promise<{ stats: GateStats; dead_letters: (DeadLetter & { created_at: number })[]; circuit_open: boolean }> {
    this.ready();
    const stats = this.sql.one<GateStats>("SELECT granted, denied, delivered, throttled, server_errors, dead_tokens, breaker_trips, dead_letters FROM gate_stats");
    const letters = this.sql.all<DeadLetter & { created_at: number }>(
      "SELECT user_id, device_id, conversation_id, attempts, reason, created_at FROM dead_letters ORDER BY id DESC LIMIT 100",
    );
    return { stats, dead_letters: letters, circuit_open: this.#openUntil > Date.now() };
  }

  #count(field: keyof GateStats): void {
    this.sql.run(`UPDATE gate_stats SET ${field} = ${field} + 1`);
  }
}
