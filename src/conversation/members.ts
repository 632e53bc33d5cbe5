/**
 * Membership history. Every change is a `member` entry in the log; intervals
 * say which seqs each user may read; current members hold a slot that places
 * them in the notification tree (freed slots are reused, so the tree stays as
 * small as the membership). Checks are primary-key lookups: O(log n) at any size.
 */
import { remembered } from "../platform/remembered";
import { LIMITS } from "../protocol/limits";
import type { ConversationSummary, MemberChangeBody, MemberPage, RetentionPolicy, SenderRef } from "../protocol/types";
import type { Log } from "./log";
import type { Range } from "./paging";
import type { IntervalRow } from "./member-tables";
import type { ConversationStore, EntryRow, Meta } from "./store";
import { iso } from "./wire";

/** Membership answers kept in memory per user (cleared on every change). */
const USER_CACHE = 10_000;

export class Members {
  readonly #active = new Map<string, boolean>();
  /** Interval rows per user (open ones end at the head, which moves: mapped per call). */
  readonly #intervals = new Map<string, IntervalRow[]>();
  /** Member-list versions of the notification leaves, cached from the `leaves` table. */
  #leafVersions: Map<number, number> | null = null;

  constructor(
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    private readonly log: Log,
    private readonly fanout: number,
  ) {}

  /** Whether `user` is a current member; remembered until the next membership change (senders ask on every send). */
  isActive(user: string): boolean {
    return remembered(this.#active, user, USER_CACHE, () => this.store.member(user)?.active === 1);
  }

  /** The user's intervals with open ones ending at the head; remembered until the next membership change (every page, cursor and socket asks). */
  intervals(user: string): Range[] {
    const head = this.meta().head_seq;
    return remembered(this.#intervals, user, USER_CACHE, () => this.store.intervals(user)).map((r) => ({ from: r.from_seq, to: r.to_seq ?? head }));
  }

  visibleHead(intervals: readonly Range[]): number {
    return intervals.reduce((max, r) => Math.max(max, r.to), 0);
  }

  /**
   * Applies a membership change and writes its entry; call inside a transaction.
   * `added` and `removed` must already be effective (not members / members).
   */
  change(actor: SenderRef, change: MemberChangeBody, now: number): EntryRow {
    const m = this.meta();
    this.#active.clear();
    this.#intervals.clear();
    const row = this.log.append("member", actor, null, JSON.stringify(change), now)!;
    for (const user of change.removed) {
      const slot = this.store.member(user)?.slot;
      this.store.closeInterval(user, row.seq);
      this.store.deactivate(user);
      if (slot !== null && slot !== undefined) {
        this.store.freeSlot(slot);
        this.#bumpLeaf(slot);
      }
    }
    for (const user of change.added) {
      const slot = this.store.takeFreeSlot() ?? m.next_slot++;
      this.store.openInterval(user, row.seq);
      this.store.upsertActive(user, slot);
      this.#bumpLeaf(slot);
    }
    m.member_count += change.added.length - change.removed.length;
    this.store.addTargets([...change.added, ...change.removed], now);
    this.store.saveMeta(m);
    return row;
  }

  /** Splits a request into what really changes: removals of members, additions of non-members. */
  effective(add: readonly string[], remove: readonly string[]): { added: string[]; removed: string[] } {
    const removeSet = [...new Set(remove)];
    const activeRemoved = this.store.activeAmong(removeSet);
    const removed = removeSet.filter((u) => activeRemoved.has(u));
    const addSet = [...new Set(add)].filter((u) => !removed.includes(u));
    const activeAdded = this.store.activeAmong(addSet);
    return { removed, added: addSet.filter((u) => !activeAdded.has(u)) };
  }

  summary(retention: RetentionPolicy): ConversationSummary {
    const m = this.meta();
    const members = this.store.activeMembers("", LIMITS.maxMembersListed);
    return {
      id: m.id,
      epoch: m.epoch,
      head_seq: m.head_seq,
      floor_seq: m.floor_seq,
      members,
      member_count: m.member_count,
      ...(m.member_count > members.length ? { members_truncated: true as const } : {}),
      retention,
      created_at: iso(m.created_at),
    };
  }

  page(after: string, limit: number): MemberPage {
    const m = this.meta();
    const members = this.store.activeMembers(after, limit + 1);
    const hasMore = members.length > limit;
    const page = members.slice(0, limit);
    return { conversation_id: m.id, members: page, member_count: m.member_count, has_more: hasMore, next_after: hasMore ? page[page.length - 1]! : null };
  }

  leafVersions(): Map<number, number> {
    this.#leafVersions ??= this.store.leafVersions();
    return this.#leafVersions;
  }

  /** The members of one notification leaf, with the version that list is at. */
  leafMembers(leaf: number): { version: number; users: string[] } {
    return { version: this.leafVersions().get(leaf) ?? 0, users: this.store.slotMembers(leaf * this.fanout, (leaf + 1) * this.fanout) };
  }

  #bumpLeaf(slot: number): void {
    const leaf = Math.floor(slot / this.fanout);
    this.leafVersions().set(leaf, this.store.bumpLeaf(leaf));
  }
}
