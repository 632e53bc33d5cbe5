/** Direct tests of the pure pieces: admission budget, catch-up frames, checkpoints, the shard tree, timeline plans. */
import { describe, expect, it } from "vitest";
import { planTimeline, visibleRanges } from "../src/conversation/paging";
import { catchUpFrames } from "../src/conversation/wire";
import { childrenOf, leafCount, leavesUnder, topNodes, type TreeNode } from "../src/fanout/tree";
import { RowBudget } from "../src/platform/admission";
import { backoffMs, retryAfterSeconds } from "../src/platform/retry";
import { decodeCheckpoint, encodeCheckpoint, encodeFullCheckpoint } from "../src/user/checkpoint";

describe("RowBudget", () => {
  it("admits a burst, then refuses with the wait until the rows are back", () => {
    const b = new RowBudget(100);
    const t0 = Date.now();
    expect(b.take(100, t0)).toEqual({ ok: true });
    const refused = b.take(50, t0);
    expect(refused).toEqual({ ok: false, retryAfterMs: 500 });
    expect(b.take(50, t0 + 500)).toEqual({ ok: true });
  });

  it("a request larger than the burst costs the burst (never refused forever)", () => {
    const b = new RowBudget(10, 10);
    expect(b.take(1000, Date.now())).toEqual({ ok: true });
  });

  it("admit() turns a refusal into 503 overloaded with a Retry-After of at least the wait", () => {
    const b = new RowBudget(10);
    expect(b.admit(10, "reads")).toBeNull();
    const f = b.admit(10, "reads");
    expect(f).toMatchObject({ ok: false, code: "overloaded" });
    expect(f!.retryAfter).toBeGreaterThanOrEqual(2);
  });
});

describe("retry", () => {
  it("full jitter stays below the capped exponential; Retry-After adds whole seconds of spread", () => {
    for (let a = 0; a < 40; a++) expect(backoffMs(a, 100, 5000, () => 0.999)).toBeLessThan(Math.min(5000, 100 * 2 ** a));
    expect(retryAfterSeconds(1500, 3, () => 0)).toBe(2);
    expect(retryAfterSeconds(1500, 3, () => 0.99)).toBe(4);
    expect(retryAfterSeconds(0, 1, () => 0)).toBe(1);
  });
});

describe("catch-up frames", () => {
  const msg = (seq: number, size: number) => `{"seq":${seq},"pad":"${"x".repeat(size)}"}`;

  it("splits a page at the byte bound; gaps ride on the first frame; has_more is false only at the very end", () => {
    const messages = [1, 2, 3, 4, 5].map((s) => msg(s, 90));
    const frames = catchUpFrames(messages, [{ from: 0, to: 0, reason: "retention" }], true, 250).map((f) => JSON.parse(f));
    expect(frames.map((f) => f.messages.map((m: { seq: number }) => m.seq))).toEqual([[1, 2], [3, 4], [5]]);
    expect(frames.map((f) => f.gaps.length)).toEqual([1, 0, 0]);
    expect(frames.map((f) => f.has_more)).toEqual([true, true, false]);
  });

  it("a frame always carries at least one message, even one over the bound", () => {
    const frames = catchUpFrames([msg(1, 1000)], [], false, 100).map((f) => JSON.parse(f));
    expect(frames).toHaveLength(1);
    expect(frames[0].has_more).toBe(true);
  });

  it("an empty last page with gaps still says where the catch-up ends", () => {
    const frames = catchUpFrames([], [{ from: 3, to: 9, reason: "not_member" }], true).map((f) => JSON.parse(f));
    expect(frames).toEqual([{ type: "messages", messages: [], gaps: [{ from: 3, to: 9, reason: "not_member" }], has_more: false }]);
    expect(catchUpFrames([], [], true)).toEqual([]);
  });
});

