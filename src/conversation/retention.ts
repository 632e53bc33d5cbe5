/**
 * Retention: the log's prefix goes, a bounded batch per alarm run. Before the
 * entries go, the floor's running counts are kept (M(floor) and the own counts
 * of their senders, for the next tick), the undelivered-expiry receipt is
 * counted, and media that lost its last reference is released to its owner.
 */
import { settings } from "../config/settings";
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { log } from "../platform/log";
import { backoffMs } from "../platform/retry";
import { call } from "../platform/rpc";
import { metrics } from "../observability/metrics";
import { mediaOwner } from "../protocol/ids";
import type { RetentionPolicy } from "../protocol/types";
import type { ConversationStore, Meta } from "./store";

/** Above this many members the expiry receipt is kept per sender only ("someone missed it"), not per recipient device. */
export const EXPIRY_RECEIPT_MAX_MEMBERS = 1000;

export class Retention {
  constructor(
    private readonly env: Env,
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  policy(): RetentionPolicy {
    const m = this.meta();
    const defaults = settings(this.env).retention;
    const policy: RetentionPolicy = {};
    const maxAge = m.max_age_seconds ?? defaults.maxAgeSeconds;
    const maxMessages = m.max_messages ?? defaults.maxMessages;
    if (maxAge !== null && maxAge > 0) policy.max_age_seconds = maxAge;
    if (maxMessages !== null && maxMessages > 0) policy.max_messages = maxMessages;
    return policy;
  }

  /** When retention is next due, or null when nothing will expire. */
  dueAt(now: number): number | null {
    const m = this.meta();
    const policy = this.policy();
    if (policy.max_messages !== undefined && m.head_seq - m.floor_seq > policy.max_messages) return now;
    if (policy.max_age_seconds === undefined) return null;
    const oldest = this.store.firstEntryAfter(m.floor_seq);
    return oldest ? oldest.created_at + policy.max_age_seconds * 1000 : null;
  }

  /** Removes at most one batch from the bottom of the log; true when more is due now. */
  enforce(now: number): boolean {
    const m = this.meta();
    const policy = this.policy();
    const from = m.floor_seq;
    const limit = Math.min(m.head_seq, from + TUNING.retentionBatch);
    let target = from;
    if (policy.max_messages !== undefined) target = Math.max(target, Math.min(limit, m.head_seq - policy.max_messages));
    if (policy.max_age_seconds !== undefined) {
      const cutoff = now - policy.max_age_seconds * 1000;
      for (const r of this.store.entryTimes(from, limit)) {
        if (r.created_at >= cutoff) break;
        target = Math.max(target, r.seq);
      }
    }
    if (target <= from) return false;
    this.transaction(() => {
      const removedBy = this.store.messagesBySender(from, target);
      this.#recordExpiry(from, target, removedBy, now);
      for (const mediaId of this.store.releaseMediaRefs(from, target)) {
        const owner = mediaOwner(mediaId);
        if (owner) this.store.queueMediaRelease(mediaId, owner);
      }
      // The floor's counts, read before its entry goes: M(floor), and S_u(floor) for the senders removed.
      m.floor_mcount = this.store.messagesAt(target) ?? m.floor_mcount;
      const floorSenders = new Map(m.floor_senders);
      for (const s of removedBy) floorSenders.set(s.user, this.store.ownAt(s.user, target));
      m.floor_senders = [...floorSenders];
      // Keys of removed entries stay for a while, so late retries stay duplicates; senders' totals stay too.
      const keepSince = now - TUNING.idempotencyKeepMs;
      this.store.keepKeys(from, target, keepSince);
      this.store.keepSenderTotals(from, target);
      this.store.deleteEntries(from, target);
      m.floor_seq = target;
      m.expired_total += target - from;
      this.store.expireIdempotency(target, keepSince);
      // Current members learn the floor from the next tick; former members who could still see something, from a view.
      this.store.addTargets(this.store.formerMembersAbove(from), now);
      this.store.saveMeta(m);
    });
    log("retention_removed", { conversation: m.id, from: from + 1, to: target });
    metrics.count(this.env, "retention_expired_total", target - from);
    const due = this.dueAt(now);
    return target === limit && due !== null && due <= now;
  }

  /**
   * The undelivered-expiry receipt: per sender, the messages in (from, to] a
   * recipient's device never received. Per recipient device up to
   * EXPIRY_RECEIPT_MAX_MEMBERS members; above that per sender only, as
   * `{user: "*", device: null}`, so a batch never costs O(members).
   */
  #recordExpiry(from: number, to: number, removedBy: { user: string; n: number; last: number }[], now: number): void {
    if (removedBy.length === 0) return;
    if (this.meta().member_count > EXPIRY_RECEIPT_MAX_MEMBERS) {
      const lowest = this.store.activeWithoutCursor() ? from : Math.max(from, this.store.lowestReceived());
      for (const s of this.store.messagesBySender(lowest, to)) this.store.addExpired(s.user, "*", "*", s.n, s.last, now);
      return;
    }
    for (const user of this.store.recipientsOf(from, to)) {
      const devices = this.store.devicesOf(user);
      const targets = devices.length > 0
        ? devices.filter((d) => d.received < to).map((d) => ({ device: d.device_id, after: Math.max(from, d.received) }))
        : [{ device: "*", after: from }];
      for (const t of targets) {
        for (const r of this.store.missedBySender(user, t.after, to)) this.store.addExpired(r.sender, user, t.device, r.n, r.last, now);
      }
    }
  }

  /** Tells owners their media lost its last reference here; retried with backoff until they confirm. */
  async releaseMedia(): Promise<void> {
    const now = Date.now();
    for (const d of this.store.dueMediaReleases(now, TUNING.mediaSweepBatch)) {
      try {
        const res = await call(this.env.USERS, d.owner, "releaseMedia", d.media_id, this.meta().id);
        if (!res.ok) throw new Error(res.message);
        this.store.doneMediaRelease(d.media_id);
      } catch (err) {
        this.store.retryMediaRelease(d.media_id, now + TUNING.mediaReleaseBaseMs + backoffMs(d.attempts, TUNING.mediaReleaseBaseMs, TUNING.mediaReleaseMaxMs));
        log("media_release_failed", { conversation: this.meta().id, media: d.media_id, error: String(err) });
      }
    }
  }
}
