/**
 * v1.1 "The inbox in one round trip": GET /v1/sync?timeline_limit=K carries each
 * conversation's newest ≤ K visible entries after this device's received cursor,
 * with gaps, `limited` and `next_before`; a full sync lists by activity; reading
 * a timeline moves no cursor.
 */
import { describe, expect, it } from "vitest";
import type { Message, SyncConversation, SyncResponse, SyncTimeline } from "../src/protocol/types";
import { Device, flush, range, sendMany, uid } from "./helpers";

type Row = SyncConversation & { timeline: SyncTimeline };

async function timelineOf(dev: Device, conv: string, k: number): Promise<Row> {
  const res = await dev.get<SyncResponse>(`/v1/sync?limit=500&timeline_limit=${k}`);
  expect(res.status).toBe(200);
  const row = res.body.conversations.find((c) => c.id === conv) as Row | undefined;
  if (!row) throw new Error(`${conv} not in sync`);
  return row;
}

const seqs = (t: SyncTimeline) => t.messages.map((m: Message) => m.seq);

describe("sync timelines", () => {
  it("at, behind and far behind the cursor: the newest entries after received, ascending", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await sendMany(alice, conv, 30); // seqs 2..31
    await flush(conv);

    const far = await timelineOf(bob, conv, 5);
    expect(seqs(far.timeline)).toEqual([27, 28, 29, 30, 31]);
    expect(far.timeline).toMatchObject({ limited: true, next_before: 27, gaps: [] });
    expect(far.timeline.messages[0]).toMatchObject({ seq: 27, type: "message", sender: { user: alice.user, device: "phone" } });

    expect((await bob.cursors({ received: { [conv]: 28 } })).status).toBe(200);
    const behind = await timelineOf(bob, conv, 5);
    expect(seqs(behind.timeline)).toEqual([29, 30, 31]);
    expect(behind.timeline).toMatchObject({ limited: false, next_before: null });

    expect((await bob.cursors({ received: { [conv]: 31 } })).status).toBe(200);
    const at = await timelineOf(bob, conv, 5);
    expect(at.timeline).toEqual({ messages: [], gaps: [], limited: false, next_before: null });
  });

  it("limited + next_before: paging on with ?before= fills the hole exactly", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await sendMany(alice, conv, 12); // head 13
    await flush(conv);
    const row = await timelineOf(bob, conv, 4);
    expect(seqs(row.timeline)).toEqual([10, 11, 12, 13]);
    expect(row.timeline.next_before).toBe(10);
    const rest = await bob.page(conv, `before=${row.timeline.next_before}&limit=100`);
    expect(rest.body.messages.map((m) => m.seq)).toEqual(range(1, 9));
    expect(rest.body.has_more).toBe(false);
  });

  it("a former member's timeline ends at their leave", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await sendMany(alice, conv, 3); // 2..4
    const left = await alice.members(conv, { remove: [bob.user] }); // 5
    await sendMany(alice, conv, 3); // 6..8
    await flush(conv);
    const row = await timelineOf(bob, conv, 50);
    expect(row).toMatchObject({ membership: "left", head_seq: left.head_seq });
    expect(seqs(row.timeline)).toEqual([1, 2, 3, 4, 5]);
    expect(row.timeline).toMatchObject({ limited: false, next_before: null, gaps: [] });
  });

  it("a rejoined member's timeline reports the seqs outside membership as a gap", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.members(conv, { remove: [bob.user] }); // 2
    await sendMany(alice, conv, 2); // 3, 4
    await alice.members(conv, { add: [bob.user] }); // 5
    await alice.sendOk(conv); // 6
    await flush(conv);
    const row = await timelineOf(bob, conv, 50);
    expect(seqs(row.timeline)).toEqual([1, 2, 5, 6]);
    expect(row.timeline.gaps).toEqual([{ from: 3, to: 4, reason: "not_member" }]);
    expect(row.unread).toBe(1);
  });

  it("a retention gap inside a timeline", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user], { retention: { max_messages: 3 } });
    await sendMany(alice, conv, 6); // head 7, floor 4
    await flush(conv);
    const row = await timelineOf(bob, conv, 50);
    expect(row.floor_seq).toBe(4);
    expect(seqs(row.timeline)).toEqual([5, 6, 7]);
    expect(row.timeline).toMatchObject({ gaps: [{ from: 1, to: 4, reason: "retention" }], limited: false, next_before: null });
  });

  it("reading a timeline moves no cursor", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await sendMany(alice, conv, 5);
    await flush(conv);
    const first = await timelineOf(bob, conv, 10);
    const again = await timelineOf(bob, conv, 10);
    expect(again).toMatchObject({ received: 0, read: 0, unread: 5 });
    expect(seqs(again.timeline)).toEqual(seqs(first.timeline));
    const plain = await bob.syncEntry(conv);
    expect(plain).toMatchObject({ received: 0, read: 0, unread: 5 });
    expect(plain).not.toHaveProperty("timeline");
  });

  it("timeline_limit is 0..50; 0 means summaries only", async () => {
    const alice = await Device.of(uid("alice"));
    expect((await alice.sync("timeline_limit=51")).status).toBe(400);
    expect((await alice.sync("timeline_limit=-1")).status).toBe(400);
    const conv = await alice.createConversation([]);
    const none = await alice.sync("timeline_limit=0");
    expect(none.status).toBe(200);
    expect(none.body.conversations.find((c) => c.id === conv)).not.toHaveProperty("timeline");
  });
});

describe("full sync by activity", () => {
  it("lists conversations newest activity first", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const convs: string[] = [];
    for (let i = 0; i < 4; i++) convs.push(await alice.createConversation([bob.user]));
    // Activity order: 2, 0, 3, 1 (newest last).
    for (const i of [1, 3, 0, 2]) {
      await new Promise((r) => setTimeout(r, 5));
      await alice.sendOk(convs[i]!);
      await flush(convs[i]!);
    }
    const res = await bob.sync("limit=10");
    expect(res.body.conversations.map((c) => c.id)).toEqual([2, 0, 3, 1].map((i) => convs[i]));
  });

  it("a full sync over pages while messages arrive, then an incremental sync, misses nothing", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const convs: string[] = [];
    for (let i = 0; i < 9; i++) convs.push(await alice.createConversation([bob.user]));
    const heads = new Map<string, number>();
    let since: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: { body: SyncResponse } = await bob.sync(`limit=3&timeline_limit=2${since ? `&since=${encodeURIComponent(since)}` : ""}`);
      for (const c of res.body.conversations) heads.set(c.id, c.head_seq);
      since = res.body.checkpoint;
      // Between pages, new messages land in conversations already listed and not yet listed.
      const target = convs[(page * 4) % convs.length]!;
      await alice.sendOk(target);
      await flush(target);
      if (!res.body.has_more) break;
    }
    // The next incremental sync brings everything that changed during the full sync.
    for (let i = 0; i < 10; i++) {
      const res: { body: SyncResponse } = await bob.sync(`limit=3&since=${encodeURIComponent(since!)}`);
      for (const c of res.body.conversations) heads.set(c.id, c.head_seq);
      since = res.body.checkpoint;
      if (!res.body.has_more) break;
    }
    for (const conv of convs) {
      const truth = (await alice.summary(conv)).body.head_seq;
      expect(heads.get(conv), conv).toBe(truth);
    }
  });
});
