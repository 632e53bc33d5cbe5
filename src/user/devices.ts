/**
 * Devices of one user: registered on first sight, capped (the least recently
 * seen is evicted), expired after DEVICE_TTL_DAYS. A device that goes takes its
 * cursors, queue and push target with it, and the conversations it acknowledged
 * in are told to forget it (receipts stop counting it), retried until confirmed.
 */
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { log } from "../platform/log";
import { backoffMs } from "../platform/retry";
import { call } from "../platform/rpc";
import { LIMITS } from "../protocol/limits";
import type { UserStore } from "./store";

export class Devices {
  constructor(
    private readonly env: Env,
    private readonly store: UserStore,
    private readonly ttlMs: number,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /**
   * Records activity; registers a new device (evicting the stalest past the cap).
   * Returns when the new device would expire, or null for a known device.
   */
  touch(device: string, now: number): number | null {
    if (this.store.touchDevice(device, now)) return null;
    this.transaction(() => {
      if (this.store.deviceCount() >= LIMITS.maxDevicesPerUser) this.drop(this.store.stalestDevice());
      this.store.insertDevice(device, now);
    });
    return now + this.ttlMs;
  }

  /** Removes a device and everything kept for it; call inside a transaction. */
  drop(device: string, now = Date.now()): void {
    this.store.queueForget(this.store.receivedConversations(device), device, now);
    this.store.deleteDevice(device);
  }

  /** Devices unseen for the TTL go; returns when the next one would expire. */
  expire(now: number): number {
    const stale = this.store.devicesUnseenSince(now - this.ttlMs);
    if (stale.length > 0) {
      this.transaction(() => {
        for (const device of stale) this.drop(device);
      });
      log("devices_expired", { devices: stale });
    }
    const oldest = this.store.oldestSeen();
    return oldest === null ? Infinity : oldest + this.ttlMs;
  }

  /**
   * A device that is back acked conversations that may not have forgotten its
   * old life yet, or did so while this ack was on its way: those set the cursor
   * it has in this life (a plain forget would lose a re-ack that did not raise
   * the old row).
   */
  async settle(user: string, device: string, conversations: readonly string[]): Promise<void> {
    for (const conv of conversations) {
      const deletedAt = this.store.forgetOf(conv, device);
      if (deletedAt === null) continue;
      if (await this.#tell(user, conv, device, deletedAt)) this.store.dropForget(conv, device);
    }
  }

  /**
   * Tells conversations to forget removed devices; returns when the next retry is due.
   * A device that came back while its forget was failing keeps the cursor of its new life.
   */
  async forget(user: string, now: number): Promise<number> {
    this.store.sweepForgets(now);
    for (const f of this.store.dueForgets(now, TUNING.forgetBatch)) {
      if (await this.#tell(user, f.conversation_id, f.device_id, f.deleted_at)) {
        this.store.doneForget(f.conversation_id, f.device_id, now, now + TUNING.forgetSettleMs);
      } else {
        this.store.retryForget(f.conversation_id, f.device_id, now + TUNING.notifyRetryBaseMs + backoffMs(f.attempts, TUNING.notifyRetryBaseMs, TUNING.notifyRetryMaxMs));
      }
    }
    return this.store.nextForget() ?? Infinity;
  }

  /**
   * One conversation forgets the device's old life, keeping the cursor of this life if the
   * device is back and acked there (read here, so both callers send the same); false when it did not confirm.
   */
  async #tell(user: string, conv: string, device: string, deletedAt: number): Promise<boolean> {
    try {
      const res = await call(this.env.CONVERSATIONS, conv, "forgetDevice", user, device, deletedAt, this.store.receivedCursor(device, conv));
      if (!res.ok) throw new Error(res.message);
      return true;
    } catch (err) {
      log("device_forget_failed", { conversation: conv, device, error: String(err) });
      return false;
    }
  }
}
