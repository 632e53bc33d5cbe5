/**
 * Receipts for the user's own messages (v1.1): figures from
 * GET /v1/conversations/:id/receipts and `receipt` frames, kept as lower
 * bounds (cursors only move forward, so an older own message has got at
 * least as far as a newer one).
 */
import { describe, expect, it } from "vitest";
import { formatReceipt, MemoryStorage, type ReceiptInfo } from "../src/client";
import { Receipts } from "../src/client/receipts";
import { client, cuttable, until } from "./client-fixtures";
import { Device, flush, sendMany, uid } from "./helpers";

const info = (seq: number, members: number, users: number, devices: number, read: number): ReceiptInfo => ({
  conversationId: "c",
  seq,
  members,
  delivered: { users, devices },
  read: { users: read },
});

describe("receipt figures (pure)", () => {
  it("an own message's figures are raised by those of newer own messages, never by older ones", () => {
    const r = new Receipts();
    r.record(info(10, 4, 2, 3, 1));
    expect(r.lowerBound("c", 10)).toEqual(info(10, 4, 2, 3, 1));
    expect(r.lowerBound("c", 4)).toEqual(info(4, 4, 2, 3, 1));
    expect(r.lowerBound("c", 11)).toBeUndefined();
    expect(r.lowerBound("other", 1)).toBeUndefined();
    // Older and lower: adds nothing.
    r.record(info(5, 4, 1, 1, 0));
    expect(r.lowerBound("c", 5)).toEqual(info(5, 4, 2, 3, 1));
    // Older but further in one figure: raises seqs up to 7 only.
    r.record(info(7, 4, 3, 3, 0));
    expect(r.lowerBound("c", 6)).toEqual(info(6, 4, 3, 3, 1));
    expect(r.lowerBound("c", 8)).toEqual(info(8, 4, 2, 3, 1));
    // Members now, not then: counts from before someone left are capped.
    r.record(info(12, 2, 0, 0, 0));
    expect(r.lowerBound("c", 6)).toEqual(info(6, 2, 2, 3, 1));
    r.forget("c");
    expect(r.lowerBound("c", 6)).toBeUndefined();
  });

  it("formats one line per message", () => {
    expect(formatReceipt(info(1, 4, 3, 5, 2))).toBe("delivered to 3 of 4 people, read by 2");
    expect(formatReceipt(info(1, 1, 0, 0, 0))).toBe("delivered to 0 of 1 person");
    expect(formatReceipt(info(1, 0, 0, 0, 0))).toBe("sent");
  });
});

describe("client receipts", () => {
  // Waits for the server's GET /v1/conversations/:id/receipts (v1.1).
  it("receipts() reports how far an own message got, emits `receipt`, and raises earlier own messages", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"), "laptop");
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([bob.user, carol.user]);
    const [first, second, third] = await sendMany(alice, conv, 3);
    await flush(conv);
    expect((await bob.cursors({ received: { [conv]: third! }, read: { [conv]: second! } })).status).toBe(200);
    const c = client(alice, new MemoryStorage());
    const events: ReceiptInfo[] = [];
    c.on("receipt", (r) => events.push(r));

    expect(await c.receipts(conv, third!)).toEqual({ conversationId: conv, seq: third, members: 2, delivered: { users: 1, devices: 1 }, read: { users: 0 } });
    expect(await c.receipts(conv, second!)).toEqual({ conversationId: conv, seq: second, members: 2, delivered: { users: 1, devices: 1 }, read: { users: 1 } });
    expect(events.map((e) => e.seq)).toEqual([third, second]);
    const known = c.receiptFor(conv, first!);
    expect(known).toEqual({ conversationId: conv, seq: first, members: 2, delivered: { users: 1, devices: 1 }, read: { users: 1 } });
    expect(formatReceipt(known!)).toBe("delivered to 1 of 2 people, read by 1");
  });

  // Waits for the server's `receipt` frames on live sockets (v1.1).
  it("a `receipt` frame on the sender's live socket reports a delivery and a read", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"), "laptop");
    const conv = await alice.createConversation([bob.user]);
    const { factory } = cuttable();
    const c = client(alice, new MemoryStorage(), { socketFactory: factory });
    const events: ReceiptInfo[] = [];
    c.on("receipt", (r) => events.push(r));
    let seq = 0;
    c.on("sent", (s) => (seq = s.seq));
    let live = false;
    c.on("socket", (s) => (live = s.open));
    c.show(conv);
    await c.start();
    await until(() => live);
    await c.send(conv, { text: "did you get it?" });
    await until(() => seq > 0);
    expect((await bob.cursors({ received: { [conv]: seq }, read: { [conv]: seq } })).status).toBe(200);
    await until(() => events.some((e) => e.seq === seq && e.read.users === 1), 5000);
    c.stop();
    expect(c.receiptFor(conv, seq)).toMatchObject({ members: 1, delivered: { users: 1 }, read: { users: 1 } });
  });
});
