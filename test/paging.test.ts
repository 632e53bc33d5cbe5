/** Pure unit tests of src/conversation/paging.ts. */
import { describe, expect, it } from "vitest";
import { gapsIn, planBackward, planForward, visibleRanges, type PagePlan, type Range } from "../src/conversation/paging";

/** The seqs a plan reads, in order. */
function planned(plan: PagePlan): number[] {
  return plan.pieces.flatMap((p) => Array.from({ length: p.to - p.from + 1 }, (_, i) => p.from + i));
}

/** Walks a whole log forward with `limit`, returning every plan. */
function walkForward(ranges: Range[], floor: number, head: number, limit: number): PagePlan[] {
  const plans: PagePlan[] = [];
  let after = 0;
  for (let i = 0; i < 1000; i++) {
    const plan = planForward(ranges, floor, head, after, limit);
    plans.push(plan);
    after = plan.boundary;
    if (!plan.hasMore) return plans;
  }
  throw new Error("forward walk did not end");
}

function walkBackward(ranges: Range[], floor: number, head: number, limit: number): PagePlan[] {
  const plans: PagePlan[] = [];
  let before = head + 1;
  for (let i = 0; i < 1000; i++) {
    const plan = planBackward(ranges, floor, head, before, limit);
    plans.push(plan);
    before = plan.boundary;
    if (!plan.hasMore) return plans;
  }
  throw new Error("backward walk did not end");
}

describe("visibleRanges", () => {
  it("clips intervals to (floor, head] and drops empty ones", () => {
    expect(visibleRanges([{ from: 1, to: 10 }], 0, 10)).toEqual([{ from: 1, to: 10 }]);
    expect(visibleRanges([{ from: 1, to: 10 }], 4, 8)).toEqual([{ from: 5, to: 8 }]);
    expect(visibleRanges([{ from: 1, to: 3 }, { from: 6, to: 9 }], 3, 9)).toEqual([{ from: 6, to: 9 }]);
    expect(visibleRanges([{ from: 1, to: 3 }], 5, 9)).toEqual([]);
    expect(visibleRanges([{ from: 12, to: 15 }], 0, 10)).toEqual([]);
  });

  it("sorts by start", () => {
    expect(visibleRanges([{ from: 6, to: 9 }, { from: 1, to: 3 }], 0, 9)).toEqual([
      { from: 1, to: 3 },
      { from: 6, to: 9 },
    ]);
  });
});

describe("gapsIn", () => {
  it("no gaps inside a visible range", () => {
    expect(gapsIn(1, 10, [{ from: 1, to: 10 }], 0)).toEqual([]);
  });

  it("retention below the floor, not_member between and around ranges", () => {
    const ranges = [{ from: 5, to: 6 }, { from: 9, to: 10 }];
    expect(gapsIn(1, 12, ranges, 2)).toEqual([
      { from: 1, to: 2, reason: "retention" },
      { from: 3, to: 4, reason: "not_member" },
      { from: 7, to: 8, reason: "not_member" },
      { from: 11, to: 12, reason: "not_member" },
    ]);
  });

  it("clips gaps to [lo, hi]", () => {
    const ranges = [{ from: 5, to: 6 }, { from: 9, to: 10 }];
    expect(gapsIn(6, 9, ranges, 0)).toEqual([{ from: 7, to: 8, reason: "not_member" }]);
    expect(gapsIn(2, 3, ranges, 0)).toEqual([{ from: 2, to: 3, reason: "not_member" }]);
    expect(gapsIn(1, 1, ranges, 4)).toEqual([{ from: 1, to: 1, reason: "retention" }]);
  });

  it("an empty window has no gaps", () => {
    expect(gapsIn(5, 4, [{ from: 1, to: 10 }], 0)).toEqual([]);
  });

  it("with no visible ranges the whole window above the floor is not_member", () => {
    expect(gapsIn(1, 5, [], 2)).toEqual([
      { from: 1, to: 2, reason: "retention" },
      { from: 3, to: 5, reason: "not_member" },
    ]);
  });
});

