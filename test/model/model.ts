/**
 * The in-memory reference model for test/model.test.ts: what PROTOCOL.md says
 * the service should hold after a schedule of operations. Pure; no I/O.
 *
 * One conversation = a dense log above `floor`, membership intervals per user,
 * read cursors per user and received cursors per device. Every expectation the
 * runner compares against (pages, gaps, sync summaries, unread counts, live
 * socket catch-up) is derived from these few fields.
 */
import type { Gap, GapReason, MemberChangeBody } from "../../src/protocol/types";

export interface ModelEntry {
  seq: number;
  type: "message" | "member";
  user: string;
  device: string;
  cmid: string | null;
  change?: { added: string[]; removed: string[] };
}

export interface Interval {
  from: number;
  /** Inclusive leave seq; null while a member. */
  to: number | null;
}

export class ConvModel {
  readonly entries: ModelEntry[] = [];
  head = 0;
  floor = 0;
  readonly intervals = new Map<string, Interval[]>();
  readonly read = new Map<string, number>();
  /** key `${user}/${device}` → received */
  readonly received = new Map<string, number>();
  /** key `${user}/${device}/${cmid}` → seq of the accepted send */
  readonly sends = new Map<string, number>();
  /** Every entry's sender, kept after retention removed the entry (receipts exclude the sender of any seq). */
  readonly senderOf = new Map<number, string>();
  /** created_at (ms) of entries, as the service reported or stored them (sync's last_activity_at). */
  readonly createdAt = new Map<number, number>();

  constructor(
    readonly id: string,
    readonly maxMessages: number | null,
    creator: { user: string; device: string },
    members: string[],
  ) {
    const all = [...new Set([creator.user, ...members])];
    this.#append({ type: "member", user: creator.user, device: creator.device, cmid: null, change: { added: all, removed: [] } });
    for (const u of all) this.intervals.set(u, [{ from: 1, to: null }]);
  }

  isActive(user: string): boolean {
    const iv = this.intervals.get(user);
    return iv !== undefined && iv.length > 0 && iv[iv.length - 1]!.to === null;
  }

  everMember(user: string): boolean {
    return (this.intervals.get(user)?.length ?? 0) > 0;
  }

  activeMembers(): string[] {
    return [...this.intervals.keys()].filter((u) => this.isActive(u)).sort();
  }

  /** The highest seq `user` may see (their leave seq once they left). */
  visibleHead(user: string): number {
    return (this.intervals.get(user) ?? []).reduce((max, r) => Math.max(max, r.to ?? this.head), 0);
  }

  inIntervals(user: string, seq: number): boolean {
    return (this.intervals.get(user) ?? []).some((r) => seq >= r.from && seq <= (r.to ?? this.head));
  }

  /** Seqs `user` can read now: inside their intervals and above the retention floor. */
  visible(user: string, seq: number): boolean {
    return seq > this.floor && seq <= this.head && this.inIntervals(user, seq);
  }

  visibleSeqs(user: string): number[] {
    const out: number[] = [];
    for (let s = this.floor + 1; s <= this.head; s++) if (this.inIntervals(user, s)) out.push(s);
    return out;
  }

  entry(seq: number): ModelEntry | undefined {
    return this.entries.find((e) => e.seq === seq);
  }

