/**
 * Offline-delivery backend on Durable Objects. Table of contents:
 * - the public HTTP API (Hono): src/worker/app.ts
 * - ConversationDO, one per conversation (log, membership, outbox): src/conversation/
 * - UserDO, one per user (devices, index, cursors, per-device queue): src/user/
 * - wire types shared with clients: src/protocol/
 */
import { app } from "./worker/app";
import type { Env } from "./env";

export { ConversationDO } from "./conversation/conversation-do";
export { UserDO } from "./user/user-do";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
