/**
 * Reads of the log for one member: history pages and sync timelines. Both are
 * planned from the member's intervals and the floor (a read costs exactly its
 * rows, charged to the object's row budget), built from wire JSON, and counted
 * in the delivery signals.
 */
import type { RowBudget } from "../platform/admission";
import { fail, ok, type Failure, type Result } from "../protocol/errors";
import type { Json, PageParams } from "../protocol/internal";
import type { MessagePage, SenderRef, SyncTimeline } from "../protocol/types";
import type { Log } from "./log";
import type { Members } from "./members";
import { planBackward, planForward, planTimeline, visibleRanges, type Range } from "./paging";
import type { DeliverySignals } from "./signals";
import type { Meta } from "./store";
import { pageJson, timelineJson } from "./wire";

export function notMember(user: string): Failure {
  return fail("forbidden", `${user} is not a member of this conversation`);
}

export function epochMismatch(epoch: string): Failure {
  return fail("epoch_mismatch", "the conversation's epoch changed; reset local state", { epoch });
}

const rowsOf = (pieces: readonly Range[]) => Math.max(1, pieces.reduce((n, p) => n + p.to - p.from + 1, 0));

export class Reads {
  constructor(
    private readonly log: Log,
    private readonly members: Members,
    private readonly budget: RowBudget,
    private readonly signals: DeliverySignals,
    private readonly meta: () => Meta,
  ) {}

  page(who: SenderRef, params: PageParams): Result<Json<MessagePage>> {
    const m = this.meta();
    // Membership first: a stranger must not learn the epoch from the mismatch error.
    const intervals = this.members.intervals(who.user);
    if (intervals.length === 0) return notMember(who.user);
    if (params.epoch !== undefined && params.epoch !== m.epoch) return epochMismatch(m.epoch);
    if (params.after !== undefined && params.before !== undefined) return fail("invalid_request", "give either after or before, not both");
    if (params.after !== undefined && params.after > m.head_seq) return fail("invalid_request", `after=${params.after} is beyond head_seq ${m.head_seq}`);
    const ranges = visibleRanges(intervals, m.floor_seq, m.head_seq);
    const forward = params.after !== undefined;
    const plan = forward
      ? planForward(ranges, m.floor_seq, m.head_seq, params.after ?? 0, params.limit)
      : planBackward(ranges, m.floor_seq, m.head_seq, Math.min(params.before ?? Infinity, m.head_seq + 1), params.limit);
    // The budget pays for the rows this page really reads, not the limit asked for.
    const shed = this.budget.admit(rowsOf(plan.pieces), "history reads");
    if (shed) return shed;
    const messages = this.log.read(plan.pieces);
    this.signals.unavailable(who, plan.gaps, intervals);
    this.signals.duplicates(who, plan.pieces);
    const head = { conversation_id: m.id, epoch: m.epoch, head_seq: m.head_seq, floor_seq: m.floor_seq };
    return ok(pageJson(head, messages, plan.gaps, plan.hasMore, forward ? { next_after: plan.boundary } : { next_before: plan.boundary }));
  }

  timeline(who: SenderRef, received: number, limit: number): Result<Json<SyncTimeline>> {
    const m = this.meta();
    const intervals = this.members.intervals(who.user);
    if (intervals.length === 0) return notMember(who.user);
    const visibleHead = this.members.visibleHead(intervals);
    const plan = planTimeline(visibleRanges(intervals, m.floor_seq, m.head_seq), m.floor_seq, visibleHead, Math.min(received, visibleHead), limit);
    const shed = this.budget.admit(rowsOf(plan.pieces), "timeline reads");
    if (shed) return shed;
    this.signals.unavailable(who, plan.gaps, intervals);
    return ok(timelineJson(this.log.read(plan.pieces), plan.gaps, plan.limited, plan.nextBefore));
  }
}
