/**
 * v1.1 delivery and read receipts, derived from the cursors the conversation
 * mirrors: right after acks, reads, a leave, a device deletion and retention;
 * members only; no row per message.
 */
import { describe, expect, it } from "vitest";
import type { ReceiptCounts } from "../src/protocol/types";
import { convStub, Device, expectError, flush, sendMany, uid } from "./helpers";

async function receipt(dev: Device, conv: string, seq: number): Promise<ReceiptCounts> {
  const res = await dev.get<ReceiptCounts>(`/v1/conversations/${conv}/receipts?seq=${seq}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

describe("receipts", () => {
  it("count members other than the sender whose devices received / who read", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bobPhone.user, "laptop");
    const carol = await Device.of(uid("carol"));
    const dave = await Device.of(uid("dave"));
    const conv = await alice.createConversation([bobPhone.user, carol.user, dave.user]);
    const seq = await alice.sendOk(conv, "hello"); // 2
    expect(await receipt(alice, conv, seq)).toEqual({ conversation_id: conv, seq, members: 3, delivered: { users: 0, devices: 0 }, read: { users: 0 } });

    await bobPhone.cursors({ received: { [conv]: seq } });
    await bobLaptop.cursors({ received: { [conv]: seq } });
    await carol.cursors({ received: { [conv]: seq }, read: { [conv]: seq } });
    // The sender's own cursors never count.
    await alice.cursors({ received: { [conv]: seq }, read: { [conv]: seq } });
    expect(await receipt(alice, conv, seq)).toMatchObject({ members: 3, delivered: { users: 2, devices: 3 }, read: { users: 1 } });
    // A cursor past seq counts for seq too; one below it does not.
    const later = await alice.sendOk(conv); // 3
    expect(await receipt(alice, conv, later)).toMatchObject({ delivered: { users: 0, devices: 0 }, read: { users: 0 } });
    await dave.cursors({ received: { [conv]: later } });
    expect(await receipt(alice, conv, seq)).toMatchObject({ delivered: { users: 3, devices: 4 } });
    expect(await receipt(alice, conv, later)).toMatchObject({ delivered: { users: 1, devices: 1 } });
  });

  it("a leave stops counting the member; a device deletion stops counting the device", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bobPhone.user, "laptop");
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([bobPhone.user, carol.user]);
    const seq = await alice.sendOk(conv);
    await bobPhone.cursors({ received: { [conv]: seq }, read: { [conv]: seq } });
    await bobLaptop.cursors({ received: { [conv]: seq } });
    await carol.cursors({ received: { [conv]: seq }, read: { [conv]: seq } });
    expect(await receipt(alice, conv, seq)).toMatchObject({ members: 2, delivered: { users: 2, devices: 3 }, read: { users: 2 } });

    await alice.members(conv, { remove: [carol.user] });
    expect(await receipt(alice, conv, seq)).toMatchObject({ members: 1, delivered: { users: 1, devices: 2 }, read: { users: 1 } });

    expect((await bobPhone.delete("/v1/devices/laptop")).status).toBe(204);
    // The UserDO tells the conversation (retried until confirmed): wait for it.
    let after: ReceiptCounts | undefined;
    for (let i = 0; i < 50; i++) {
      after = await receipt(alice, conv, seq);
      if (after.delivered.devices === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(after).toMatchObject({ members: 1, delivered: { users: 1, devices: 1 }, read: { users: 1 } });

    // A rejoin counts carol again with the cursors she had.
    await alice.members(conv, { add: [carol.user] });
    expect(await receipt(alice, conv, seq)).toMatchObject({ members: 2, delivered: { users: 2, devices: 2 }, read: { users: 2 } });
  });

  it("a late forget of a device's old life replaces that row but never lowers one its new life raised", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const [, second, third] = await sendMany(alice, conv, 3);
    await bob.cursors({ received: { [conv]: third! } }); // the old life's row
    const deletedAt = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    // The old life's row goes: the kept cursor replaces it, lower as it is.
    expect(await convStub(conv).forgetDevice(bob.user, bob.device, deletedAt, second!)).toEqual({ ok: true, value: null });
    expect(await receipt(alice, conv, third!)).toMatchObject({ delivered: { devices: 0 } });
    expect(await receipt(alice, conv, second!)).toMatchObject({ delivered: { devices: 1 } });
    // The new life acked further before a retried forget (with the cursor it read earlier) arrived: kept as raised.
    await bob.cursors({ received: { [conv]: third! } });
    await convStub(conv).forgetDevice(bob.user, bob.device, deletedAt, second!);
    expect(await receipt(alice, conv, third!)).toMatchObject({ delivered: { devices: 1 } });
  });

  it("survives retention: the entry is gone, its receipt is not", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user], { retention: { max_messages: 1 } });
    const seq = await alice.sendOk(conv, "soon gone");
    await bob.cursors({ received: { [conv]: seq } });
    await sendMany(alice, conv, 3);
    await flush(conv);
    expect((await alice.summary(conv)).body.floor_seq).toBeGreaterThanOrEqual(seq);
    expect(await receipt(alice, conv, seq)).toMatchObject({ seq, members: 1, delivered: { users: 1, devices: 1 }, read: { users: 0 } });
  });

  it("strangers get 403; seqs outside your membership get 403; bad seqs get 400", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const eve = await Device.of(uid("eve"));
    const conv = await alice.createConversation([]);
    await alice.sendOk(conv); // 2
    await alice.members(conv, { add: [bob.user] }); // 3
    expectError(await eve.get(`/v1/conversations/${conv}/receipts?seq=2`), 403, "forbidden");
    expectError(await bob.get(`/v1/conversations/${conv}/receipts?seq=2`), 403, "forbidden");
    expect((await bob.get(`/v1/conversations/${conv}/receipts?seq=3`)).status).toBe(200);
    expectError(await alice.get(`/v1/conversations/${conv}/receipts?seq=99`), 400, "invalid_request");
    expectError(await alice.get(`/v1/conversations/${conv}/receipts?seq=0`), 400, "invalid_request");
    expectError(await alice.get(`/v1/conversations/${conv}/receipts`), 400, "invalid_request");
    // A former member may still ask within their interval.
    await alice.members(conv, { remove: [bob.user] }); // 4
    expect((await bob.get(`/v1/conversations/${conv}/receipts?seq=3`)).status).toBe(200);
    expectError(await bob.get(`/v1/conversations/${conv}/receipts?seq=2`), 403, "forbidden");
  });
});
