/**
 * Offline-delivery backend on Durable Objects. Table of contents:
 * - the public HTTP API (Hono): src/worker/app.ts
 * - ConversationDO, one per conversation (log, membership, outbox): src/conversation/
 * - UserDO, one per user (devices, index, cursors, per-device queue, push decisions): src/user/
 * - push handoff: queue consumer, provider adapters, PushGateDO rate cap: src/push/
 * - wire types shared with clients: src/protocol/
 */
import { app } from "./worker/app";
import type { Env } from "./env";
import { handleDeadLetters, handlePushBatch, type DeadPush } from "./push/consumer";
import type { PushTask } from "./push/types";

export { ConversationDO } from "./conversation/conversation-do";
export { UserDO } from "./user/user-do";
export { PushGateDO } from "./push/gate-do";
export { MetricsDO } from "./observability/metrics-do";
export { BenchDO } from "./bench/bench-do";

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    if (batch.queue === "push-dlq") return handleDeadLetters(batch as MessageBatch<DeadPush>, env);
    return handlePushBatch(batch as MessageBatch<PushTask>, env);
  },
} satisfies ExportedHandler<Env, PushTask | DeadPush>;
