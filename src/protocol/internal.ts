/** Messages between the Worker and the Durable Objects (not on the wire). */
import type { Membership, SenderRef } from "./types";

/**
 * What a member's UserDO learns about one conversation: the ConversationDO's view
 * of that member at `version`. Newer versions replace older ones; an older poke
 * that arrives late is ignored, so retries and reordering are harmless.
 */
export interface IndexUpdate {
  /** The member this view is for. */
  user: string;
  conversation_id: string;
  epoch: string;
  /** Highest seq this user may see (their leave seq once they left). */
  head_seq: number;
  floor_seq: number;
  read: number;
  unread: number;
  membership: Membership;
  last_activity_at: number | null;
  version: number;
  /** Who caused the newest change, so push never wakes the sender's own device. */
  last_sender: SenderRef | null;
}

/** The ConversationDO's answer to a cursor update for one user. */
export interface CursorCheck {
  update: IndexUpdate;
  /** The device's requested `received`, clamped to what the user may see. */
  received: number | null;
}

export interface PageParams {
  after?: number;
  before?: number;
  limit: number;
  epoch?: string;
}
