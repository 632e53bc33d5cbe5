/** The per-device queue (POST/GET /v1/to-device, ack) and device management. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ToDevicePage } from "../src/protocol/types";
import { Device, expectError, flush, range, uid, userStub } from "./helpers";

type Queued = { queued: number };

function sendTo(from: Device, to: { user: string; device?: string }, body: unknown, clientMsgId = uid("td")) {
  return from.post<Queued>("/v1/to-device", { ...to, client_msg_id: clientMsgId, body });
}

function list(dev: Device, limit?: number) {
  return dev.get<ToDevicePage>(`/v1/to-device${limit !== undefined ? `?limit=${limit}` : ""}`);
}

function ack(dev: Device, upTo: number) {
  return dev.post<{ remaining: number }>("/v1/to-device/ack", { up_to: upTo });
}

/** alice and bob share a conversation; bob has a phone and a tablet registered. */
async function pair() {
  const alice = await Device.of(uid("alice"));
  const bobUser = uid("bob");
  const bobPhone = await Device.of(bobUser, "phone");
  const bobTablet = await Device.of(bobUser, "tablet");
  await bobPhone.register();
  await bobTablet.register();
  const conv = await alice.createConversation([bobUser]);
  return { alice, bobPhone, bobTablet, conv };
}

describe("per-device queue", () => {
  it("POST to a named device queues one entry; GET lists it oldest first with its sender", async () => {
    const { alice, bobPhone, bobTablet } = await pair();
    const a = await sendTo(alice, { user: bobPhone.user, device: "tablet" }, { k: 1 });
    expect(a.status).toBe(202);
    expect(a.body.queued).toBe(1);
    const b = await sendTo(alice, { user: bobPhone.user, device: "tablet" }, { k: 2 });
    expect(b.body.queued).toBe(1);

    const page = await list(bobTablet);
    expect(page.status).toBe(200);
    expect(page.body.has_more).toBe(false);
    expect(page.body.entries.map((e) => e.body)).toEqual([{ k: 1 }, { k: 2 }]);
    for (const e of page.body.entries) {
      expect(e.from).toEqual({ user: alice.user, device: "phone" });
      expect(new Date(e.created_at).toISOString()).toBe(e.created_at);
    }
    expect(page.body.entries[1]!.id).toBeGreaterThan(page.body.entries[0]!.id);
    // The other device got nothing.
    expect((await list(bobPhone)).body.entries).toEqual([]);
  });

  it("POST without a device fans out to every device of the user", async () => {
    const { alice, bobPhone, bobTablet } = await pair();
    const res = await sendTo(alice, { user: bobPhone.user }, "hello both");
    expect(res.status).toBe(202);
    expect(res.body.queued).toBe(2);
    expect((await list(bobPhone)).body.entries.map((e) => e.body)).toEqual(["hello both"]);
    expect((await list(bobTablet)).body.entries.map((e) => e.body)).toEqual(["hello both"]);
  });

  it("ids increase per device and explicit ack deletes up to the id, nothing implied", async () => {
    const { alice, bobTablet } = await pair();
    for (let i = 0; i < 5; i++) await sendTo(alice, { user: bobTablet.user, device: "tablet" }, i);
    const first = await list(bobTablet);
    const ids = first.body.entries.map((e) => e.id);
    expect(ids).toHaveLength(5);
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);

    // Reading is not acking: the same entries come back.
    expect((await list(bobTablet)).body).toEqual(first.body);

    const acked = await ack(bobTablet, ids[2]!);
    expect(acked.status).toBe(200);
    expect(acked.body).toEqual({ remaining: 2 });
    const rest = await list(bobTablet);
    expect(rest.body.entries.map((e) => e.id)).toEqual(ids.slice(3));
    expect(rest.body.entries.map((e) => e.body)).toEqual([3, 4]);

    // A lower ack is harmless; a new entry gets a higher id than any before.
    expect((await ack(bobTablet, ids[0]!)).body).toEqual({ remaining: 2 });
    await sendTo(alice, { user: bobTablet.user, device: "tablet" }, 5);
    const after = await list(bobTablet);
    expect(after.body.entries.at(-1)!.id).toBeGreaterThan(ids[4]!);
    expect((await ack(bobTablet, after.body.entries.at(-1)!.id)).body).toEqual({ remaining: 0 });
    expect((await list(bobTablet)).body.entries).toEqual([]);

    // Acked ids are never reused.
    await sendTo(alice, { user: bobTablet.user, device: "tablet" }, 6);
    expect((await list(bobTablet)).body.entries[0]!.id).toBeGreaterThan(after.body.entries.at(-1)!.id);
  });

  it("ack on one device does not touch another device's queue", async () => {
    const { alice, bobPhone, bobTablet } = await pair();
    await sendTo(alice, { user: bobPhone.user }, "x");
    const t = await list(bobTablet);
    await ack(bobTablet, t.body.entries[0]!.id);
    expect((await list(bobTablet)).body.entries).toEqual([]);
    expect((await list(bobPhone)).body.entries.map((e) => e.body)).toEqual(["x"]);
  });

  it("the same sender device + client_msg_id is not queued twice, even concurrently", async () => {
    const { alice, bobPhone, bobTablet } = await pair();
    const first = await sendTo(alice, { user: bobPhone.user }, "once", "same-td");
    expect(first.body.queued).toBe(2);
    const again = await sendTo(alice, { user: bobPhone.user }, "once", "same-td");
    expect(again.status).toBe(202);
    expect(again.body.queued).toBe(2);
    const storm = await Promise.all(range(1, 10).map(() => sendTo(alice, { user: bobPhone.user }, "storm", "storm-td")));
    expect(storm.every((r) => r.status === 202)).toBe(true);
    expect((await list(bobPhone)).body.entries.map((e) => e.body)).toEqual(["once", "storm"]);
    expect((await list(bobTablet)).body.entries.map((e) => e.body)).toEqual(["once", "storm"]);
    // A different sender device with the same client_msg_id is a different send.
    const aliceLaptop = await Device.of(alice.user, "laptop");
    await sendTo(aliceLaptop, { user: bobPhone.user, device: "phone" }, "other", "same-td");
    expect((await list(bobPhone)).body.entries.map((e) => e.body)).toEqual(["once", "storm", "other"]);
  });

  it("list limit and has_more", async () => {
    const { alice, bobTablet } = await pair();
    for (let i = 0; i < 3; i++) await sendTo(alice, { user: bobTablet.user, device: "tablet" }, i);
    const two = await list(bobTablet, 2);
    expect(two.body.entries.map((e) => e.body)).toEqual([0, 1]);
    expect(two.body.has_more).toBe(true);
    const three = await list(bobTablet, 3);
    expect(three.body.has_more).toBe(false);
    for (const bad of ["0", "501", "x"]) {
      expectError(await bobTablet.get(`/v1/to-device?limit=${bad}`), 400, "invalid_request");
    }
  });
});

