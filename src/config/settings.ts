/**
 * One typed reader for every setting that comes from the environment
 * (wrangler.toml `[vars]`, secrets, `.dev.vars`). Values are parsed once per
 * env object; a missing, empty or out-of-range value falls back to its default,
 * so a typo in a var degrades to the documented default instead of NaN.
 */
import type { Env } from "../env";

export interface Settings {
  retention: { maxAgeSeconds: number | null; maxMessages: number | null };
  deviceTtlMs: number;
  admission: { pageRowsPerSecond: number; syncRowsPerSecond: number };
  metricsFlushMs: number;
  media: { maxBytes: number; types: string[]; quotaBytes: number };
  push: PushTuning;
  /** Outbound calls one object makes per notification window; the shard tree's width. */
  notifyFanout: number;
  /** Member pokes per second one large conversation's tree spreads a tick round over (its cost ceiling). */
  notifyPokesPerSecond: number;
  /** Live sockets a conversation keeps itself; more go to live shard objects. */
  liveRootSockets: number;
  auth: { clockSkewSeconds: number; jwksUrl: string | null };
  allowedOrigins: string[];
  logLevel: "debug" | "info" | "error" | "silent";
}

export interface PushTuning {
  /** At most one push per device per conversation in this window. */
  collapseMs: number;
  /** At most one push per device in this interval, across conversations (they are merged). */
  deviceMinIntervalMs: number;
  /** A first change waits this long so a burst becomes one push. */
  aggregateMs: number;
  /** Provider-wide token bucket (split over the provider's gate shards). */
  ratePerSecond: number;
  burst: number;
  /** Attempts before a push goes to the dead-letter queue. */
  maxAttempts: number;
  /** Consecutive 5xx that open the circuit, and how long it stays open. */
  breakerThreshold: number;
  breakerCooldownMs: number;
}

const DEFAULT_MEDIA_TYPES = "image/jpeg,image/png,image/webp,image/gif,video/mp4,audio/mpeg,audio/ogg,application/pdf";

/** A number from a var: `fallback` when absent, empty, not a number or below `min`. */
export function numberSetting(value: string | undefined, fallback: number, min = Number.MIN_VALUE): number {
  const n = value === undefined || value.trim() === "" ? NaN : Number(value);
  return Number.isFinite(n) && n >= min ? n : fallback;
}

function optionalPositive(value: string | undefined): number | null {
  const n = numberSetting(value, 0, 0);
  return n > 0 ? n : null;
}

export function listSetting(value: string | undefined, fallback = ""): string[] {
  return (value === undefined || value.trim() === "" ? fallback : value)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function read(env: Env): Settings {
  const rate = numberSetting(env.PUSH_RATE_PER_SECOND, 50, 0.001);
  const level = env.LOG_LEVEL;
  return {
    retention: {
      maxAgeSeconds: optionalPositive(env.RETENTION_MAX_AGE_SECONDS),
      maxMessages: optionalPositive(env.RETENTION_MAX_MESSAGES),
    },
    deviceTtlMs: numberSetting(env.DEVICE_TTL_DAYS, 90) * 86_400_000,
    admission: {
      pageRowsPerSecond: numberSetting(env.ADMISSION_PAGE_ROWS_PER_SECOND, 50_000, 1),
      syncRowsPerSecond: numberSetting(env.ADMISSION_SYNC_ROWS_PER_SECOND, 200_000, 1),
    },
    metricsFlushMs: numberSetting(env.METRICS_FLUSH_MS, 1000, 0),
    media: {
      maxBytes: numberSetting(env.MEDIA_MAX_BYTES, 25 * 1024 * 1024, 1),
      types: listSetting(env.MEDIA_TYPES, DEFAULT_MEDIA_TYPES).map((t) => t.toLowerCase()),
      quotaBytes: numberSetting(env.MEDIA_QUOTA_BYTES, 1024 ** 3, 1),
    },
    push: {
      collapseMs: numberSetting(env.PUSH_COLLAPSE_SECONDS, 60, 0) * 1000,
      deviceMinIntervalMs: numberSetting(env.PUSH_DEVICE_MIN_INTERVAL_SECONDS, 10, 0) * 1000,
      aggregateMs: numberSetting(env.PUSH_AGGREGATE_MS, 1000, 0),
      ratePerSecond: rate,
      burst: numberSetting(env.PUSH_BURST, Math.max(1, rate), 1),
      maxAttempts: numberSetting(env.PUSH_MAX_ATTEMPTS, 8, 1),
      breakerThreshold: numberSetting(env.PUSH_BREAKER_THRESHOLD, 5, 1),
      breakerCooldownMs: numberSetting(env.PUSH_BREAKER_COOLDOWN_SECONDS, 30, 0) * 1000,
    },
    notifyFanout: Math.floor(numberSetting(env.NOTIFY_FANOUT, 100, 2)),
    notifyPokesPerSecond: numberSetting(env.NOTIFY_POKES_PER_SECOND, 2000, 1),
    liveRootSockets: Math.floor(numberSetting(env.LIVE_ROOT_SOCKETS, 200, 0)),
    auth: {
      clockSkewSeconds: numberSetting(env.AUTH_CLOCK_SKEW_SECONDS, 60, 0),
      jwksUrl: env.JWKS_URL?.trim() ? env.JWKS_URL.trim() : null,
    },
    allowedOrigins: listSetting(env.ALLOWED_ORIGINS),
    logLevel: level === "debug" || level === "error" || level === "silent" ? level : "info",
  };
}

const cache = new WeakMap<Env, Settings>();

/**
 * The settings of this environment.
 * @example const { retention } = settings(env);
 */
export function settings(env: Env): Settings {
  let s = cache.get(env);
  if (!s) cache.set(env, (s = read(env)));
  return s;
}
