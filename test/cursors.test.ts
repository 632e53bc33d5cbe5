/** POST /v1/cursors: monotonic, clamped, received per device, read per user. */
import { describe, expect, it } from "vitest";
import type { CursorsResponse } from "../src/protocol/types";
import { Device, expectError, flush, sendMany, uid } from "./helpers";

async function setup(messages = 5) {
  const alice = await Device.of(uid("alice"));
  const bobUser = uid("bob");
  const phone = await Device.of(bobUser, "phone");
  const tablet = await Device.of(bobUser, "tablet");
  const conv = await alice.createConversation([bobUser]);
  await sendMany(alice, conv, messages); // seqs 2..messages+1
  await flush(conv);
  return { alice, phone, tablet, conv, head: messages + 1 };
}

describe("cursor monotonicity", () => {
  it("a lower received/read is ignored, not an error; the response shows the effective values", async () => {
    const { phone, conv } = await setup();
    const up = await phone.cursors({ received: { [conv]: 5 }, read: { [conv]: 4 } });
    expect(up.status).toBe(200);
    expect(up.body).toEqual<CursorsResponse>({ received: { [conv]: 5 }, read: { [conv]: 4 } });
    const down = await phone.cursors({ received: { [conv]: 2 }, read: { [conv]: 1 } });
    expect(down.status).toBe(200);
    expect(down.body).toEqual<CursorsResponse>({ received: { [conv]: 5 }, read: { [conv]: 4 } });
    const zero = await phone.cursors({ received: { [conv]: 0 }, read: { [conv]: 0 } });
    expect(zero.body).toEqual<CursorsResponse>({ received: { [conv]: 5 }, read: { [conv]: 4 } });
    expect(await phone.syncEntry(conv)).toMatchObject({ received: 5, read: 4 });
  });

  it("values beyond the head are clamped to the head", async () => {
    const { phone, conv, head } = await setup(3);
    const res = await phone.cursors({ received: { [conv]: 1000 }, read: { [conv]: 999_999 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual<CursorsResponse>({ received: { [conv]: head }, read: { [conv]: head } });
    expect(await phone.syncEntry(conv)).toMatchObject({ head_seq: head, received: head, read: head, unread: 0 });
  });

  it("a clamped cursor can still advance once the head moves on", async () => {
    const { alice, phone, conv, head } = await setup(2);
    await phone.cursors({ received: { [conv]: 100 } });
    await alice.sendOk(conv);
    const res = await phone.cursors({ received: { [conv]: 100 } });
    expect(res.body.received).toEqual({ [conv]: head + 1 });
  });

  it("only named cursors are answered: received-only leaves read out, and vice versa", async () => {
    const { phone, conv } = await setup(2);
    const r = await phone.cursors({ received: { [conv]: 2 } });
    expect(r.body).toEqual<CursorsResponse>({ received: { [conv]: 2 }, read: {} });
    const w = await phone.cursors({ read: { [conv]: 1 } });
    expect(w.body).toEqual<CursorsResponse>({ received: {}, read: { [conv]: 1 } });
    const empty = await phone.cursors({});
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual<CursorsResponse>({ received: {}, read: {} });
  });
});

describe("cursor scope", () => {
  it("received is per device; read is per user and shared by the user's devices", async () => {
    const { phone, tablet, conv } = await setup(5);
    await phone.cursors({ received: { [conv]: 4 }, read: { [conv]: 4 } });
    expect(await tablet.syncEntry(conv)).toMatchObject({ received: 0, read: 4, unread: 2 });
    expect(await phone.syncEntry(conv)).toMatchObject({ received: 4, read: 4, unread: 2 });

    // The tablet's lower read is ignored (per user); its own received moves independently.
    const t = await tablet.cursors({ received: { [conv]: 2 }, read: { [conv]: 2 } });
    expect(t.body).toEqual<CursorsResponse>({ received: { [conv]: 2 }, read: { [conv]: 4 } });
    expect(await phone.syncEntry(conv)).toMatchObject({ received: 4, read: 4 });
    expect(await tablet.syncEntry(conv)).toMatchObject({ received: 2, read: 4 });

    // Read moved by the tablet is seen by the phone.
    await tablet.cursors({ read: { [conv]: 6 } });
    expect(await phone.syncEntry(conv)).toMatchObject({ received: 4, read: 6, unread: 0 });
  });

  it("a read moved by one device shows up in the other device's incremental sync", async () => {
    const { phone, tablet, conv } = await setup(3);
    const cp = (await phone.sync()).body.checkpoint;
    await tablet.cursors({ read: { [conv]: 3 } });
    const res = await phone.sync(`since=${encodeURIComponent(cp)}`);
    expect(res.body.conversations).toEqual([expect.objectContaining({ id: conv, read: 3, unread: 1 })]);
    // A received cursor is the device's own business: it does not make the conversation "changed" again.
    const cp2 = res.body.checkpoint;
    await tablet.cursors({ received: { [conv]: 4 } });
    expect((await phone.sync(`since=${encodeURIComponent(cp2)}`)).body.conversations).toEqual([]);
  });

  it("another user's cursors are untouched by mine", async () => {
    const { alice, phone, conv } = await setup(3);
    await phone.cursors({ received: { [conv]: 4 }, read: { [conv]: 4 } });
    expect(await alice.syncEntry(conv)).toMatchObject({ received: 0, read: 0 });
  });

  it("several conversations in one request are all applied", async () => {
    const { alice, phone, conv } = await setup(3);
    const conv2 = await alice.createConversation([phone.user]);
    await alice.sendOk(conv2);
    const res = await phone.cursors({ received: { [conv]: 3, [conv2]: 2 }, read: { [conv]: 2, [conv2]: 2 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual<CursorsResponse>({ received: { [conv]: 3, [conv2]: 2 }, read: { [conv]: 2, [conv2]: 2 } });
  });

  it("one forbidden or unknown conversation in a request changes nothing at all", async () => {
    const { alice, phone, conv } = await setup(3);
    const foreign = await alice.createConversation([]);
    const before = await phone.syncEntry(conv);
    expectError(await phone.cursors({ received: { [conv]: 4 }, read: { [conv]: 4, [foreign]: 1 } }), 403, "forbidden");
    expectError(await phone.cursors({ received: { [conv]: 4, [uid("nope")]: 1 }, read: { [conv]: 4 } }), 404, "not_found");
    expect(await phone.syncEntry(conv)).toEqual(before);
    expect(before).toMatchObject({ received: 0, read: 0 });
  });

  it("a single unknown conversation is 404", async () => {
    const bob = await Device.of(uid("bob"));
    expectError(await bob.cursors({ read: { [uid("nope")]: 1 } }), 404, "not_found");
  });
});

describe("cursor maps keyed by any valid id", () => {
  // Ids are user-chosen; names of Object.prototype members are valid ids and must not be special.
  for (const id of ["constructor", "__proto__", "toString"]) {
    it(`a conversation named "${id}" takes read and received cursors like any other`, async () => {
      const alice = await Device.of(uid("alice"));
      expect((await alice.post("/v1/conversations", { id, members: [] })).status).toBe(201);
      await alice.sendOk(id);
      const read = await alice.cursors({ read: { [id]: 2 } });
      expect(read.status).toBe(200);
      expect(read.body).toEqual<CursorsResponse>({ received: {}, read: { [id]: 2 } });
      const received = await alice.cursors({ received: { [id]: 2 } });
      expect(received.status).toBe(200);
      expect(received.body).toEqual<CursorsResponse>({ received: { [id]: 2 }, read: {} });
      expect(await alice.syncEntry(id)).toMatchObject({ read: 2, received: 2 });
    });
  }
});
