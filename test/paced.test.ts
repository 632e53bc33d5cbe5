/**
 * Paced conversations (src/conversation/notify.ts `isPaced`): a conversation
 * whose tick round would take longer than a second at NOTIFY_POKES_PER_SECOND
 * spreads the round over time, and a member's sync asks it for the exact view
 * instead of waiting (src/user/pull.ts). Runs under vitest.paced.config.ts:
 * NOTIFY_FANOUT=2 and 4 pokes per second, so 6 members are paced (1.5 s a
 * round) and each 2-member leaf pokes its second member ≥ 0.75 s after the first.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { nodeName } from "../src/fanout/tree";
import { forEachPaced } from "../src/platform/concurrency";
import { Device, expectError, flush, outboxSize, pokes, sleep, testEnv, uid, userStub } from "./helpers";

/** The head a member's UserDO index holds for `conv`, read in the object (a sync would pull a fresh view). */
function indexedHead(user: string, conv: string): Promise<number | null> {
  return runInDurableObject(userStub(user), (_obj, state) => {
    const row = state.storage.sql.exec<{ head_seq: number }>("SELECT head_seq FROM conversations WHERE conversation_id = ?", conv).toArray()[0];
    return row?.head_seq ?? null;
  });
}

describe("paced tick rounds", () => {
  it("forEachPaced starts item i no sooner than i / perSecond seconds in", async () => {
    const t0 = Date.now();
    const started: number[] = [];
    await forEachPaced([0, 1, 2, 3], 20, 4, async () => {
      started.push(Date.now() - t0);
    });
    expect(started).toHaveLength(4);
    for (const [i, at] of [...started].sort((a, b) => a - b).entries()) expect(at).toBeGreaterThanOrEqual(i * 50 - 2);
  });

  it("a send reaches every member of a paced conversation: syncs see it at once, ticks over the round", async () => {
    const owner = await Device.of(uid("owner"));
    const members = await Promise.all(Array.from({ length: 5 }, () => Device.of(uid("m"))));
    const conv = await owner.createConversation(members.map((m) => m.user));
    await flush(conv);
    const pokesBefore = await Promise.all(members.map((m) => pokes(m.user)));

    const t0 = Date.now();
    const seq = await owner.sendOk(conv, "to all");
    // Right away, before the round can have reached the second member of each leaf: sync pulls the exact view.
    for (const m of members) expect(await m.syncEntry(conv)).toMatchObject({ id: conv, head_seq: seq, unread: 1 });
    const syncedWithin = Date.now() - t0;

    // The round itself is spread: it finishes no sooner than one leaf gap (0.75 s), and then every member was poked.
    while ((await outboxSize(conv)) > 0) await sleep(50);
    const roundMs = Date.now() - t0;
    expect(roundMs).toBeGreaterThanOrEqual(700);
    const pokesAfter = await Promise.all(members.map((m) => pokes(m.user)));
    for (const [i, n] of pokesAfter.entries()) expect(n).toBeGreaterThan(pokesBefore[i]!);
    console.log(`paced: 5 syncs exact ${syncedWithin} ms after the send; the tick round took ${roundMs} ms`);
  });

  it("a member that reads stays exact across pulls and ticks", async () => {
    const owner = await Device.of(uid("owner"));
    const members = await Promise.all(Array.from({ length: 5 }, () => Device.of(uid("m"))));
    const conv = await owner.createConversation(members.map((m) => m.user));
    const reader = members[4]!;
    const seqs = [await owner.sendOk(conv, "a"), await owner.sendOk(conv, "b"), await reader.sendOk(conv, "mine"), await owner.sendOk(conv, "c")];
    expect(await reader.syncEntry(conv)).toMatchObject({ head_seq: seqs[3], unread: 3 });
    expect((await reader.cursors({ received: { [conv]: seqs[1]! }, read: { [conv]: seqs[1]! } })).status).toBe(200);
    expect(await reader.syncEntry(conv)).toMatchObject({ head_seq: seqs[3], read: seqs[1], unread: 1 });
    while ((await outboxSize(conv)) > 0) await sleep(50);
    await sleep(1100); // past the pull interval: the next sync asks again
    expect(await reader.syncEntry(conv)).toMatchObject({ head_seq: seqs[3], read: seqs[1], unread: 1 });
  });

  it("a paced round whose leaves die mid-round still reaches every member's index (no sync needed)", async () => {
    const owner = await Device.of(uid("owner"));
    const members = await Promise.all(Array.from({ length: 5 }, () => Device.of(uid("m"))));
    const conv = await owner.createConversation(members.map((m) => m.user));
    await flush(conv);
    const seq = await owner.sendOk(conv, "interrupted");
    // The round is under way (each leaf's second poke comes ≥ 0.75 s in): every leaf of the tree dies now.
    await sleep(300);
    for (let index = 0; index < 3; index++) {
      const leaf = testEnv.NOTIFY.get(testEnv.NOTIFY.idFromName(nodeName(conv, 2, { level: 0, index })));
      await runInDurableObject(leaf, (_obj, state) => state.abort("test: leaf evicted mid-round")).catch(() => undefined);
    }
    // The conversation retries what the round did not confirm (failed leaves become exact views) until its outbox is empty.
    for (let i = 0; i < 200 && (await outboxSize(conv)) > 0; i++) await sleep(50);
    expect(await outboxSize(conv)).toBe(0);
    for (const m of members) expect(await indexedHead(m.user, conv)).toBe(seq);
  });

  it("a sync with a malformed checkpoint is refused before it pulls anything", async () => {
    const owner = await Device.of(uid("owner"));
    const members = await Promise.all(Array.from({ length: 5 }, () => Device.of(uid("m"))));
    const conv = await owner.createConversation(members.map((m) => m.user));
    await flush(conv);
    const last = members[4]!; // the second member of its leaf: the round reaches it ≥ 0.75 s after the send
    const before = await indexedHead(last.user, conv);
    const seq = await owner.sendOk(conv, "not yet");
    expectError(await last.sync("since=not-a-checkpoint"), 400, "invalid_request");
    expect(await indexedHead(last.user, conv)).toBe(before);
    expect(await last.syncEntry(conv)).toMatchObject({ head_seq: seq });
  });
});
