/** Push tunables, from wrangler.toml `[vars]` with safe defaults. */
export interface PushTuningVars {
  PUSH_COLLAPSE_SECONDS?: string;
  PUSH_DEVICE_MIN_INTERVAL_SECONDS?: string;
  PUSH_AGGREGATE_MS?: string;
  PUSH_RATE_PER_SECOND?: string;
  PUSH_BURST?: string;
  PUSH_MAX_ATTEMPTS?: string;
  PUSH_BREAKER_THRESHOLD?: string;
  PUSH_BREAKER_COOLDOWN_SECONDS?: string;
}

export interface PushTuning {
  /** At most one push per device per conversation in this window. */
  collapseMs: number;
  /** At most one push per device in this interval, across conversations (they are merged). */
  deviceMinIntervalMs: number;
  /** A first change waits this long so a burst becomes one push. */
  aggregateMs: number;
  /** Provider-wide token bucket. */
  ratePerSecond: number;
  burst: number;
  /** Attempts before a push goes to the dead-letter queue (matches wrangler.toml max_retries + 1). */
  maxAttempts: number;
  /** Consecutive 5xx that open the circuit, and how long it stays open. */
  breakerThreshold: number;
  breakerCooldownMs: number;
}

function num(value: string | undefined, fallback: number, min: number): number {
  const n = value === undefined || value === "" ? NaN : Number(value);
  return Number.isFinite(n) && n >= min ? n : fallback;
}

export function pushTuning(vars: PushTuningVars): PushTuning {
  const rate = num(vars.PUSH_RATE_PER_SECOND, 50, 0.001);
  return {
    collapseMs: num(vars.PUSH_COLLAPSE_SECONDS, 60, 0) * 1000,
    deviceMinIntervalMs: num(vars.PUSH_DEVICE_MIN_INTERVAL_SECONDS, 10, 0) * 1000,
    aggregateMs: num(vars.PUSH_AGGREGATE_MS, 1000, 0),
    ratePerSecond: rate,
    burst: num(vars.PUSH_BURST, Math.max(1, rate), 1),
    maxAttempts: num(vars.PUSH_MAX_ATTEMPTS, 8, 1),
    breakerThreshold: num(vars.PUSH_BREAKER_THRESHOLD, 5, 1),
    breakerCooldownMs: num(vars.PUSH_BREAKER_COOLDOWN_SECONDS, 30, 0) * 1000,
  };
}
