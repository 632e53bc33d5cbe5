/**
 * Push decisions: a push is a wake-up, never the message store. When a
 * conversation advances, offline devices with a push target that are behind
 * get it queued for their next push, unless they were pushed for it within the
 * collapse window; the sender's own device is never pushed for its own entry.
 * The alarm sends each device's due push as one queue task naming every
 * pending conversation (a burst across 50 conversations is one push that says 50).
 */
import type { PushTuning } from "../config/settings";
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import type { PushTarget } from "../protocol/types";
import type { PushTask } from "../push/types";
import type { Applied } from "./conversation-index";
import type { Inbox } from "./inbox";
import type { UserStore } from "./store";

export class PushDecisions {
  constructor(
    private readonly env: Env,
    private readonly store: UserStore,
    private readonly inbox: Inbox,
    private readonly tuning: PushTuning,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** After an update: queues pushes for offline devices that are behind; returns when the alarm must fire (or null). */
  consider(user: string, a: Applied, now: number): number | null {
    const s = a.state;
    if (!a.advanced || s.membership !== "member" || a.unread === 0) return null;
    let due = Infinity;
    for (const d of this.store.pushCandidates(a.conversation_id)) {
      if (this.inbox.isOnline(d.device_id)) continue;
      if (s.last_sender && s.last_sender.user === user && s.last_sender.device === d.device_id) continue;
      if ((d.received ?? 0) >= s.head.seq) continue;
      if (d.sent_at !== null && now - d.sent_at < this.tuning.collapseMs) continue;
      this.store.queuePush(d.device_id, a.conversation_id, s.head.seq, a.unread, now);
      due = Math.min(due, this.#dueAt(d.device_id, d.last_push_at, now));
    }
    return due === Infinity ? null : due;
  }

  /** A device synced (or opened its inbox): its windows reset; a sync after a push is a conversion. */
  caughtUp(device: string, synced: boolean): void {
    const converted = this.transaction(() => {
      const c = this.store.resetPushWindows(device, synced);
      if (c) this.store.countPushConverted();
      return c;
    });
    if (converted) metrics.count(this.env, "push_converted_total");
  }

  /** Sends every device's due push; returns when the next one is due (Infinity: none). */
  async sendDue(now: number): Promise<number> {
    const user = this.store.userId();
    let next = Infinity;
    for (const device of this.store.devicesWithPending()) {
      const d = this.store.device(device);
      if (!d?.push_json || user === null || this.inbox.isOnline(device)) {
        this.store.clearPending(device);
        continue;
      }
      const dueAt = this.#dueAt(device, d.last_push_at, now);
      if (dueAt > now) {
        next = Math.min(next, dueAt);
        continue;
      }
      const pending = this.store.pendingFor(device);
      if (pending.length > 0) {
        const newest = pending[0]!;
        const task: PushTask = {
          user_id: user,
          device_id: device,
          target: JSON.parse(d.push_json) as PushTarget,
          conversation_id: newest.conversation_id,
          head_seq: newest.head_seq,
          unread: pending.reduce((sum, p) => sum + p.unread, 0),
          conversations: pending.map((p) => ({ id: p.conversation_id, head_seq: p.head_seq, unread: p.unread })),
          created_at: now,
        };
        await this.env.PUSH_QUEUE.send(task);
        metrics.count(this.env, "push_sent_total", 1, { provider: task.target.provider });
      }
      this.transaction(() => {
        if (pending.length > 0) {
          this.store.markPushed(device, pending.map((p) => p.conversation_id), now);
          this.store.countPushEnqueued();
        }
        this.store.clearPending(device);
      });
    }
    return next;
  }

  /** A first change waits `aggregateMs`; a device is pushed at most once per `deviceMinIntervalMs`. */
  #dueAt(device: string, lastPushAt: number | null, now: number): number {
    const first = this.store.firstPending(device) ?? now;
    return Math.max(first + this.tuning.aggregateMs, (lastPushAt ?? 0) + this.tuning.deviceMinIntervalMs);
  }
}
