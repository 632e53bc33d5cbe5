/** What the ConversationDO's RPC methods take and return beyond the wire types. */
import type * as z from "zod";
import type { conversationStatsSchema } from "../protocol/admin-responses";
import type { expiredReceiptsSchema } from "../protocol/responses";
import type { RetentionPolicy, SenderRef } from "../protocol/types";

/** The operator view and the expired-receipts answer are typed from their response schemas (the OpenAPI document's shapes). */
export type ExpiredReceipts = z.infer<typeof expiredReceiptsSchema>;
export type ConversationStats = z.infer<typeof conversationStatsSchema>;

export interface CreateInput {
  id: string;
  creator: SenderRef;
  members: string[];
  retention?: RetentionPolicy;
}
