/**
 * Admission control for expensive reads inside one Durable Object. An object
 * runs one request at a time, so the work to bound is rows read per second: a
 * token bucket of rows. Past it the caller gets `503 overloaded` with a jittered
 * Retry-After and retries later, instead of the object's input queue growing
 * until the platform sheds everything (cheap calls included).
 */
import { TUNING } from "../config/tuning";
import { fail, type Failure } from "../protocol/errors";
import { retryAfterSeconds } from "./retry";

export class RowBudget {
  #tokens: number;
  #at = Date.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number = perSecond,
  ) {
    this.#tokens = burst;
  }

  /** Takes `rows` from the budget, or returns how long (ms) until they would be there. */
  take(rows: number, now = Date.now()): { ok: true } | { ok: false; retryAfterMs: number } {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    const cost = Math.min(rows, this.burst);
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: ((cost - this.#tokens) / this.perSecond) * 1000 };
  }

  /** `take` as a contract failure: null when admitted. */
  admit(rows: number, what: string): Failure | null {
    const admitted = this.take(rows);
    if (admitted.ok) return null;
    return fail("overloaded", `${what} is being shed; retry later`, {
      retryAfter: retryAfterSeconds(admitted.retryAfterMs + 1000, TUNING.shedRetrySpreadSeconds),
    });
  }
}