describe("addressing rules", () => {
  it("a user may address their own other devices (not echoing to the sender device)", async () => {
    const user = uid("alice");
    const phone = await Device.of(user, "phone");
    const laptop = await Device.of(user, "laptop");
    await phone.register();
    await laptop.register();
    const all = await sendTo(phone, { user }, "sync keys");
    expect(all.status).toBe(202);
    expect(all.body.queued).toBe(1);
    expect((await list(laptop)).body.entries.map((e) => e.body)).toEqual(["sync keys"]);
    expect((await list(phone)).body.entries).toEqual([]);
    const named = await sendTo(phone, { user, device: "laptop" }, "direct");
    expect(named.body.queued).toBe(1);
  });

  it("a user sharing no conversation gets 403 and nothing is queued", async () => {
    const { bobPhone, bobTablet } = await pair();
    const eve = await Device.of(uid("eve"));
    const res = await sendTo(eve, { user: bobPhone.user }, "spam");
    expectError(res, 403, "forbidden");
    expectError(await sendTo(eve, { user: bobPhone.user, device: "phone" }, "spam"), 403, "forbidden");
    expect((await list(bobPhone)).body.entries).toEqual([]);
    expect((await list(bobTablet)).body.entries).toEqual([]);
  });

  it("sharing a conversation opens the queue both ways; leaving it closes it", async () => {
    const { alice, bobPhone, conv } = await pair();
    await alice.register();
    expect((await sendTo(bobPhone, { user: alice.user }, "back")).status).toBe(202);
    await alice.members(conv, { remove: [bobPhone.user] });
    await flush(conv);
    expectError(await sendTo(bobPhone, { user: alice.user }, "still?"), 403, "forbidden");
    expectError(await sendTo(alice, { user: bobPhone.user }, "still?"), 403, "forbidden");
    expect((await list(alice)).body.entries.map((e) => e.body)).toEqual(["back"]);
  });

  it("to-device bodies are bounded like messages: over 64 KiB serialized → 413, nothing queued", async () => {
    const { alice, bobTablet } = await pair();
    expectError(await sendTo(alice, { user: bobTablet.user, device: "tablet" }, "x".repeat(64 * 1024)), 413, "payload_too_large");
    expect((await list(bobTablet)).body.entries).toEqual([]);
  });
});

