/**
 * Derived counts and exact member views. M(seq) is stored on every entry and
 * S_u(seq) is one indexed lookup, so a member's view (and its unread) costs a
 * few lookups whatever the conversation's size; nothing per member is written
 * when a message is sent.
 */
import type { Counts, MemberView, ViewInterval } from "../protocol/internal";
import type { ConversationStore, Meta } from "./store";

const NONE: Counts = [0, 0];

export class Views {
  constructor(
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    private readonly paced: () => boolean,
  ) {}

  /** [M, S_user] at `seq`, for seq at or above the floor (below it, the floor's). */
  countsAt(user: string, seq: number): Counts {
    const m = this.meta();
    const at = Math.max(seq, m.floor_seq);
    const messages = at === m.floor_seq ? m.floor_mcount : (this.store.messagesAt(at) ?? m.msg_count);
    return [messages, this.store.ownAt(user, at)];
  }

  /** The exact view of `user`, or null when they were never a member. */
  view(user: string, tick: number): MemberView | null {
    const rows = this.store.intervals(user);
    if (rows.length === 0) return null;
    const m = this.meta();
    const member = this.store.member(user);
    const active = member?.active === 1;
    const last = rows[rows.length - 1]!;
    const visibleHead = active ? m.head_seq : (last.to_seq ?? m.head_seq);
    // A former member's floor stops at their leave seq: once retention passed it, nothing of theirs is left to learn.
    const floor = Math.min(m.floor_seq, visibleHead);
    const clamped = floor < m.floor_seq;
    const floorCounts = clamped ? NONE : this.countsAt(user, floor);
    const above = (seq: number): Counts => (seq > floor ? this.countsAt(user, seq) : floorCounts);
    const read = Math.min(member?.read_seq ?? 0, visibleHead);
    const intervals: ViewInterval[] = [];
    for (const r of rows) {
      const to = r.to_seq ?? visibleHead;
      if (to <= floor) continue; // entirely removed by retention
      intervals.push({ from: r.from_seq, to: r.to_seq, before: above(r.from_seq - 1), end: r.to_seq === null ? null : above(r.to_seq) });
    }
    const head = this.store.entry(visibleHead);
    return {
      user,
      conversation_id: m.id,
      epoch: m.epoch,
      tick,
      head_seq: visibleHead,
      head_counts: clamped ? NONE : above(visibleHead),
      last_activity_at: head?.created_at ?? null,
      last_sender: head ? { user: head.sender_user, device: head.sender_device } : null,
      floor_seq: floor,
      floor_counts: floorCounts,
      read_seq: read,
      read_counts: above(read),
      membership: active ? "member" : "left",
      member_seq: last.to_seq ?? last.from_seq,
      intervals,
      ...(this.paced() ? { paced: true as const } : {}),
    };
  }
}
