/**
 * Delivery and read receipts, derived from the cursors the conversation
 * already mirrors (each device's `received`, each user's `read`): index range
 * counts over current members, no row per message, at any size. Receipt frames
 * go to the live sockets of recent senders, at most one round per interval.
 */
import { TUNING } from "../config/tuning";
import { fail, ok, type Result } from "../protocol/errors";
import type { ReceiptFrame } from "../protocol/frames";
import type { ReceiptCounts } from "../protocol/types";
import type { ConversationStore, Meta } from "./store";

export class Receipts {
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastRound = 0;

  constructor(
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    /** Sends frames (by sender) to that sender's live sockets, wherever they are. */
    private readonly deliver: (frames: [user: string, frame: string][]) => void,
  ) {}

  /** Counts for `seq`, excluding its sender. The caller checked the asker may see `seq`. */
  counts(seq: number): ReceiptCounts {
    const m = this.meta();
    const sender = this.#senderOf(seq);
    const own = sender ? this.store.member(sender) : undefined;
    const ownActive = own?.active === 1;
    const delivered = this.store.countDelivered(seq);
    let read = this.store.countRead(seq);
    if (own && ownActive) {
      if (own.max_received >= seq) delivered.users -= 1;
      delivered.devices -= this.store.devicesOf(sender!).filter((d) => d.received >= seq).length;
      if (own.read_seq >= seq) read -= 1;
    }
    return {
      conversation_id: m.id,
      seq,
      members: m.member_count - (ownActive ? 1 : 0),
      delivered: { users: Math.max(0, delivered.users), devices: Math.max(0, delivered.devices) },
      read: { users: Math.max(0, read) },
    };
  }

  /** For GET …/receipts: `user` may ask about any seq inside their membership intervals. */
  query(user: string, seq: number, intervals: readonly { from: number; to: number }[]): Result<ReceiptCounts> {
    const m = this.meta();
    if (intervals.length === 0) return fail("forbidden", `${user} is not a member of this conversation`);
    if (seq > m.head_seq) return fail("invalid_request", `seq=${seq} is beyond head_seq ${m.head_seq}`);
    if (!intervals.some((r) => seq >= r.from && seq <= r.to)) return fail("forbidden", `seq ${seq} is outside your membership`);
    return ok(this.counts(seq));
  }

  /** A cursor moved: a receipt round follows, at most one per interval. */
  changed(): void {
    if (this.#timer !== null) return;
    const wait = Math.max(0, this.#lastRound + TUNING.receiptIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#lastRound = Date.now();
      this.#round();
    }, wait);
  }

  /** Each recent sender's newest message: one frame for that sender's sockets. */
  #round(): void {
    const m = this.meta();
    const from = Math.max(m.floor_seq, m.head_seq - TUNING.receiptRecentEntries);
    const frames: [string, string][] = [];
    for (const { user, last: seq } of this.store.messagesBySender(from, m.head_seq)) {
      const c = this.counts(seq);
      const frame: ReceiptFrame = { type: "receipt", seq, members: c.members, delivered: c.delivered, read: c.read };
      frames.push([user, JSON.stringify(frame)]);
    }
    if (frames.length > 0) this.deliver(frames);
  }

  #senderOf(seq: number): string | undefined {
    return this.store.entry(seq)?.sender_user ?? this.store.senderOfRemoved(seq);
  }
}
