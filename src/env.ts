import type { ConversationDO } from "./conversation/conversation-do";
import type { LiveShardDO } from "./fanout/live-shard-do";
import type { NotifyShardDO } from "./fanout/notify-shard-do";
import type { MetricsDO } from "./observability/metrics-do";
import type { PushGateDO } from "./push/gate-do";
import type { DeadPush } from "./push/consumer";
import type { PushSettings, PushTask } from "./push/types";
import type { UserDO } from "./user/user-do";

/**
 * Bindings and settings (wrangler.toml `[vars]`, secrets, `.dev.vars` locally).
 * Settings are read through src/config/settings.ts, never parsed here and there.
 */
export interface Env extends PushSettings {
  CONVERSATIONS: DurableObjectNamespace<ConversationDO>;
  USERS: DurableObjectNamespace<UserDO>;
  /** Notification tree nodes of large conversations. */
  NOTIFY: DurableObjectNamespace<NotifyShardDO>;
  /** Live socket shards of large conversations. */
  LIVE: DurableObjectNamespace<LiveShardDO>;
  PUSH_GATE: DurableObjectNamespace<PushGateDO>;
  METRICS: DurableObjectNamespace<MetricsDO>;
  /** Analytics Engine dataset for the signals (production; absent locally). */
  SIGNALS?: AnalyticsEngineDataset;
  /** Media bytes (R2). */
  MEDIA: R2Bucket;
  /** Workers Rate Limiting binding: requests per device per minute. */
  DEVICE_RATE?: RateLimit;
  PUSH_QUEUE: Queue<PushTask>;
  PUSH_DLQ: Queue<DeadPush>;
  /** HS256 secret for device tokens. */
  AUTH_SECRET: string;
  /** Bearer token for the admin API. */
  ADMIN_TOKEN?: string;
  /** "true" only in local development (.dev.vars): enables POST /dev/token for the demo page. */
  DEV_MODE?: string;

  // ---- settings (src/config/settings.ts) ----
  JWKS_URL?: string;
  AUTH_CLOCK_SKEW_SECONDS?: string;
  ALLOWED_ORIGINS?: string;
  RETENTION_MAX_AGE_SECONDS?: string;
  RETENTION_MAX_MESSAGES?: string;
  DEVICE_TTL_DAYS?: string;
  ADMISSION_PAGE_ROWS_PER_SECOND?: string;
  ADMISSION_SYNC_ROWS_PER_SECOND?: string;
  METRICS_FLUSH_MS?: string;
  MEDIA_MAX_BYTES?: string;
  MEDIA_TYPES?: string;
  MEDIA_QUOTA_BYTES?: string;
  NOTIFY_FANOUT?: string;
  NOTIFY_POKES_PER_SECOND?: string;
  LIVE_ROOT_SOCKETS?: string;
  LOG_LEVEL?: string;
  PUSH_COLLAPSE_SECONDS?: string;
  PUSH_DEVICE_MIN_INTERVAL_SECONDS?: string;
  PUSH_AGGREGATE_MS?: string;
  PUSH_RATE_PER_SECOND?: string;
  PUSH_BURST?: string;
  PUSH_MAX_ATTEMPTS?: string;
  PUSH_BREAKER_THRESHOLD?: string;
  PUSH_BREAKER_COOLDOWN_SECONDS?: string;
}