describe("per-device cap", () => {
  it("keeps the newest 1000 entries; the oldest are dropped and counted", async () => {
    const user = uid("alice");
    const phone = await Device.of(user, "phone");
    const laptop = await Device.of(user, "laptop");
    await laptop.register();
    const total = 1005;
    const viaHttp = 10;
    // The first 995 sends run inside the UserDO through the same method the Worker calls
    // (HTTP for all 1005 is too slow for one test); the last 10 go through the API.
    const direct = await runInDurableObject(userStub(user), async (obj) => {
      const statuses: string[] = [];
      for (let i = 0; i < total - viaHttp; i++) {
        const r = await obj.enqueueToDevice({
          from: { user, device: "phone" }, to: user, device: "laptop", clientMsgId: `cap${i}`,
          bodyJson: JSON.stringify(i), senderConversations: [],
        });
        statuses.push(r.ok ? `q${r.value.queued}` : r.code);
      }
      return statuses;
    });
    expect(direct.every((s) => s === "q1")).toBe(true);
    expect((await list(laptop, 1)).body.dropped).toBe(0);
    for (let i = total - viaHttp; i < total; i++) {
      const r = await sendTo(phone, { user, device: "laptop" }, i, `cap${i}`);
      expect(r.status).toBe(202);
      expect(r.body.queued).toBe(1);
    }

    const bodies: unknown[] = [];
    const ids: number[] = [];
    let page = await list(laptop, 500);
    expect(page.body.dropped).toBe(5);
    expect(page.body.has_more).toBe(true);
    for (let i = 0; i < 5; i++) {
      bodies.push(...page.body.entries.map((e) => e.body));
      ids.push(...page.body.entries.map((e) => e.id));
      if (!page.body.has_more) break;
      await ack(laptop, page.body.entries.at(-1)!.id);
      page = await list(laptop, 500);
    }
    expect(bodies).toHaveLength(1000);
    // The five oldest are gone; the rest are kept in order.
    expect(bodies).toEqual(range(5, total - 1));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(1000);
    expect((await ack(laptop, ids.at(-1)!)).body).toEqual({ remaining: 0 });
    expect((await list(laptop)).body.dropped).toBe(5);
  });
});

describe("devices", () => {
  it("POST /v1/devices registers the caller's device with its push target", async () => {
    const dev = await Device.of(uid("alice"), "phone");
    const res = await dev.post("/v1/devices", { push: { provider: "webhook", token: "tok-1", extra: 1 } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ user_id: dev.user, device_id: "phone", push: { provider: "webhook", token: "tok-1", extra: 1 } });
    const none = await dev.post("/v1/devices", {});
    expect(none.body).toEqual({ user_id: dev.user, device_id: "phone", push: null });
    expectError(await dev.post("/v1/devices", { push: { provider: "pigeon", token: "x" } }), 400, "invalid_request");
    expectError(await dev.post("/v1/devices", { push: { provider: "fcm", token: "" } }), 400, "invalid_request");
  });

  it("DELETE drops the device's cursors and queue; read (per user) stays", async () => {
    const { alice, bobPhone, bobTablet, conv } = await pair();
    await alice.sendOk(conv);
    await sendTo(alice, { user: bobPhone.user, device: "tablet" }, "for tablet");
    await bobTablet.cursors({ received: { [conv]: 2 }, read: { [conv]: 2 } });
    expect(await bobTablet.syncEntry(conv)).toMatchObject({ received: 2, read: 2 });

    const del = await bobPhone.delete("/v1/devices/tablet");
    expect(del.status).toBe(204);
    expectError(await bobPhone.delete("/v1/devices/tablet"), 404, "not_found");

    // The tablet comes back as a fresh device: no received cursor, no queue; read is the user's.
    expect((await list(bobTablet)).body.entries).toEqual([]);
    expect(await bobTablet.syncEntry(conv)).toMatchObject({ received: 0, read: 2 });
  });

  it("DELETE of an unknown device is 404", async () => {
    const dev = await Device.of(uid("alice"));
    await dev.register();
    expectError(await dev.delete(`/v1/devices/${uid("ghost")}`), 404, "not_found");
    expectError(await dev.delete("/v1/devices/bad%20id"), 400, "invalid_request");
  });

  it("a device of another user cannot be touched, even with the same device id", async () => {
    const { alice, bobTablet, conv } = await pair();
    await alice.sendOk(conv);
    await sendTo(alice, { user: bobTablet.user, device: "tablet" }, "keep me");
    await bobTablet.cursors({ received: { [conv]: 2 } });

    // alice has no tablet: 404, bob's tablet untouched.
    expectError(await alice.delete("/v1/devices/tablet"), 404, "not_found");
    // alice gets a tablet of her own and deletes it: only hers goes.
    const aliceTablet = await Device.of(alice.user, "tablet");
    await aliceTablet.register();
    expect((await alice.delete("/v1/devices/tablet")).status).toBe(204);

    expect(await bobTablet.syncEntry(conv)).toMatchObject({ received: 2 });
    expect((await list(bobTablet)).body.entries.map((e) => e.body)).toEqual(["keep me"]);
  });
});
