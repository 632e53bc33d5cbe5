/**
 * Messages between the Worker and the Durable Objects, and between objects
 * (never on the wire). Unread is derived: a conversation counts, at every seq,
 * the messages so far (M) and each sender's own (S_u); a member's unread is a
 * few differences of those at its interval bounds, read cursor and floor.
 */
import type { Membership, SenderRef } from "./types";

/** `[M(seq), S_u(seq)]` for one member at one seq. */
export type Counts = readonly [messages: number, own: number];

/** One membership interval of a member with the counts at its bounds. */
export interface ViewInterval {
  from: number;
  /** Inclusive leave seq; null while open. */
  to: number | null;
  /** Counts at `from − 1` (or at the floor, when that is higher). */
  before: Counts;
  /** Counts at `to`; null while open (the head's counts apply). */
  end: Counts | null;
}

/**
 * A conversation as one member sees it, exact at the moment it was computed.
 * Each group (head, floor, read, membership) only moves forward and is a pure
 * function of its key, so views and ticks merge in any order.
 */
export interface MemberView {
  user: string;
  conversation_id: string;
  epoch: string;
  /** The conversation's notification tick this view is at least as new as. */
  tick: number;
  /** Highest seq this user may see (their leave seq once they left). */
  head_seq: number;
  head_counts: Counts;
  last_activity_at: number | null;
  /** Who wrote the entry at head_seq, so push never wakes the sender's own device. */
  last_sender: SenderRef | null;
  /** For a former member: the floor, at most their leave seq (their history is all gone at that point). */
  floor_seq: number;
  floor_counts: Counts;
  read_seq: number;
  read_counts: Counts;
  membership: Membership;
  /** Seq of the member entry that last changed this user's membership. */
  member_seq: number;
  /** Intervals that still hold entries above the floor. */
  intervals: ViewInterval[];
  /** Ticks reach this member paced over a round (a large conversation): a device's sync asks for a view instead of waiting. */
  paced?: true;
}

/**
 * One notification window of a conversation, the same for every current member:
 * the new head and floor with M at each, and S_u for the users whose own counts
 * changed since the previous tick (a member not named kept its own counts).
 */
export interface Tick {
  conversation_id: string;
  epoch: string;
  tick: number;
  /** A member's state must be at least this tick's to apply this one; else it asks for a view. */
  from_tick: number;
  head_seq: number;
  head_messages: number;
  last_activity_at: number | null;
  last_sender: SenderRef | null;
  floor_seq: number;
  floor_messages: number;
  /** `[user, S_u(head)]` for users who sent since the previous tick. */
  senders: [string, number][];
  /** `[user, S_u(floor)]` for users whose messages retention removed since the previous tick. */
  floor_senders: [string, number][];
  /** As in MemberView. */
  paced?: true;
}

/** What applying a tick did for one member: `stale` asks the conversation for an exact view. */
export type TickResult = "ok" | "stale";

/** The ConversationDO's answer to a cursor update for one user. */
export interface CursorCheck {
  view: MemberView;
  /** The device's requested `received`, clamped to what the user may see. */
  received: number | null;
}

export interface PageParams {
  after?: number;
  before?: number;
  limit: number;
  epoch?: string;
}

/** A string holding the JSON of a `T`: built once in the object, passed through by the Worker. */
export type Json<T> = string & { readonly __json?: T };
