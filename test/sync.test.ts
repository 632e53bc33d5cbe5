/** GET /v1/sync: checkpoints, paging with has_more, exact unread counts. */
import { describe, expect, it } from "vitest";
import type { SyncConversation } from "../src/protocol/types";
import { Device, expectError, flush, range, sendMany, uid } from "./helpers";

describe("sync checkpoints", () => {
  it("a full sync of a new user is empty with a checkpoint", async () => {
    const nobody = await Device.of(uid("solo"));
    const res = await nobody.sync();
    expect(res.status).toBe(200);
    expect(res.body.conversations).toEqual([]);
    expect(res.body.has_more).toBe(false);
    expect(typeof res.body.checkpoint).toBe("string");
    // Nothing changed since: the same checkpoint returns nothing.
    const again = await nobody.sync(`since=${encodeURIComponent(res.body.checkpoint)}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ checkpoint: res.body.checkpoint, has_more: false, conversations: [] });
  });

  it("25 conversations, limit=10 → pages of 10, 10, 5; each once; then only the changed one", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const convs: string[] = [];
    for (let i = 0; i < 25; i++) convs.push(await alice.createConversation([bob.user]));

    const seen: string[] = [];
    const pages: { n: number; has_more: boolean }[] = [];
    let since: string | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await bob.sync(`limit=10${since ? `&since=${encodeURIComponent(since)}` : ""}`);
      expect(res.status).toBe(200);
      pages.push({ n: res.body.conversations.length, has_more: res.body.has_more });
      seen.push(...res.body.conversations.map((c) => c.id));
      since = res.body.checkpoint;
      if (!res.body.has_more) break;
    }
    expect(pages).toEqual([
      { n: 10, has_more: true },
      { n: 10, has_more: true },
      { n: 5, has_more: false },
    ]);
    expect(seen).toHaveLength(25);
    expect([...seen].sort()).toEqual([...convs].sort());

    // Nothing new: the last checkpoint yields nothing.
    const idle = await bob.sync(`since=${encodeURIComponent(since!)}`);
    expect(idle.body.conversations).toEqual([]);
    expect(idle.body.has_more).toBe(false);

    const target = convs[7]!;
    await alice.sendOk(target, "news");
    await flush(target);
    const delta = await bob.sync(`since=${encodeURIComponent(since!)}`);
    expect(delta.status).toBe(200);
    expect(delta.body.has_more).toBe(false);
    expect(delta.body.conversations).toHaveLength(1);
    expect(delta.body.conversations[0]).toMatchObject({ id: target, head_seq: 2, unread: 1, membership: "member" });
    expect(delta.body.checkpoint).not.toBe(since);
  });

  it("a conversation that changes while a client pages is not lost", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const convs: string[] = [];
    for (let i = 0; i < 4; i++) {
      convs.push(await alice.createConversation([bob.user]));
      await new Promise((r) => setTimeout(r, 3)); // distinct activity times
    }
    // A full sync lists the inbox by activity, newest first (v1.1).
    const p1 = await bob.sync("limit=2");
    expect(p1.body.conversations.map((c) => c.id)).toEqual([convs[3], convs[2]]);
    expect(p1.body.has_more).toBe(true);
    // The oldest conversation (not listed yet) changes before page 2 is fetched.
    await alice.sendOk(convs[0]!);
    await flush(convs[0]!);
    const ids: string[] = [];
    let since = p1.body.checkpoint;
    for (let i = 0; i < 5; i++) {
      const res = await bob.sync(`limit=2&since=${encodeURIComponent(since)}`);
      ids.push(...res.body.conversations.map((c) => c.id));
      since = res.body.checkpoint;
      if (!res.body.has_more) break;
    }
    // The rest of the full sync, then what changed during it: nothing is lost.
    const next = await bob.sync(`limit=2&since=${encodeURIComponent(since)}`);
    ids.push(...next.body.conversations.map((c) => c.id));
    expect(ids.slice(-1)).toEqual([convs[0]]);
    expect(new Set(ids)).toEqual(new Set([convs[1], convs[0]]));
    expect(next.body.conversations[0]).toMatchObject({ id: convs[0], head_seq: 2, unread: 1 });
  });

  it("the same sync request twice returns the same body", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    for (let i = 0; i < 3; i++) await alice.createConversation([bob.user]);
    const a = await bob.sync("limit=2");
    const b = await bob.sync("limit=2");
    expect(b.body).toEqual(a.body);
    const c = await bob.sync(`limit=2&since=${encodeURIComponent(a.body.checkpoint)}`);
    const d = await bob.sync(`limit=2&since=${encodeURIComponent(a.body.checkpoint)}`);
    expect(d.body).toEqual(c.body);
    expect(c.body.conversations).toHaveLength(1);
  });

  it("summary fields: epoch, head, floor, last_activity_at match the conversation", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const sent = await alice.send(conv, "x");
    await flush(conv);
    const summary = (await alice.summary(conv)).body;
    const entry = await bob.syncEntry(conv);
    expect(entry).toEqual<SyncConversation>({
      id: conv,
      epoch: summary.epoch,
      head_seq: 2,
      floor_seq: 0,
      received: 0,
      read: 0,
      unread: 1,
      last_activity_at: sent.body.created_at,
      membership: "member",
    });
  });

  it("sync limit bounds: 1 and 500 accepted; 0, 501 and non-numbers refused", async () => {
    const bob = await Device.of(uid("bob"));
    const alice = await Device.of(uid("alice"));
    await alice.createConversation([bob.user]);
    await alice.createConversation([bob.user]);
    const one = await bob.sync("limit=1");
    expect(one.body.conversations).toHaveLength(1);
    expect(one.body.has_more).toBe(true);
    const exact = await bob.sync("limit=2");
    expect(exact.body.conversations).toHaveLength(2);
    expect(exact.body.has_more).toBe(false);
    const max = await bob.sync("limit=500");
    expect(max.body.conversations).toHaveLength(2);
    expect(max.body.has_more).toBe(false);
    for (const bad of ["0", "501", "abc", "-1", "1.5", "1e2"]) expectError(await bob.sync(`limit=${bad}`), 400, "invalid_request");
  });
});

describe("unread counts", () => {
  it("counts others' messages after read within membership; not own, not member entries", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const carol = await Device.of(uid("carol"));
    const dave = await Device.of(uid("dave"));
    const conv = await alice.createConversation([bob.user, carol.user]); // 1 (member)
    await sendMany(alice, conv, 3); // 2, 3, 4
    await bob.sendOk(conv); // 5
    await alice.members(conv, { add: [dave.user] }); // 6 (member)
    await alice.sendOk(conv); // 7
    await flush(conv);

    expect((await alice.syncEntry(conv))?.unread).toBe(1); // bob's 5
    expect((await bob.syncEntry(conv))?.unread).toBe(4); // 2, 3, 4, 7
    expect((await carol.syncEntry(conv))?.unread).toBe(5); // 2, 3, 4, 5, 7
    expect((await dave.syncEntry(conv))?.unread).toBe(1); // 7

    const read = await bob.cursors({ read: { [conv]: 3 } });
    expect(read.status).toBe(200);
    expect(read.body.read).toEqual({ [conv]: 3 });
    expect((await bob.syncEntry(conv))).toMatchObject({ read: 3, unread: 2 }); // 4, 7

    await alice.members(conv, { remove: [bob.user] }); // 8
    await alice.sendOk(conv); // 9: outside bob's membership
    await flush(conv);
    expect((await bob.syncEntry(conv))).toMatchObject({ membership: "left", head_seq: 8, unread: 2 });

    await alice.members(conv, { add: [bob.user] }); // 10
    await alice.sendOk(conv); // 11
    await flush(conv);
    expect((await bob.syncEntry(conv))).toMatchObject({ membership: "member", head_seq: 11, unread: 3 }); // 4, 7, 11

    await bob.cursors({ read: { [conv]: 11 } });
    expect((await bob.syncEntry(conv))).toMatchObject({ read: 11, unread: 0 });
    await flush(conv);
    expect((await bob.syncEntry(conv))).toMatchObject({ read: 11, unread: 0 });
  });

  it("reading past the leave seq while removed clamps to the visible head", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]); // 1
    await alice.sendOk(conv); // 2
    await alice.members(conv, { remove: [bob.user] }); // 3
    await alice.sendOk(conv); // 4
    const res = await bob.cursors({ read: { [conv]: 4 }, received: { [conv]: 4 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ received: { [conv]: 3 }, read: { [conv]: 3 } });
    expect(await bob.syncEntry(conv)).toMatchObject({ read: 3, unread: 0, received: 3, head_seq: 3 });
  });

  it("unread is exact under a burst of concurrent sends", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await Promise.all(range(1, 30).map(() => alice.sendOk(conv)));
    await Promise.all(range(1, 5).map(() => bob.sendOk(conv)));
    await flush(conv);
    expect(await bob.syncEntry(conv)).toMatchObject({ head_seq: 36, unread: 30 });
    expect(await alice.syncEntry(conv)).toMatchObject({ head_seq: 36, unread: 5 });
  });
});
