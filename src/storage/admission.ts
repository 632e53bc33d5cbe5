/**
 * Admission control for expensive reads inside one Durable Object. An object
 * runs one request at a time, so the work to bound is rows read per second: a
 * token bucket of rows. Past it the caller gets `503 overloaded` with a jittered
 * Retry-After and retries later, instead of the object's input queue growing
 * until the platform sheds everything (cheap calls included).
 */
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
  take(rows: number): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = Date.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
    const cost = Math.min(rows, this.burst);
    if (this.#tokens >= cost) {
      this.#tokens -= cost;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: ((cost - this.#tokens) / this.perSecond) * 1000 };
  }
}

/** Retry-After seconds for a shed request: at least the wait, plus jitter so clients spread out. */
export function shedRetryAfter(retryAfterMs: number): number {
  return Math.ceil(retryAfterMs / 1000) + 1 + Math.floor(Math.random() * 3);
}

export function envNumber(value: string | undefined, fallback: number): number {
  const n = value === undefined || value === "" ? NaN : Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