  #append(e: Omit<ModelEntry, "seq">): ModelEntry {
    const entry: ModelEntry = { ...e, seq: this.head + 1 };
    this.entries.push(entry);
    this.head = entry.seq;
    this.senderOf.set(entry.seq, entry.user);
    return entry;
  }

  /** A fresh send by an active member: the new entry. */
  send(user: string, device: string, cmid: string): ModelEntry {
    const entry = this.#append({ type: "message", user, device, cmid });
    this.sends.set(`${user}/${device}/${cmid}`, entry.seq);
    return entry;
  }

  /** Membership change by an active `actor`; returns the entry, or null when nothing changes. */
  changeMembers(actor: { user: string; device: string }, add: string[], remove: string[]): ModelEntry | null {
    const active = new Set(this.activeMembers());
    const removed = [...new Set(remove)].filter((u) => active.has(u));
    const added = [...new Set(add)].filter((u) => !active.has(u) && !removed.includes(u));
    if (added.length === 0 && removed.length === 0) return null;
    const entry = this.#append({ type: "member", user: actor.user, device: actor.device, cmid: null, change: { added, removed } });
    for (const u of removed) {
      const iv = this.intervals.get(u)!;
      iv[iv.length - 1]!.to = entry.seq;
    }
    for (const u of added) {
      const iv = this.intervals.get(u) ?? [];
      iv.push({ from: entry.seq, to: null });
      this.intervals.set(u, iv);
    }
    return entry;
  }

  /** What the retention alarm does with `max_messages`: keep the newest N entries. */
  enforceRetention(): void {
    if (this.maxMessages === null) return;
    const target = this.head - this.maxMessages;
    if (target > this.floor) {
      this.floor = target;
      for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.seq <= target) this.entries.splice(i, 1);
    }
  }

  /** Effective cursor moves (forward only, clamped to what the user may see). */
  ackReceived(user: string, device: string, seq: number): number {
    const key = `${user}/${device}`;
    const next = Math.max(this.received.get(key) ?? 0, Math.min(seq, this.visibleHead(user)));
    this.received.set(key, next);
    return next;
  }

  ackRead(user: string, seq: number): number {
    const next = Math.max(this.read.get(user) ?? 0, Math.min(seq, this.visibleHead(user)));
    this.read.set(user, next);
    return next;
  }

  /** DELETE /v1/devices/:id: the device's cursors go (the conversation forgets its mirror too). */
  forgetDevice(user: string, device: string): void {
    this.received.delete(`${user}/${device}`);
  }

  /**
   * GET …/receipts?seq= (PROTOCOL.md v1.1): counts over current members other
   * than the entry's sender; a device counts when its `received` ≥ seq, a user
   * when any of their devices does (delivered) or their `read` ≥ seq (read).
   * Former members' cursors are not counted; a deleted device's cursor is gone.
   */
  receipts(seq: number): ExpectedReceipts {
    const sender = this.senderOf.get(seq);
    const members = this.activeMembers().filter((u) => u !== sender);
    let users = 0;
    let devices = 0;
    let read = 0;
    for (const u of members) {
      const got = [...this.received].filter(([key, r]) => key.startsWith(`${u}/`) && r >= seq).length;
      devices += got;
      if (got > 0) users += 1;
      if ((this.read.get(u) ?? 0) >= seq) read += 1;
    }
    return { conversation_id: this.id, seq, members: members.length, delivered: { users, devices }, read: { users: read } };
  }

  /**
   * The v1.1 sync timeline for a device at `received` (PROTOCOL.md "timeline_limit",
   * src/conversation/paging.ts planTimeline): the newest ≤ k visible seqs above the
   * cursor, ascending; `limited` when visible seqs remain between the cursor and the
   * first one returned (then `next_before` is that first seq); gaps cover
   * [first returned seq if limited, else received + 1 .. the user's visible head].
   */
  timeline(user: string, received: number, k: number): ExpectedTimeline {
    const visibleHead = this.visibleHead(user);
    const from = Math.min(received, visibleHead);
    const all = this.visibleSeqs(user).filter((s) => s > from && s <= visibleHead);
    const seqs = all.slice(Math.max(0, all.length - k));
    const limited = all.length > k;
    const lo = limited ? seqs[0]! : from + 1;
    return { seqs, gaps: this.gapsIn(user, lo, visibleHead), limited, next_before: limited ? seqs[0]! : null };
  }

  /** When the entry at the user's visible head was written (sync's last_activity_at), if known. */
  lastActivity(user: string): number | undefined {
    return this.createdAt.get(this.visibleHead(user));
  }

  /** Unread: messages of others still in the log, inside the user's intervals, after their read cursor. */
  unread(user: string): number {
    const read = this.read.get(user) ?? 0;
    return this.entries.filter((e) => e.type === "message" && e.user !== user && e.seq > read && this.inIntervals(user, e.seq)).length;
  }

  /** Gaps (maximal runs of seqs the user cannot read) inside [lo, hi], split at the floor. */
  gapsIn(user: string, lo: number, hi: number): Gap[] {
    const gaps: Gap[] = [];
    for (let s = lo; s <= hi; s++) {
      if (this.visible(user, s)) continue;
      const reason: GapReason = s <= this.floor ? "retention" : "not_member";
      const last = gaps[gaps.length - 1];
      if (last && last.to === s - 1 && last.reason === reason) last.to = s;
      else gaps.push({ from: s, to: s, reason });
    }
    return gaps;
  }

  /** GET …/messages?after=…&limit=… as PROTOCOL.md describes it. */
  pageForward(user: string, after: number, limit: number): ExpectedPage {
    const all = this.visibleSeqs(user).filter((s) => s > after);
    const seqs = all.slice(0, limit);
    const hasMore = all.length > limit;
    const boundary = hasMore ? seqs[seqs.length - 1]! : Math.max(this.head, after);
    return { seqs, gaps: this.gapsIn(user, after + 1, boundary), hasMore, boundary };
  }

  /** GET …/messages?before=…&limit=… (newest first, returned ascending). */
  pageBackward(user: string, before: number | null, limit: number): ExpectedPage {
    const hi = Math.min((before ?? Infinity) - 1, this.head);
    const all = this.visibleSeqs(user).filter((s) => s <= hi);
    const seqs = all.slice(Math.max(0, all.length - limit));
    const hasMore = all.length > limit;
    const boundary = hasMore ? seqs[0]! : 1;
    return { seqs, gaps: this.gapsIn(user, boundary, hi), hasMore, boundary };
  }

  /** The member-entry body the server writes. */
  static changeBody(e: ModelEntry): Pick<MemberChangeBody, "added" | "removed"> {
    return { added: e.change?.added ?? [], removed: e.change?.removed ?? [] };
  }
}

export interface ExpectedReceipts {
  conversation_id: string;
  seq: number;
  members: number;
  delivered: { users: number; devices: number };
  read: { users: number };
}

export interface ExpectedTimeline {
  seqs: number[];
  gaps: Gap[];
  limited: boolean;
  next_before: number | null;
}

export interface ExpectedPage {
  seqs: number[];
  gaps: Gap[];
  hasMore: boolean;
  boundary: number;
}

/** What one conversation's row in GET /v1/sync should say for `user` on `device`. */
export interface ExpectedSyncRow {
  id: string;
  head_seq: number;
  floor_seq: number;
  received: number;
  read: number;
  unread: number;
  membership: "member" | "left";
}

/**
 * A former member's floor stops at their leave seq (docs/protocol.md, "Contract
 * notes"): once retention passed it, everything they could see is gone and
 * their index need not follow the floor any further.
 */
export function expectedSyncRow(conv: ConvModel, user: string, device: string): ExpectedSyncRow {
  const head = conv.visibleHead(user);
  return {
    id: conv.id,
    head_seq: head,
    floor_seq: conv.isActive(user) ? conv.floor : Math.min(conv.floor, head),
    received: conv.received.get(`${user}/${device}`) ?? 0,
    read: conv.read.get(user) ?? 0,
    unread: conv.unread(user),
    membership: conv.isActive(user) ? "member" : "left",
  };
}
