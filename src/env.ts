import type { BenchDO } from "./bench/bench-do";
import type { ConversationDO } from "./conversation/conversation-do";
import type { MetricsDO } from "./observability/metrics-do";
import type { PushGateDO } from "./push/gate-do";
import type { DeadPush } from "./push/consumer";
import type { PushTuningVars } from "./push/settings";
import type { PushSettings, PushTask } from "./push/types";
import type { UserDO } from "./user/user-do";

/** Bindings and settings (wrangler.toml `[vars]`, secrets, `.dev.vars` locally). */
export interface Env extends PushSettings, PushTuningVars {
  CONVERSATIONS: DurableObjectNamespace<ConversationDO>;
  USERS: DurableObjectNamespace<UserDO>;
  PUSH_GATE: DurableObjectNamespace<PushGateDO>;
  METRICS: DurableObjectNamespace<MetricsDO>;
  /** Bench only (npm run bench): the raw-limit object, reached through /bench/* when BENCH_ENABLED="true". */
  BENCH: DurableObjectNamespace<BenchDO>;
  BENCH_ENABLED?: string;
  /** Analytics Engine dataset for the signals (production; absent locally). */
  SIGNALS?: AnalyticsEngineDataset;
  /** Media bytes (R2). */
  MEDIA: R2Bucket;
  /** Upload cap (bytes), allowed content types (comma list), per-user quota (bytes). */
  MEDIA_MAX_BYTES?: string;
  MEDIA_TYPES?: string;
  MEDIA_QUOTA_BYTES?: string;
  /** Workers Rate Limiting binding: requests per device per minute. */
  DEVICE_RATE?: RateLimit;
  PUSH_QUEUE: Queue<PushTask>;
  PUSH_DLQ: Queue<DeadPush>;
  /** HS256 secret for device tokens. */
  AUTH_SECRET: string;
  /** Optional JWKS endpoint for RS256/ES256 tokens from an identity provider. */
  JWKS_URL?: string;
  /** "true" only in local development (.dev.vars): enables POST /dev/token for the demo page. */
  DEV_MODE?: string;
  /** Service-wide retention defaults (a conversation's own policy wins); empty = keep forever. */
  RETENTION_MAX_AGE_SECONDS?: string;
  RETENTION_MAX_MESSAGES?: string;
  /** Devices unseen for this many days expire (default 90). */
  DEVICE_TTL_DAYS?: string;
  /** Admission control: rows per second one object reads for history pages / sync summaries. */
  ADMISSION_PAGE_ROWS_PER_SECOND?: string;
  ADMISSION_SYNC_ROWS_PER_SECOND?: string;
  /** How often each isolate flushes buffered signals to the MetricsDO (ms). */
  METRICS_FLUSH_MS?: string;
  /** Bearer token for the admin API. */
  ADMIN_TOKEN?: string;
}
