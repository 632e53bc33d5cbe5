/**
 * Delivery and read figures for the user's own messages, kept in memory.
 * Receipts derive from cursors, which only move forward, so the figures for an
 * older message of the same sender are at least those of a newer one: one
 * receipt for seq N is a lower bound for every earlier own message. Only the
 * points that add information are kept (a newer point with higher figures
 * makes an older one redundant).
 */
import type { ReceiptInfo } from "./types";

interface Point {
  seq: number;
  users: number;
  devices: number;
  read: number;
}

/** Points kept per conversation; beyond it the oldest messages lose their precise figures first. */
const MAX_POINTS = 256;

export class Receipts {
  /** Per conversation, ascending by seq, with figures strictly falling as seq rises. */
  readonly #points = new Map<string, Point[]>();
  /** The latest member count seen per conversation: membership is now, not per message. */
  readonly #members = new Map<string, number>();

  record(r: ReceiptInfo): void {
    this.#members.set(r.conversationId, r.members);
    const p: Point = { seq: r.seq, users: r.delivered.users, devices: r.delivered.devices, read: r.read.users };
    const points = this.#points.get(r.conversationId) ?? [];
    // A point is redundant when one at the same or a newer seq has figures at least as high.
    if (points.some((q) => q.seq >= p.seq && dominates(q, p))) return;
    const kept = points.filter((q) => !(q.seq <= p.seq && dominates(p, q)));
    kept.push(p);
    kept.sort((a, b) => a.seq - b.seq);
    this.#points.set(r.conversationId, kept.slice(-MAX_POINTS));
  }

  /** The best known figures for the user's own message `seq`, or undefined when nothing is known yet. */
  lowerBound(conversationId: string, seq: number): ReceiptInfo | undefined {
    const members = this.#members.get(conversationId);
    const newer = (this.#points.get(conversationId) ?? []).filter((q) => q.seq >= seq);
    if (members === undefined || newer.length === 0) return undefined;
    const best = newer.reduce((a, b) => ({ seq, users: Math.max(a.users, b.users), devices: Math.max(a.devices, b.devices), read: Math.max(a.read, b.read) }));
    // Figures counted before someone left may exceed today's membership.
    return {
      conversationId,
      seq,
      members,
      delivered: { users: Math.min(best.users, members), devices: best.devices },
      read: { users: Math.min(best.read, members) },
    };
  }

  /** The conversation's log was replaced (epoch change): its seqs mean other messages now. */
  forget(conversationId: string): void {
    this.#points.delete(conversationId);
    this.#members.delete(conversationId);
  }
}

function dominates(a: Point, b: Point): boolean {
  return a.users >= b.users && a.devices >= b.devices && a.read >= b.read;
}

/**
 * One line for a message's status, e.g. "delivered to 3 of 4 people, read by 2".
 *
 * @example
 * const r = client.receiptFor("general", seq);
 * label.textContent = r ? formatReceipt(r) : "sent";
 */
export function formatReceipt(r: ReceiptInfo): string {
  if (r.members === 0) return "sent";
  const people = r.members === 1 ? "person" : "people";
  const delivered = `delivered to ${r.delivered.users} of ${r.members} ${people}`;
  return r.read.users > 0 ? `${delivered}, read by ${r.read.users}` : delivered;
}