describe("checkpoints", () => {
  it("round-trip both kinds", () => {
    expect(decodeCheckpoint(encodeCheckpoint(0))).toEqual({ kind: "since", pos: 0 });
    expect(decodeCheckpoint(encodeCheckpoint(123456789))).toEqual({ kind: "since", pos: 123456789 });
    expect(decodeCheckpoint(encodeFullCheckpoint(42, 1764580000000, "general-1_x"))).toEqual({
      kind: "full", snapshot: 42, after: { activity: 1764580000000, id: "general-1_x" },
    });
  });

  it("refuses what the server did not issue", () => {
    for (const bad of ["", "c1.", "c2.5", "c1.-1", "c1.ZZ", "c1.zzzzzzzzzzzz", "c1.zzzzzzzzzzz", "f1.1.2", "f1.1.2.bad id", "f1.x!.2.a", "5"]) {
      expect(decodeCheckpoint(bad), bad).toBeNull();
    }
  });
});

describe("notification tree", () => {
  /** Every leaf under the top nodes exactly once, and no node with more than F children. */
  function walk(leaves: number, fanout: number): number[] {
    const out: number[] = [];
    const visit = (n: TreeNode) => {
      if (n.level === 0) return void out.push(n.index);
      const kids = childrenOf(n, leaves, fanout);
      expect(kids.length).toBeLessThanOrEqual(fanout);
      kids.forEach(visit);
    };
    const top = topNodes(leaves, fanout);
    expect(top.length).toBeLessThanOrEqual(fanout);
    top.forEach(visit);
    return out;
  }

  it("covers every leaf once at any size, with at most F calls per node", () => {
    for (const fanout of [2, 3, 10, 100]) {
      for (const slots of [0, 1, fanout, fanout + 1, fanout * fanout, fanout * fanout + 1, 100_000]) {
        const leaves = leafCount(slots, fanout);
        const seen = walk(leaves, fanout);
        if (leaves <= 1) expect(seen).toEqual([]);
        else expect(seen).toEqual(Array.from({ length: leaves }, (_, i) => i));
      }
    }
  });

  it("100,000 members at F = 100: the conversation calls 10 branches, each 100 leaves of 100", () => {
    const leaves = leafCount(100_000, 100);
    expect(leaves).toBe(1000);
    const top = topNodes(leaves, 100);
    expect(top).toHaveLength(10);
    expect(top[0]).toEqual({ level: 1, index: 0 });
    expect(leavesUnder(top[9]!, leaves, 100)).toEqual([900, 1000]);
  });
});

describe("timeline plans", () => {
  const ranges = visibleRanges([{ from: 1, to: 20 }], 0, 20);

  it("newest K above received, limited with next_before", () => {
    expect(planTimeline(ranges, 0, 20, 5, 4)).toEqual({ pieces: [{ from: 17, to: 20 }], gaps: [], limited: true, nextBefore: 17 });
    expect(planTimeline(ranges, 0, 20, 16, 4)).toEqual({ pieces: [{ from: 17, to: 20 }], gaps: [], limited: false, nextBefore: null });
    expect(planTimeline(ranges, 0, 20, 20, 4)).toEqual({ pieces: [], gaps: [], limited: false, nextBefore: null });
  });

  it("gaps cover what the timeline spans: retention below, not_member between intervals", () => {
    const split = visibleRanges([{ from: 1, to: 5 }, { from: 9, to: 12 }], 3, 12);
    expect(planTimeline(split, 3, 12, 0, 50)).toEqual({
      pieces: [{ from: 4, to: 5 }, { from: 9, to: 12 }],
      gaps: [{ from: 1, to: 3, reason: "retention" }, { from: 6, to: 8, reason: "not_member" }],
      limited: false,
      nextBefore: null,
    });
    expect(planTimeline(split, 3, 12, 0, 3)).toMatchObject({ pieces: [{ from: 10, to: 12 }], gaps: [], limited: true, nextBefore: 10 });
  });
});