describe("planForward", () => {
  it("a full member: pages of `limit`, hasMore until the head", () => {
    const r = [{ from: 1, to: 12 }];
    const p1 = planForward(r, 0, 12, 0, 5);
    expect(p1).toEqual<PagePlan>({ pieces: [{ from: 1, to: 5 }], gaps: [], hasMore: true, boundary: 5 });
    const p3 = planForward(r, 0, 12, 10, 5);
    expect(p3).toEqual<PagePlan>({ pieces: [{ from: 11, to: 12 }], gaps: [], hasMore: false, boundary: 12 });
  });

  it("exactly `limit` left: hasMore false", () => {
    expect(planForward([{ from: 1, to: 10 }], 0, 10, 5, 5)).toEqual<PagePlan>({
      pieces: [{ from: 6, to: 10 }],
      gaps: [],
      hasMore: false,
      boundary: 10,
    });
  });

  it("after = head: empty, boundary = head", () => {
    expect(planForward([{ from: 1, to: 10 }], 0, 10, 10, 5)).toEqual<PagePlan>({ pieces: [], gaps: [], hasMore: false, boundary: 10 });
  });

  it("spans a not_member gap within one page", () => {
    const plan = planForward([{ from: 1, to: 3 }, { from: 7, to: 9 }], 0, 9, 0, 10);
    expect(planned(plan)).toEqual([1, 2, 3, 7, 8, 9]);
    expect(plan.gaps).toEqual([{ from: 4, to: 6, reason: "not_member" }]);
    expect(plan.hasMore).toBe(false);
    expect(plan.boundary).toBe(9);
  });

  it("a page that fills at the end of a range says hasMore when another range follows", () => {
    const plan = planForward([{ from: 1, to: 3 }, { from: 7, to: 9 }], 0, 9, 0, 3);
    expect(planned(plan)).toEqual([1, 2, 3]);
    expect(plan.hasMore).toBe(true);
    expect(plan.boundary).toBe(3);
    expect(plan.gaps).toEqual([]);
    const next = planForward([{ from: 1, to: 3 }, { from: 7, to: 9 }], 0, 9, 3, 3);
    expect(planned(next)).toEqual([7, 8, 9]);
    expect(next.gaps).toEqual([{ from: 4, to: 6, reason: "not_member" }]);
    expect(next.hasMore).toBe(false);
  });

  it("a member who left sees the tail as not_member up to the head", () => {
    const plan = planForward([{ from: 1, to: 4 }], 0, 10, 0, 100);
    expect(planned(plan)).toEqual([1, 2, 3, 4]);
    expect(plan.gaps).toEqual([{ from: 5, to: 10, reason: "not_member" }]);
    expect(plan.hasMore).toBe(false);
    expect(plan.boundary).toBe(10);
  });

  it("retention: the part at or below the floor is a retention gap", () => {
    const ranges = visibleRanges([{ from: 1, to: 10 }], 4, 10);
    const plan = planForward(ranges, 4, 10, 0, 3);
    expect(planned(plan)).toEqual([5, 6, 7]);
    expect(plan.gaps).toEqual([{ from: 1, to: 4, reason: "retention" }]);
    expect(plan.hasMore).toBe(true);
  });

  it("a walk covers every visible seq once and every invisible seq in exactly one gap", () => {
    const intervals = [{ from: 2, to: 5 }, { from: 9, to: 9 }, { from: 12, to: 20 }];
    for (const floor of [0, 3, 10]) {
      for (const limit of [1, 2, 3, 7, 100]) {
        const head = 22;
        const ranges = visibleRanges(intervals, floor, head);
        const plans = walkForward(ranges, floor, head, limit);
        const seen = plans.flatMap(planned);
        const visible = ranges.flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i));
        expect(seen).toEqual(visible);
        for (const p of plans) expect(planned(p).length).toBeLessThanOrEqual(limit);
        const gapSeqs = plans.flatMap((p) => p.gaps.flatMap((g) => Array.from({ length: g.to - g.from + 1 }, (_, i) => g.from + i)));
        const all = [...seen, ...gapSeqs].sort((a, b) => a - b);
        expect(all).toEqual(Array.from({ length: head }, (_, i) => i + 1));
        for (const p of plans) {
          for (const g of p.gaps) expect(g.reason).toBe(g.to <= floor ? "retention" : "not_member");
        }
      }
    }
  });
});

