/**
 * offline-delivery on Cloudflare Durable Objects. Table of contents:
 *
 * - worker/        the public HTTP API (Hono): middleware, auth, CORS, one file of routes per area
 * - usecases/      what HTTP routes and socket frames both do: send, move cursors, sync with timelines
 * - conversation/  ConversationDO, one per conversation: log, members, notification, retention, live sockets, receipts
 * - fanout/        shard objects of large conversations: the notification tree, live socket shards
 * - user/          UserDO, one per user: devices, conversation index, cursors, push decisions, to-device queue, inbox, tickets
 * - media/         attachments: upload/download routes, R2 keys, the owner's metadata
 * - push/          queue consumer, provider gates, provider adapters
 * - observability/ the nine signals, sharded metrics aggregation, Prometheus
 * - platform/      under every object: base object, alarms, retry, RPC, SQL, schema, sockets, admission
 * - config/        settings (one typed reader of the environment) and server tuning
 * - protocol/      wire types, schemas, limits, frames: shared with the client SDK
 * - client/        the client SDK (its own TypeScript project)
 */
import { fetchHandler } from "./worker/app";
import type { Env } from "./env";
import { handleDeadLetters, handlePushBatch, type DeadPush } from "./push/consumer";
import type { PushTask } from "./push/types";

export { ConversationDO } from "./conversation/conversation-do";
export { UserDO } from "./user/user-do";
export { NotifyShardDO } from "./fanout/notify-shard-do";
export { LiveShardDO } from "./fanout/live-shard-do";
export { PushGateDO } from "./push/gate-do";
export { MetricsDO } from "./observability/metrics-do";

export default {
  fetch: fetchHandler,
  async queue(batch, env) {
    if (batch.queue === "push-dlq") return handleDeadLetters(batch as MessageBatch<DeadPush>, env);
    return handlePushBatch(batch as MessageBatch<PushTask>, env);
  },
} satisfies ExportedHandler<Env, PushTask | DeadPush>;
