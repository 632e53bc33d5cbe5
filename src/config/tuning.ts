/**
 * Server tuning: how the service spends its work. None of this is part of the
 * wire contract (that is src/protocol/limits.ts); operators change the few
 * that matter through settings (src/config/settings.ts).
 */
export const TUNING = {
  /** Durable Object calls: attempts for retryable platform errors, backoff base. */
  rpcAttempts: 4,
  rpcBaseDelayMs: 20,

  /** Member notification: the coalescing window after a quiet spell, and while the conversation is busy. */
  notifyWindowMs: 25,
  notifyMaxWindowMs: 1000,
  /** Concurrent outbound calls while one object pokes its slice. */
  notifyConcurrency: 16,
  /** Backoff of a targeted (per-member) update that failed. */
  notifyRetryBaseMs: 100,
  notifyRetryMaxMs: 60_000,
  /** A paced tick round (large conversations) never takes longer than this: the pace rises instead. */
  notifyMaxRoundMs: 600_000,
  /** Sync asks paced conversations for the member's exact view: at most this many, each at most once per interval. */
  syncPullMax: 20,
  syncPullFreshMs: 1000,
  syncPullConcurrency: 8,
  /** Senders one notification tick may name; a longer window is split. */
  tickMaxSenders: 500,

  /** Retention: entries removed per batch, and batches per alarm run. */
  retentionBatch: 500,
  retentionBatchesPerAlarm: 4,
  /** An idempotency key lasts as long as its entry, and this long from the send when retention removes the entry sooner. */
  idempotencyKeepMs: 7 * 24 * 3600 * 1000,

  /** Live sockets: entries per catch-up page, bytes per catch-up frame, sockets per live shard. */
  catchUpPage: 100,
  maxFrameBytes: 512 * 1024,
  liveShardSockets: 2000,
  liveShards: 64,
  /** A live shard whose batch was given up is reconciled by the alarm this often until it answers. */
  liveReconcileRetryMs: 1000,
  /** Conversations a sync reads timelines from at once. */
  syncTimelineConcurrency: 16,
  /** Receipt frames: at most one per socket per this interval. */
  receiptIntervalMs: 1000,
  /** Senders of this many newest entries get receipt frames when cursors move. */
  receiptRecentEntries: 50,

  /** Media sweeps: objects handled per alarm run; how long an upload may stay unreferenced. */
  mediaSweepBatch: 100,
  mediaOrphanGraceMs: 24 * 3600 * 1000,
  mediaReleaseBaseMs: 1000,
  mediaReleaseMaxMs: 60_000,

  /** Conversations told per alarm run to forget a deleted device; how long a confirmed forget is kept for an ack that raced it. */
  forgetBatch: 100,
  forgetSettleMs: 10 * 60_000,

  /** Outstanding socket tickets per user (oldest dropped). */
  maxTicketsPerUser: 100,

  /** Verified-token cache per isolate: entries and bytes of tokens. */
  verifiedTokens: 10_000,
  verifiedTokenBytes: 8 * 1024 * 1024,
  /** JWKS: fetch timeout, cache lifetime bounds (Cache-Control is clamped to them), cooldowns, how long stale keys serve. */
  jwks: {
    timeoutMs: 5_000,
    minTtlMs: 60_000,
    maxTtlMs: 24 * 3600_000,
    defaultTtlMs: 10 * 60_000,
    unknownKeyCooldownMs: 30_000,
    failureBackoffMs: 5_000,
    maxStaleMs: 24 * 3600_000,
  },

  /** Metrics: shards the signals are aggregated over; gauge freshness; gauge sources kept. */
  metricsShards: 16,
  gaugeFreshMs: 60_000,
  maxGaugeSources: 10_000,

  /** Push: gate shards per provider, consumer backoff cap, gate deferrals before dead-lettering, dead letters kept. */
  pushGateShards: 8,
  pushMaxBackoffSeconds: 3600,
  pushMaxDeferrals: 50,
  maxDeadLetters: 1000,
  /** Provider requests one consumer batch has in flight; messages per queue sendBatch; dead letters listed per provider; gate stats write interval. */
  pushSendConcurrency: 10,
  pushSendBatchMax: 100,
  recentDeadLetters: 100,
  pushGateStatsWriteMs: 1000,

  /** Shed responses: Retry-After seconds = wait + 1 + jitter in [0, spread). */
  shedRetrySpreadSeconds: 3,
  /** Rate-limited devices: Retry-After in [min, min + spread). */
  rateLimitRetryMinSeconds: 5,
  rateLimitRetrySpreadSeconds: 10,
  /** Socket caps refused with this Retry-After. */
  socketCapRetrySeconds: 5,
} as const;
