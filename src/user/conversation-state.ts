/**
 * One conversation as this user's index holds it, and the pure rules that keep
 * it right: exact views and per-window ticks merge group by group (each group
 * only moves forward and is a function of its seq), so they may arrive in any
 * order, twice, or late. Unread is recomputed from the running counts at the
 * interval bounds, the read cursor and the floor: exact, never accumulated.
 */
import type { Counts, MemberView, Tick, ViewInterval } from "../protocol/internal";
import type { Membership, SenderRef } from "../protocol/types";

export interface At {
  seq: number;
  counts: Counts;
}

export interface ConversationState {
  epoch: string;
  /** The conversation's tick this state is at least as new as. */
  tick: number;
  head: At;
  floor: At;
  read: At;
  membership: Membership;
  member_seq: number;
  intervals: ViewInterval[];
  last_activity_at: number | null;
  last_sender: SenderRef | null;
  /** Ticks come paced: sync pulls an exact view. */
  paced: boolean;
}

export function fromView(v: MemberView): ConversationState {
  return {
    epoch: v.epoch,
    tick: v.tick,
    head: { seq: v.head_seq, counts: v.head_counts },
    floor: { seq: v.floor_seq, counts: v.floor_counts },
    read: { seq: v.read_seq, counts: v.read_counts },
    membership: v.membership,
    member_seq: v.member_seq,
    intervals: v.intervals,
    last_activity_at: v.last_activity_at,
    last_sender: v.last_sender,
    paced: v.paced === true,
  };
}

/** Merges an exact view into what the index had (null: nothing yet). */
export function mergeView(s: ConversationState | null, v: MemberView): ConversationState {
  const next = fromView(v);
  if (!s || s.epoch !== v.epoch) return next;
  // A membership change decides the visible head and floor (a leave caps them); otherwise each group keeps its maximum.
  if (v.member_seq > s.member_seq) return { ...next, read: s.read.seq > next.read.seq ? s.read : next.read, tick: Math.max(s.tick, v.tick) };
  const headNewer = next.head.seq > s.head.seq;
  return {
    ...s,
    tick: Math.max(s.tick, v.tick),
    paced: next.paced,
    head: headNewer ? next.head : s.head,
    last_activity_at: headNewer ? next.last_activity_at : s.last_activity_at,
    last_sender: headNewer ? next.last_sender : s.last_sender,
    floor: next.floor.seq > s.floor.seq ? next.floor : s.floor,
    read: next.read.seq > s.read.seq ? next.read : s.read,
    intervals: v.member_seq === s.member_seq ? next.intervals : s.intervals,
  };
}

/**
 * Applies a tick for `user`. `stale`: this state is older than the tick
 * builds on (a tick was missed), so the conversation must send a view.
 * Null: nothing to change (a former member, or an older tick).
 */
export function mergeTick(s: ConversationState | null, user: string, t: Tick): ConversationState | "stale" | null {
  if (!s || s.epoch !== t.epoch) return "stale";
  if (s.membership !== "member") return null;
  if (s.tick < t.from_tick) return "stale";
  const headNewer = t.head_seq > s.head.seq;
  const floorNewer = t.floor_seq > s.floor.seq;
  if (!headNewer && !floorNewer && t.tick <= s.tick) return null;
  // A user the tick does not name sent nothing since the tick this state is at least as new as: own counts stay.
  const own = (list: [string, number][], fallback: number) => list.find(([u]) => u === user)?.[1] ?? fallback;
  return {
    ...s,
    tick: Math.max(s.tick, t.tick),
    paced: t.paced === true,
    head: headNewer ? { seq: t.head_seq, counts: [t.head_messages, own(t.senders, s.head.counts[1])] } : s.head,
    last_activity_at: headNewer ? t.last_activity_at : s.last_activity_at,
    last_sender: headNewer ? t.last_sender : s.last_sender,
    floor: floorNewer ? { seq: t.floor_seq, counts: [t.floor_messages, own(t.floor_senders, s.floor.counts[1])] } : s.floor,
  };
}

/** Messages of others inside the user's intervals, after `read`, above the floor. */
export function unreadOf(s: ConversationState): number {
  let total = 0;
  for (const i of s.intervals) {
    const open = i.to === null;
    if (open && s.membership !== "member") continue;
    const hi: At = open ? s.head : { seq: i.to!, counts: i.end! };
    let lo: At = { seq: i.from - 1, counts: i.before };
    if (s.read.seq > lo.seq) lo = s.read;
    if (s.floor.seq > lo.seq) lo = s.floor;
    if (hi.seq <= lo.seq) continue;
    total += hi.counts[0] - lo.counts[0] - (hi.counts[1] - lo.counts[1]);
  }
  return Math.max(0, total);
}
