/**
 * Pure page planning over membership history and retention. The log is dense
 * above `floor_seq` (retention only removes a prefix), so which seqs a page
 * holds can be decided from the intervals alone; the object then reads exactly
 * those ranges. A page therefore never costs more than its size.
 */
import type { Gap } from "../protocol/types";

/** Inclusive seq range. */
export interface Range {
  from: number;
  to: number;
}

export interface PagePlan {
  /** Ranges to read, ascending. Their total length is the page size. */
  pieces: Range[];
  gaps: Gap[];
  hasMore: boolean;
  /** Forward: the last seq the page covers. Backward: the first. */
  boundary: number;
}

/** Visible ranges of a user: their intervals clipped to (floor, visibleHead]. */
export function visibleRanges(intervals: readonly Range[], floor: number, head: number): Range[] {
  const out: Range[] = [];
  for (const r of intervals) {
    const from = Math.max(r.from, floor + 1);
    const to = Math.min(r.to, head);
    if (from <= to) out.push({ from, to });
  }
  return out.sort((a, b) => a.from - b.from);
}

/** Gaps inside [lo, hi]: `retention` at or below the floor, `not_member` outside the ranges. */
export function gapsIn(lo: number, hi: number, ranges: readonly Range[], floor: number): Gap[] {
  const gaps: Gap[] = [];
  if (lo > hi) return gaps;
  if (lo <= floor) gaps.push({ from: lo, to: Math.min(hi, floor), reason: "retention" });
  let cursor = Math.max(lo, floor + 1);
  for (const r of ranges) {
    if (r.to < cursor) continue;
    if (r.from > hi) break;
    if (r.from > cursor) gaps.push({ from: cursor, to: Math.min(r.from - 1, hi), reason: "not_member" });
    cursor = r.to + 1;
  }
  if (cursor <= hi) gaps.push({ from: cursor, to: hi, reason: "not_member" });
  return gaps;
}

/** Up to `limit` visible seqs after `after`, ascending. */
export function planForward(ranges: readonly Range[], floor: number, head: number, after: number, limit: number): PagePlan {
  const pieces: Range[] = [];
  let remaining = limit;
  let last = after;
  let hasMore = false;
  for (const r of ranges) {
    const from = Math.max(r.from, after + 1);
    if (from > r.to) continue;
    if (remaining === 0) {
      hasMore = true;
      break;
    }
    const to = Math.min(r.to, from + remaining - 1);
    pieces.push({ from, to });
    remaining -= to - from + 1;
    last = to;
    if (to < r.to && remaining === 0) {
      hasMore = true;
      break;
    }
  }
  const boundary = hasMore ? last : Math.max(head, after);
  return { pieces, gaps: gapsIn(after + 1, boundary, ranges, floor), hasMore, boundary };
}

/** Up to `limit` newest visible seqs below `before`; pieces still ascending. */
export function planBackward(ranges: readonly Range[], floor: number, head: number, before: number, limit: number): PagePlan {
  const hi = Math.min(before - 1, head);
  const pieces: Range[] = [];
  let remaining = limit;
  let first = hi + 1;
  let hasMore = false;
  for (let i = ranges.length - 1; i >= 0; i--) {
    const r = ranges[i]!;
    const to = Math.min(r.to, hi);
    if (to < r.from) continue;
    if (remaining === 0) {
      hasMore = true;
      break;
    }
    const from = Math.max(r.from, to - remaining + 1);
    pieces.unshift({ from, to });
    remaining -= to - from + 1;
    first = from;
    if (from > r.from && remaining === 0) {
      hasMore = true;
      break;
    }
  }
  const boundary = hasMore ? first : 1;
  return { pieces, gaps: gapsIn(boundary, hi, ranges, floor), hasMore, boundary };
}

export interface TimelinePlan {
  pieces: Range[];
  gaps: Gap[];
  limited: boolean;
  /** The first returned seq when limited, else null. */
  nextBefore: number | null;
}

/**
 * The v1.1 sync timeline: the newest ≤ `limit` visible seqs above the device's
 * `received` cursor. `limited` when visible seqs remain between `received` and
 * the first returned one; gaps cover what the timeline spans, as in a history
 * page (from the first returned seq when limited, else from `received` + 1).
 */
export function planTimeline(ranges: readonly Range[], floor: number, visibleHead: number, received: number, limit: number): TimelinePlan {
  const clipped = ranges.map((r) => ({ from: Math.max(r.from, received + 1), to: r.to })).filter((r) => r.from <= r.to);
  const plan = planBackward(clipped, floor, visibleHead, visibleHead + 1, limit);
  const lo = plan.hasMore ? plan.boundary : received + 1;
  return { pieces: plan.pieces, gaps: gapsIn(lo, visibleHead, ranges, floor), limited: plan.hasMore, nextBefore: plan.hasMore ? plan.boundary : null };
}
