/**
 * The per-device queue (to-device): device-addressed data such as key
 * exchange or device commands. A user may address their own devices and users
 * they share a conversation with; ids increase per user; only an explicit ack
 * deletes; entries expire after a TTL and the queue is capped per device
 * (the oldest go and are counted as `dropped`).
 */
import { fail, ok, type Result } from "../protocol/errors";
import { LIMITS } from "../protocol/limits";
import type { SenderRef, ToDevicePage } from "../protocol/types";
import type { UserStore } from "./store";

export interface ToDeviceInput {
  from: SenderRef;
  /** The user this object belongs to; the Worker names it. */
  to: string;
  device?: string;
  clientMsgId: string;
  bodyJson: string;
  /** Conversations the sender is currently a member of (for the "shares a conversation" rule). */
  senderConversations: string[];
}

export class DeviceQueue {
  constructor(
    private readonly store: UserStore,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** Queues for the addressed devices; returns them (to wake those online) with the count. */
  enqueue(input: ToDeviceInput, now: number): Result<{ queued: number; duplicate: boolean; devices: string[] }> {
    this.expire(now);
    if (input.from.user !== input.to && !this.store.sharesAny(input.senderConversations)) {
      return fail("forbidden", `you share no conversation with ${input.to}`);
    }
    const prior = this.store.priorSend(input.from.user, input.from.device, input.clientMsgId);
    if (prior !== undefined) return ok({ queued: prior, duplicate: true, devices: [] });
    let targets: string[];
    if (input.device !== undefined) {
      if (!this.store.device(input.device)) return fail("not_found", `${input.to} has no device ${input.device}`);
      targets = [input.device];
    } else {
      targets = this.store.devices().map((d) => d.device_id).filter((d) => !(input.from.user === input.to && d === input.from.device));
    }
    this.transaction(() => {
      for (const device of targets) {
        this.store.enqueue(device, this.store.nextQueueId(), input.from.user, input.from.device, input.bodyJson, now);
        const excess = this.store.queueLength(device) - LIMITS.maxToDeviceEntries;
        if (excess > 0) this.store.dropOldest(device, excess);
      }
      this.store.recordSend(input.from.user, input.from.device, input.clientMsgId, targets.length, now);
    });
    return ok({ queued: targets.length, duplicate: false, devices: targets });
  }

  page(device: string, limit: number, now: number): ToDevicePage {
    this.expire(now);
    const rows = this.store.queuePage(device, limit + 1);
    return {
      entries: rows.slice(0, limit).map((r) => ({
        id: r.id,
        from: { user: r.from_user, device: r.from_device },
        body: JSON.parse(r.body) as unknown,
        created_at: new Date(r.created_at).toISOString(),
      })),
      has_more: rows.length > limit,
      dropped: this.store.device(device)?.dropped ?? 0,
    };
  }

  ack(device: string, upTo: number): { remaining: number } {
    this.store.ackQueue(device, upTo);
    return { remaining: this.store.queueLength(device) };
  }

  length(device: string): number {
    return this.store.queueLength(device);
  }

  /** Drops entries and send-dedupe keys older than the TTL; expired entries count as dropped. */
  expire(now: number): void {
    const cutoff = now - LIMITS.toDeviceTtlMs;
    const expired = this.store.expiredQueueCounts(cutoff);
    this.transaction(() => {
      for (const { device_id, n } of expired) this.store.addDropped(device_id, n);
      if (expired.length > 0) this.store.deleteQueueBefore(cutoff);
      this.store.deleteSendsBefore(cutoff);
    });
  }
}
