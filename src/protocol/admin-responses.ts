/**
 * Response schemas of the service endpoints outside the wire contract:
 * /healthz and the operator API (/admin/api/*, ADMIN_TOKEN). They exist for
 * the OpenAPI document and the tests that check real responses against it;
 * the shapes come from src/worker/routes/admin.ts, src/worker/admin-users.ts,
 * UserDO/ConversationDO `stats()`, src/push/gate-do.ts `readGate()` and
 * src/observability/snapshot.ts.
 */
import * as z from "zod";

const count = z.number().int().min(0);
const isoTime = z.string().meta({ format: "date-time" }).describe("ISO 8601 timestamp");
const provider = z.enum(["webhook", "webpush", "apns", "fcm"]);

export const healthSchema = z.object({ ok: z.literal(true) });

export const metricsSnapshotSchema = z
  .object({
    at: z.number().int().describe("ms since the epoch: the newest shard's read"),
    counters: z.array(z.object({ name: z.string(), labels: z.record(z.string(), z.string()), value: z.number() })),
    gauges: z.array(z.object({ name: z.string(), value: z.number(), sources: count.describe("sources that reported recently") })),
    histograms: z.array(
      z.object({
        name: z.string(),
        buckets: z.array(z.object({ le: z.number().nullable().describe("upper bound; null is +Inf"), count })),
        sum: z.number(),
        count,
      }),
    ),
  })
  .meta({ id: "MetricsSnapshot" });

export const userStatsSchema = z
  .object({
    conversations: count,
    checkpoint: count.describe("the user's change position (sync checkpoints are opaque forms of it)"),
    pokes: count,
    pushes_enqueued: count,
    pushes_converted: count,
    devices: z.array(
      z.object({
        device_id: z.string(),
        online: z.boolean().describe("an inbox socket is open"),
        push_provider: provider.nullable(),
        backlog_entries: count.describe("entries this device is behind and can still get"),
        queue_entries: count.describe("to-device entries waiting"),
        queue_dropped: count,
        last_seen_at: isoTime,
        last_push_at: isoTime.nullable(),
        oldest_undelivered_seconds: z.number().min(0),
      }),
    ),
  })
  .meta({ id: "UserStats" });

export const conversationStatsSchema = z
  .object({
    id: z.string(),
    head_seq: count,
    floor_seq: count,
    members: count,
    live_sockets: count,
    outbox_pending: count,
    oldest_undelivered_ms: z.number().min(0).describe("age of the oldest entry some current member's device has not received (the oldest-undelivered signal)"),
    notify_lag_ms: z.number().min(0).describe("age of the oldest change some member's index has not confirmed (notification lag)"),
    expired_total: count,
    unavailable_total: count,
    retention: z.object({ max_age_seconds: z.number().int().optional(), max_messages: z.number().int().optional() }),
    sends_total: count,
    rows_written_sends_total: count.describe("SQLite rows the sends wrote (the cost model: divide by sends_total)"),
    notify: z.object({ tick: count, leaves: count, fanout: count }),
  })
  .meta({ id: "ConversationStats" });

export const pushGatesSchema = z
  .object({
    providers: z.array(
      z.object({
        provider,
        stats: z.object({
          granted: count,
          denied: count,
          delivered: count,
          throttled: count,
          server_errors: count,
          dead_tokens: count,
          breaker_trips: count,
          dead_letters: count,
        }),
        dead_letters: z.array(
          z.object({
            user_id: z.string(),
            device_id: z.string(),
            conversation_id: z.string(),
            attempts: count,
            reason: z.string(),
            created_at: z.number().int().describe("ms since the epoch"),
          }),
        ),
        circuit_open: z.boolean(),
      }),
    ),
  })
  .meta({ id: "PushGates" });
