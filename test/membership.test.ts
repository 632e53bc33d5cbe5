/** Membership history: reads are filtered by intervals, with exact gaps; current-member-only actions. */
import { describe, expect, it } from "vitest";
import type { MemberChangeBody } from "../src/protocol/types";
import { Device, expectError, flush, range, seqs, uid } from "./helpers";

/**
 * alice creates with bob (1); alice sends 2..3; bob removed (4); alice sends 5..6;
 * bob re-added (7); alice sends 8..9.
 */
async function joinLeaveRejoin() {
  const alice = await Device.of(uid("alice"));
  const bob = await Device.of(uid("bob"));
  const conv = await alice.createConversation([bob.user]);
  await alice.sendOk(conv, "2");
  await alice.sendOk(conv, "3");
  const removed = await alice.members(conv, { remove: [bob.user] });
  expect(removed.head_seq).toBe(4);
  expect(removed.members).toEqual([alice.user]);
  await alice.sendOk(conv, "5");
  await alice.sendOk(conv, "6");
  const added = await alice.members(conv, { add: [bob.user] });
  expect(added.head_seq).toBe(7);
  expect(added.members).toEqual([alice.user, bob.user].sort());
  await alice.sendOk(conv, "8");
  await alice.sendOk(conv, "9");
  return { alice, bob, conv };
}

