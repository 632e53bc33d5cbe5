/** What the ConversationDO's RPC methods take and return beyond the wire types. */
import type { RetentionPolicy, SenderRef } from "../protocol/types";

export interface ExpiredReceipts {
  conversation_id: string;
  floor_seq: number;
  expired: { user: string; device: string | null; entries: number; last_seq: number; updated_at: string }[];
}

export interface ConversationStats {
  id: string;
  head_seq: number;
  floor_seq: number;
  members: number;
  live_sockets: number;
  outbox_pending: number;
  /** Age of the oldest entry some current member's device has not received (the "oldest undelivered message" signal). */
  oldest_undelivered_ms: number;
  /** Age of the oldest change some member's index has not confirmed (the service's own notification lag). */
  notify_lag_ms: number;
  expired_total: number;
  unavailable_total: number;
  retention: RetentionPolicy;
  /** The cost model, measured: sends and the SQLite rows they wrote. */
  sends_total: number;
  rows_written_sends_total: number;
  notify: { tick: number; leaves: number; fanout: number };
}

export interface CreateInput {
  id: string;
  creator: SenderRef;
  members: string[];
  retention?: RetentionPolicy;
}
