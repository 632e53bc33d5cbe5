/**
 * The cost model, measured in the real object: the SQLite rows one send writes
 * do not depend on the member count (10, 1,000, 100,000). Members beyond the
 * creator are seeded straight into the conversation's tables (as a membership
 * change leaves them), so the measurement needs no 100,000 user objects; the
 * notification alarm is cancelled, because the first test measures the send
 * alone (the notification's own cost is per window: see BENCHMARKS.md); the
 * second measures what one window's poke costs the member it reaches.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { convStub, Device, flush, uid, userStub } from "./helpers";

async function conversationOf(size: number): Promise<{ alice: Device; conv: string }> {
  const alice = await Device.of(uid("alice"));
  const conv = await alice.createConversation([]);
  await runInDurableObject(convStub(conv), (_obj, state) => {
    const sql = state.storage.sql;
    const extra = size - 1;
    sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO members (user_id, active, read_seq, slot) SELECT 'seed' || i, 1, 0, i FROM n`, extra,
    );
    sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO intervals (user_id, from_seq, to_seq) SELECT 'seed' || i, 1, NULL FROM n`, extra,
    );
    sql.exec("UPDATE conversation SET member_count = member_count + ?, next_slot = next_slot + ?", extra, extra);
  });
  return { alice, conv };
}

/** Rows written by `n` sends, measured by the object itself (what the admin API reports). */
async function rowsPerSend(conv: string, sender: string, n: number): Promise<number> {
  return runInDurableObject(convStub(conv), async (obj, state) => {
    const before = await obj.stats();
    for (let i = 0; i < n; i++) {
      const res = await obj.send({ user: sender, device: "phone" }, `c${i}`, JSON.stringify({ text: "x".repeat(180) }));
      if (!res.ok) throw new Error(res.message);
    }
    await state.storage.deleteAlarm();
    const after = await obj.stats();
    if (!before.ok || !after.ok) throw new Error("no stats");
    return (after.value.rows_written_sends_total - before.value.rows_written_sends_total) / (after.value.sends_total - before.value.sends_total);
  });
}

/** Rows a UserDO has written since it started (its Sql counter, as the conversation's stats count a send's). */
function rowsWrittenBy(user: string): Promise<number> {
  return runInDurableObject(userStub(user), (obj) => (obj as unknown as { sql: { written: number } }).sql.written);
}

describe("cost model", () => {
  it("a send writes the same rows at 10, 1,000 and 100,000 members", async () => {
    const sizes = [10, 1000, 100_000];
    const rows: Record<number, number> = {};
    for (const size of sizes) {
      const { alice, conv } = await conversationOf(size);
      await abortAllDurableObjects(); // the object reloads what was seeded, as after any restart
      const summary = await alice.summary(conv);
      expect(summary.body.member_count).toBe(size);
      rows[size] = await rowsPerSend(conv, alice.user, 20);
    }
    console.log(`rows written per send by members: ${sizes.map((s) => `${s.toLocaleString("en")}: ${rows[s]}`).join(", ")}`);
    expect(rows[1000]).toBe(rows[10]);
    expect(rows[100_000]).toBe(rows[10]);
    // The entry and its two index entries (the sender's, the idempotency key's); nothing else.
    expect(rows[10]).toBe(3);
  }, 120_000);

  it("a tick poke writes 3 rows in the member's index, the same in every window", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = uid("bob");
    const conv = await alice.createConversation([bob]);
    await flush(conv);
    const perPoke: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = await rowsWrittenBy(bob);
      await alice.sendOk(conv);
      await flush(conv); // one tick reaches bob's UserDO
      perPoke.push((await rowsWrittenBy(bob)) - before);
    }
    // The conversation's index row (which also counts the poke) and its two index entries (sync order,
    // activity order); no meta row: the sync position is the highest row position.
    expect(perPoke).toEqual([3, 3, 3, 3, 3]);
    const entry = await (await Device.of(bob)).syncEntry(conv);
    expect(entry?.unread).toBe(5);
  });
});
