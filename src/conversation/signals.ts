/**
 * Delivery signals measured where reads happen: entries served again to a
 * device that had acknowledged them (wrong or lost cursor), and entries a
 * device asked for that retention had removed, counted once per device.
 */
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import type { SenderRef, Gap } from "../protocol/types";
import type { Range } from "./paging";
import type { ConversationStore, Meta } from "./store";

export class DeliverySignals {
  constructor(
    private readonly env: Env,
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** Entries of `pieces` at or below the device's acknowledged cursor. */
  duplicates(who: SenderRef, pieces: readonly Range[]): void {
    if (pieces.length === 0) return;
    const received = this.store.deviceReceived(who.user, who.device);
    if (received === undefined) return;
    const again = pieces.reduce((n, p) => n + Math.max(0, Math.min(p.to, received) - p.from + 1), 0);
    if (again > 0) metrics.count(this.env, "duplicate_deliveries_total", again);
  }

  /** "Messages unavailable due to retention", once per device however often it asks. */
  unavailable(who: SenderRef, gaps: readonly Gap[], intervals: readonly Range[]): void {
    const gap = gaps.find((g) => g.reason === "retention");
    if (!gap) return;
    const lo = Math.max(gap.from, this.store.retentionReported(who.user, who.device) + 1);
    if (lo > gap.to) return;
    const n = intervals.reduce((sum, r) => sum + Math.max(0, Math.min(r.to, gap.to) - Math.max(r.from, lo) + 1), 0);
    const m = this.meta();
    this.transaction(() => {
      this.store.markRetentionReported(who.user, who.device, gap.to);
      if (n > 0) {
        metrics.count(this.env, "retention_unavailable_total", n);
        m.unavailable_total += n;
        this.store.saveMeta(m);
      }
    });
  }

  /**
   * "Oldest undelivered message age": the oldest entry some current member's
   * device has not received; a member none of whose devices ever acknowledged
   * anything here counts from the floor. Two indexed lookups.
   */
  oldestUndeliveredMs(now: number): number {
    const m = this.meta();
    const from = this.store.activeWithoutCursor() ? m.floor_seq : Math.max(m.floor_seq, this.store.lowestReceived());
    const at = from < m.head_seq ? this.store.entryTimeAfter(from) : null;
    return at === null ? 0 : Math.max(0, now - at);
  }
}