describe("membership history on reads", () => {
  it("join, leave, re-join: forward read shows 1..4 and 7..9 with a not_member gap 5..6", async () => {
    const { bob, conv } = await joinLeaveRejoin();
    const page = await bob.page(conv, "after=0");
    expect(page.status).toBe(200);
    expect(seqs(page.body)).toEqual([1, 2, 3, 4, 7, 8, 9]);
    expect(page.body.gaps).toEqual([{ from: 5, to: 6, reason: "not_member" }]);
    expect(page.body.head_seq).toBe(9);
    expect(page.body.has_more).toBe(false);
    expect(page.body.next_after).toBe(9);
    const leave = page.body.messages[3]!;
    expect(leave.type).toBe("member");
    expect((leave.body as MemberChangeBody).removed).toEqual([bob.user]);
    const rejoin = page.body.messages[4]!;
    expect((rejoin.body as MemberChangeBody).added).toEqual([bob.user]);
  });

  it("the same history read backward: messages ascending, same gap", async () => {
    const { bob, conv } = await joinLeaveRejoin();
    const page = await bob.page(conv, "");
    expect(seqs(page.body)).toEqual([1, 2, 3, 4, 7, 8, 9]);
    expect(page.body.gaps).toEqual([{ from: 5, to: 6, reason: "not_member" }]);
    expect(page.body.has_more).toBe(false);
  });

  it("paging through the gap in small forward pages reports each part of it once", async () => {
    const { bob, conv } = await joinLeaveRejoin();
    const p1 = await bob.page(conv, "after=0&limit=4");
    expect(seqs(p1.body)).toEqual([1, 2, 3, 4]);
    expect(p1.body.gaps).toEqual([]);
    expect(p1.body.has_more).toBe(true);
    expect(p1.body.next_after).toBe(4);
    const p2 = await bob.page(conv, "after=4&limit=4");
    expect(seqs(p2.body)).toEqual([7, 8, 9]);
    expect(p2.body.gaps).toEqual([{ from: 5, to: 6, reason: "not_member" }]);
    expect(p2.body.has_more).toBe(false);
    expect(p2.body.next_after).toBe(9);
  });

  it("a member who joined late sees a not_member gap before their join", async () => {
    const alice = await Device.of(uid("alice"));
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([]);
    await alice.sendOk(conv);
    await alice.sendOk(conv);
    await alice.members(conv, { add: [carol.user] });
    await alice.sendOk(conv);
    const page = await carol.page(conv, "after=0");
    expect(seqs(page.body)).toEqual([4, 5]);
    expect(page.body.gaps).toEqual([{ from: 1, to: 3, reason: "not_member" }]);
    const back = await carol.page(conv, "");
    expect(seqs(back.body)).toEqual([4, 5]);
    expect(back.body.gaps).toEqual([{ from: 1, to: 3, reason: "not_member" }]);
  });

  it("a removed member can still read their intervals, sees nothing after leaving, gets 403 on send", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await bob.sendOk(conv, "mine");
    await alice.members(conv, { remove: [bob.user] });
    await alice.sendOk(conv, "secret");
    await alice.sendOk(conv, "secret2");

    const page = await bob.page(conv, "after=0");
    expect(page.status).toBe(200);
    expect(seqs(page.body)).toEqual([1, 2, 3]);
    expect(page.body.gaps).toEqual([{ from: 4, to: 5, reason: "not_member" }]);
    expect(JSON.stringify(page.body.messages)).not.toContain("secret");
    const after = await bob.page(conv, "after=3");
    expect(after.body.messages).toEqual([]);

    const send = await bob.send(conv, "let me in");
    expectError(send, 403, "forbidden");
    expect((await alice.summary(conv)).body.head_seq).toBe(5);

    const summary = await bob.summary(conv);
    expectError(summary, 403, "forbidden");

    const change = await bob.post(`/v1/conversations/${conv}/members`, { add: [bob.user] });
    expectError(change, 403, "forbidden");
    expect((await alice.summary(conv)).body).toMatchObject({ head_seq: 5, members: [alice.user] });
  });

  it("a user who was never a member gets 403 on every conversation route", async () => {
    const alice = await Device.of(uid("alice"));
    const eve = await Device.of(uid("eve"));
    const conv = await alice.createConversation([]);
    await alice.sendOk(conv);
    expectError(await eve.page(conv, "after=0"), 403, "forbidden");
    expectError(await eve.page(conv, ""), 403, "forbidden");
    expectError(await eve.summary(conv), 403, "forbidden");
    expectError(await eve.send(conv, "hi"), 403, "forbidden");
    expectError(await eve.post(`/v1/conversations/${conv}/members`, { add: [eve.user] }), 403, "forbidden");
    expectError(await eve.cursors({ read: { [conv]: 1 } }), 403, "forbidden");
    expect((await alice.summary(conv)).body).toMatchObject({ head_seq: 2, members: [alice.user] });
  });

  it("a never-member probing with a wrong epoch still gets 403 (no epoch leak)", async () => {
    const alice = await Device.of(uid("alice"));
    const eve = await Device.of(uid("eve"));
    const conv = await alice.createConversation([]);
    const res = await eve.page(conv, "after=0&epoch=guess");
    expectError(res, 403, "forbidden");
    expect(JSON.stringify(res.body)).not.toContain((await alice.summary(conv)).body.epoch);
  });

  it("a member can leave by removing themselves", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const s = await bob.members(conv, { remove: [bob.user] });
    expect(s.members).toEqual([alice.user]);
    expect(s.head_seq).toBe(2);
    expectError(await bob.send(conv, "x"), 403, "forbidden");
    expect(seqs((await bob.page(conv, "after=0")).body)).toEqual([1, 2]);
  });

  it("no-op changes (add a member, remove a stranger) write no entry", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const s = await alice.members(conv, { add: [bob.user], remove: [uid("nobody")] });
    expect(s.head_seq).toBe(1);
    expect(s.members).toEqual([alice.user, bob.user].sort());
  });

  it("one request adding two and removing one writes one member entry", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const carol = uid("carol");
    const dave = uid("dave");
    const conv = await alice.createConversation([bob.user]);
    const s = await alice.members(conv, { add: [carol, dave], remove: [bob.user] });
    expect(s.head_seq).toBe(2);
    expect(s.members).toEqual([alice.user, carol, dave].sort());
    const entry = (await alice.page(conv, "after=1")).body.messages[0]!;
    const body = entry.body as MemberChangeBody;
    expect(entry.type).toBe("member");
    expect([...body.added].sort()).toEqual([carol, dave].sort());
    expect(body.removed).toEqual([bob.user]);
  });
});