describe("planBackward", () => {
  it("newest first, pieces ascending", () => {
    const plan = planBackward([{ from: 1, to: 12 }], 0, 12, 13, 5);
    expect(plan).toEqual<PagePlan>({ pieces: [{ from: 8, to: 12 }], gaps: [], hasMore: true, boundary: 8 });
  });

  it("reaching seq 1 exactly: hasMore false", () => {
    const plan = planBackward([{ from: 1, to: 12 }], 0, 12, 6, 5);
    expect(planned(plan)).toEqual([1, 2, 3, 4, 5]);
    expect(plan.hasMore).toBe(false);
  });

  it("before beyond head+1 is clipped to the head", () => {
    const plan = planBackward([{ from: 1, to: 12 }], 0, 12, 1000, 3);
    expect(planned(plan)).toEqual([10, 11, 12]);
  });

  it("spans ranges, reporting the gap between them", () => {
    const ranges = [{ from: 1, to: 5 }, { from: 10, to: 12 }];
    const p1 = planBackward(ranges, 0, 12, 13, 2);
    expect(planned(p1)).toEqual([11, 12]);
    expect(p1.hasMore).toBe(true);
    expect(p1.boundary).toBe(11);
    const p2 = planBackward(ranges, 0, 12, 11, 2);
    expect(planned(p2)).toEqual([5, 10]);
    expect(p2.gaps).toEqual([{ from: 6, to: 9, reason: "not_member" }]);
    expect(p2.hasMore).toBe(true);
    expect(p2.boundary).toBe(5);
  });

  it("the last page reports a leading not_member and retention gap", () => {
    const ranges = visibleRanges([{ from: 4, to: 10 }], 5, 10);
    const plan = planBackward(ranges, 5, 10, 11, 100);
    expect(planned(plan)).toEqual([6, 7, 8, 9, 10]);
    expect(plan.gaps).toEqual([{ from: 1, to: 5, reason: "retention" }]);
    expect(plan.hasMore).toBe(false);
    const late = planBackward([{ from: 4, to: 10 }], 0, 10, 11, 100);
    expect(late.gaps).toEqual([{ from: 1, to: 3, reason: "not_member" }]);
  });

  it("before=1: nothing", () => {
    expect(planBackward([{ from: 1, to: 5 }], 0, 5, 1, 10)).toEqual<PagePlan>({ pieces: [], gaps: [], hasMore: false, boundary: 1 });
  });

  it("a walk covers every visible seq once, newest page first", () => {
    const intervals = [{ from: 2, to: 5 }, { from: 9, to: 9 }, { from: 12, to: 20 }];
    for (const floor of [0, 3, 10]) {
      for (const limit of [1, 2, 3, 7, 100]) {
        const head = 22;
        const ranges = visibleRanges(intervals, floor, head);
        const plans = walkBackward(ranges, floor, head, limit);
        for (const p of plans) {
          const s = planned(p);
          expect(s).toEqual([...s].sort((a, b) => a - b));
          expect(s.length).toBeLessThanOrEqual(limit);
        }
        const seen = plans.reverse().flatMap(planned);
        const visible = ranges.flatMap((r) => Array.from({ length: r.to - r.from + 1 }, (_, i) => r.from + i));
        expect(seen).toEqual(visible);
        const gapSeqs = plans.flatMap((p) => p.gaps.flatMap((g) => Array.from({ length: g.to - g.from + 1 }, (_, i) => g.from + i)));
        expect([...seen, ...gapSeqs].sort((a, b) => a - b)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
      }
    }
  });
});
