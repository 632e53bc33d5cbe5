/** GET /v1/conversations/:id/messages over HTTP: forward/backward pages, limits, stability. */
import { describe, expect, it } from "vitest";
import { Device, range, sendMany, seqs, uid } from "./helpers";

/** alice + bob, 20 messages → seqs 1 (creation) .. 21. */
async function twentyOne() {
  const alice = await Device.of(uid("alice"));
  const bob = await Device.of(uid("bob"));
  const conv = await alice.createConversation([bob.user]);
  await Promise.all(range(1, 20).map((i) => alice.sendOk(conv, `m${i}`)));
  return { alice, bob, conv };
}

describe("forward pages (after)", () => {
  it("walk the log in pages of 5: every seq exactly once, has_more and next_after exact", async () => {
    const { bob, conv } = await twentyOne();
    const walk: { seqs: number[]; has_more: boolean; next_after: number | undefined }[] = [];
    let after = 0;
    for (let i = 0; i < 10; i++) {
      const res = await bob.page(conv, `after=${after}&limit=5`);
      expect(res.status).toBe(200);
      expect(res.body.next_before).toBeUndefined();
      expect(res.body.gaps).toEqual([]);
      walk.push({ seqs: seqs(res.body), has_more: res.body.has_more, next_after: res.body.next_after });
      after = res.body.next_after!;
      if (!res.body.has_more) break;
    }
    expect(walk).toEqual([
      { seqs: [1, 2, 3, 4, 5], has_more: true, next_after: 5 },
      { seqs: [6, 7, 8, 9, 10], has_more: true, next_after: 10 },
      { seqs: [11, 12, 13, 14, 15], has_more: true, next_after: 15 },
      { seqs: [16, 17, 18, 19, 20], has_more: true, next_after: 20 },
      { seqs: [21], has_more: false, next_after: 21 },
    ]);
  });

  it("a page ending exactly at the head says has_more:false", async () => {
    const { bob, conv } = await twentyOne();
    const res = await bob.page(conv, "after=16&limit=5");
    expect(seqs(res.body)).toEqual([17, 18, 19, 20, 21]);
    expect(res.body.has_more).toBe(false);
    expect(res.body.next_after).toBe(21);
  });

  it("after=head is an empty page with next_after=head", async () => {
    const { bob, conv } = await twentyOne();
    const res = await bob.page(conv, "after=21");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ messages: [], gaps: [], has_more: false, next_after: 21, head_seq: 21 });
  });

  it("page metadata: conversation_id, epoch, head_seq, floor_seq", async () => {
    const { alice, bob, conv } = await twentyOne();
    const summary = (await alice.summary(conv)).body;
    const res = await bob.page(conv, "after=0&limit=1");
    expect(res.body).toMatchObject({ conversation_id: conv, epoch: summary.epoch, head_seq: 21, floor_seq: 0 });
  });
});

describe("backward pages (before)", () => {
  it("without a cursor: the newest page, messages ascending", async () => {
    const { bob, conv } = await twentyOne();
    const res = await bob.page(conv, "limit=5");
    expect(res.status).toBe(200);
    expect(seqs(res.body)).toEqual([17, 18, 19, 20, 21]);
    expect(res.body.has_more).toBe(true);
    expect(res.body.next_before).toBe(17);
    expect(res.body.next_after).toBeUndefined();
  });

  it("walk back to the start: newest first, each page ascending, every seq once", async () => {
    const { bob, conv } = await twentyOne();
    const walk: { seqs: number[]; has_more: boolean }[] = [];
    let query = "limit=5";
    for (let i = 0; i < 10; i++) {
      const res = await bob.page(conv, query);
      walk.push({ seqs: seqs(res.body), has_more: res.body.has_more });
      if (!res.body.has_more) break;
      query = `before=${res.body.next_before}&limit=5`;
    }
    expect(walk).toEqual([
      { seqs: [17, 18, 19, 20, 21], has_more: true },
      { seqs: [12, 13, 14, 15, 16], has_more: true },
      { seqs: [7, 8, 9, 10, 11], has_more: true },
      { seqs: [2, 3, 4, 5, 6], has_more: true },
      { seqs: [1], has_more: false },
    ]);
  });

  it("before beyond the head acts like the head; before=1 is empty", async () => {
    const { bob, conv } = await twentyOne();
    const far = await bob.page(conv, "before=1000&limit=3");
    expect(seqs(far.body)).toEqual([19, 20, 21]);
    const mid = await bob.page(conv, "before=10&limit=3");
    expect(seqs(mid.body)).toEqual([7, 8, 9]);
    expect(mid.body.next_before).toBe(7);
    const start = await bob.page(conv, "before=1");
    expect(start.status).toBe(200);
    expect(start.body.messages).toEqual([]);
    expect(start.body.has_more).toBe(false);
  });

  it("a backward page that reaches seq 1 exactly says has_more:false", async () => {
    const { bob, conv } = await twentyOne();
    const res = await bob.page(conv, "before=6&limit=5");
    expect(seqs(res.body)).toEqual([1, 2, 3, 4, 5]);
    expect(res.body.has_more).toBe(false);
  });
});

describe("limits", () => {
  it("default page size is 100; max 500 accepted; limit=1 works", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    await Promise.all(range(1, 119).map((i) => alice.sendOk(conv, `m${i}`)));
    const dflt = await alice.page(conv, "after=0");
    expect(seqs(dflt.body)).toEqual(range(1, 100));
    expect(dflt.body.has_more).toBe(true);
    expect(dflt.body.next_after).toBe(100);
    const back = await alice.page(conv, "");
    expect(seqs(back.body)).toEqual(range(21, 120));
    expect(back.body.next_before).toBe(21);
    const max = await alice.page(conv, "after=0&limit=500");
    expect(seqs(max.body)).toEqual(range(1, 120));
    expect(max.body.has_more).toBe(false);
    const one = await alice.page(conv, "after=7&limit=1");
    expect(seqs(one.body)).toEqual([8]);
    expect(one.body.next_after).toBe(8);
  });
});

describe("stable pages", () => {
  it("the same request twice returns an identical body", async () => {
    const { bob, conv } = await twentyOne();
    for (const q of ["after=0&limit=7", "after=7&limit=7", "limit=4", "before=9&limit=4", "after=0", ""]) {
      const a = await bob.page(conv, q);
      const b = await bob.page(conv, q);
      expect(a.status).toBe(200);
      expect(b.body).toEqual(a.body);
    }
  });

  it("a forward page already read keeps its messages when new entries arrive", async () => {
    const { alice, bob, conv } = await twentyOne();
    const before = await bob.page(conv, "after=5&limit=5");
    await alice.sendOk(conv);
    const after = await bob.page(conv, "after=5&limit=5");
    expect(after.body.messages).toEqual(before.body.messages);
    expect(after.body.next_after).toBe(before.body.next_after);
    expect(after.body.head_seq).toBe(22);
  });

  it("a client that repeats its last forward request after a failure loses nothing", async () => {
    const { alice, bob, conv } = await twentyOne();
    const first = await bob.page(conv, "after=0&limit=15");
    // ... the client crashes before processing; meanwhile more arrive; it repeats the request.
    await sendMany(alice, conv, 3);
    const retry = await bob.page(conv, "after=0&limit=15");
    expect(retry.body.messages).toEqual(first.body.messages);
    const rest = await bob.page(conv, `after=${retry.body.next_after}&limit=15`);
    expect([...seqs(retry.body), ...seqs(rest.body)]).toEqual(range(1, 24));
  });
});
