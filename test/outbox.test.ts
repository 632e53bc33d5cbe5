/** The outbox: pokes survive eviction and are coalesced per member. */
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { convStub, Device, flush, outboxSize, pokes, range, sleep, uid } from "./helpers";

describe("outbox", () => {
  it("survives eviction: a poke pending when every object is reset is delivered by the alarm", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const before = await bob.syncEntry(conv);
    expect(before).toMatchObject({ head_seq: 1, unread: 0 });

    const seq = await alice.sendOk(conv, "while you were away");
    await abortAllDurableObjects();
    // The alarm may have fired on its own already; either way the poke must land.
    await runDurableObjectAlarm(convStub(conv));
    await flush(conv);
    expect(await outboxSize(conv)).toBe(0);
    expect(await bob.syncEntry(conv)).toMatchObject({ head_seq: seq, unread: 1, membership: "member" });
    expect(await alice.syncEntry(conv)).toMatchObject({ head_seq: seq, unread: 0 });
  });

  it("the notification owed for an entry is still there after a reset, until the alarm drains it", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    // Freeze the natural drain by sending and resetting at once; then read the outbox before any alarm.
    const seq = await alice.sendOk(conv);
    await abortAllDurableObjects();
    const pending = await outboxSize(conv);
    // One tick owed (not a row per member: sends write O(1) rows) unless the 25 ms alarm beat us, in which case 0.
    expect([0, 1]).toContain(pending);
    await flush(conv);
    expect(await outboxSize(conv)).toBe(0);
    expect((await bob.syncEntry(conv))?.head_seq).toBe(seq);
  });

  it("an incremental sync after the drained poke returns the conversation with the new head", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const cp = (await bob.sync()).body.checkpoint;
    const seq = await alice.sendOk(conv);
    await abortAllDurableObjects();
    await runDurableObjectAlarm(convStub(conv));
    await flush(conv);
    const res = await bob.sync(`since=${encodeURIComponent(cp)}`);
    expect(res.body.conversations).toEqual([expect.objectContaining({ id: conv, head_seq: seq })]);
  });

  it("coalesces: 100 concurrent sends cost each member O(1) pokes, not 100", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([bob.user, carol.user]);
    await flush(conv);
    const before = { alice: await pokes(alice.user), bob: await pokes(bob.user), carol: await pokes(carol.user) };

    const sent = await Promise.all(range(1, 100).map((i) => alice.send(conv, `m${i}`, `c${i}`)));
    expect(sent.every((r) => r.status === 201)).toBe(true);
    await runDurableObjectAlarm(convStub(conv));
    await flush(conv);

    const after = { alice: await pokes(alice.user), bob: await pokes(bob.user), carol: await pokes(carol.user) };
    const delta = { alice: after.alice - before.alice, bob: after.bob - before.bob, carol: after.carol - before.carol };
    console.log("coalescing poke deltas", JSON.stringify(delta));
    for (const d of Object.values(delta)) {
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(3);
    }
    expect(await bob.syncEntry(conv)).toMatchObject({ head_seq: 101, unread: 100 });
    expect(await carol.syncEntry(conv)).toMatchObject({ head_seq: 101, unread: 100 });
  });

  it("a busy conversation pokes each member about once a second, however its busy spell starts", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await flush(conv);
    const before = await pokes(bob.user);
    // 2.5 s of sends, one every 50 ms, with the alarms firing on their own (none run by hand).
    const started = Date.now();
    let last = 0;
    while (Date.now() - started < 2500) {
      last = await alice.sendOk(conv);
      await sleep(50);
    }
    for (let i = 0; i < 100 && (await outboxSize(conv)) > 0; i++) await sleep(50);
    expect(await outboxSize(conv)).toBe(0);
    const spent = Date.now() - started;
    // The spell's first tick after the short window, then one a second (build to build), then the last changes.
    const delta = (await pokes(bob.user)) - before;
    expect(delta).toBeGreaterThanOrEqual(2);
    expect(delta).toBeLessThanOrEqual(Math.ceil(spent / 1000) + 1);
    expect(await bob.syncEntry(conv)).toMatchObject({ head_seq: last, unread: last - 1 });
  });

  it("an empty outbox means every member's index is current", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 3; i++) await alice.sendOk(conv);
    await flush(conv);
    expect(await outboxSize(conv)).toBe(0);
    expect(await runDurableObjectAlarm(convStub(conv))).toBe(false);
    expect((await bob.syncEntry(conv))?.head_seq).toBe(4);
  });
});