describe("membership history on sync", () => {
  it("sync shows left (head = the leave seq) and then member again", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.sendOk(conv);
    await flush(conv);
    expect(await bob.syncEntry(conv)).toMatchObject({ id: conv, membership: "member", head_seq: 2 });

    await alice.members(conv, { remove: [bob.user] });
    await alice.sendOk(conv);
    await alice.sendOk(conv);
    await flush(conv);
    const left = await bob.syncEntry(conv);
    expect(left).toMatchObject({ id: conv, membership: "left", head_seq: 3 });

    await alice.members(conv, { add: [bob.user] });
    await flush(conv);
    expect(await bob.syncEntry(conv)).toMatchObject({ id: conv, membership: "member", head_seq: 6 });
    await alice.sendOk(conv);
    await flush(conv);
    expect(await bob.syncEntry(conv)).toMatchObject({ id: conv, membership: "member", head_seq: 7 });
  });

  it("an incremental sync after removal carries the membership change", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const first = await bob.sync();
    expect(first.body.conversations.map((c) => c.id)).toEqual([conv]);
    await alice.members(conv, { remove: [bob.user] });
    const next = await bob.sync(`since=${first.body.checkpoint}`);
    expect(next.body.conversations).toHaveLength(1);
    expect(next.body.conversations[0]).toMatchObject({ id: conv, membership: "left", head_seq: 2 });
    await alice.members(conv, { add: [bob.user] });
    const again = await bob.sync(`since=${next.body.checkpoint}`);
    expect(again.body.conversations).toHaveLength(1);
    expect(again.body.conversations[0]).toMatchObject({ id: conv, membership: "member", head_seq: 3 });
  });

  it("a user added later finds the conversation on sync at once", async () => {
    const alice = await Device.of(uid("alice"));
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([]);
    await alice.sendOk(conv);
    await alice.members(conv, { add: [carol.user] });
    const res = await carol.sync();
    expect(res.body.conversations).toEqual([
      expect.objectContaining({ id: conv, membership: "member", head_seq: 3, unread: 0, read: 0, received: 0 }),
    ]);
  });
});

describe("membership bounds", () => {
  it("reads stay inside intervals across two leave/re-join cycles", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]); // 1
    await alice.members(conv, { remove: [bob.user] }); // 2
    await alice.sendOk(conv); // 3
    await alice.members(conv, { add: [bob.user] }); // 4
    await alice.sendOk(conv); // 5
    await alice.members(conv, { remove: [bob.user] }); // 6
    await alice.sendOk(conv); // 7
    await alice.sendOk(conv); // 8
    await alice.members(conv, { add: [bob.user] }); // 9
    const page = await bob.page(conv, "after=0");
    expect(seqs(page.body)).toEqual([1, 2, 4, 5, 6, 9]);
    expect(page.body.gaps).toEqual([
      { from: 3, to: 3, reason: "not_member" },
      { from: 7, to: 8, reason: "not_member" },
    ]);
    const all = await alice.page(conv, "after=0");
    expect(seqs(all.body)).toEqual(range(1, 9));
    expect(all.body.gaps).toEqual([]);
  });

  it("a read between membership changes sees each change at once (the object's remembered intervals follow them)", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]); // 1
    const read = async () => {
      const page = await bob.page(conv, "after=0");
      expect(page.status).toBe(200);
      return { seqs: seqs(page.body), gaps: page.body.gaps };
    };
    await alice.sendOk(conv); // 2
    expect(await read()).toEqual({ seqs: [1, 2], gaps: [] });
    await alice.members(conv, { remove: [bob.user] }); // 3
    await alice.sendOk(conv); // 4
    expect(await read()).toEqual({ seqs: [1, 2, 3], gaps: [{ from: 4, to: 4, reason: "not_member" }] });
    await alice.members(conv, { add: [bob.user] }); // 5
    await alice.sendOk(conv); // 6
    expect(await read()).toEqual({ seqs: [1, 2, 3, 5, 6], gaps: [{ from: 4, to: 4, reason: "not_member" }] });
  });
});
