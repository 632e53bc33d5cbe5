/**
 * Operations: retention in bounded batches with gaps and counts, the
 * undelivered-expiry receipt, device expiry, and load shedding that never
 * loses or duplicates.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { TUNING } from "../src/config/tuning";
import { app } from "../src/worker/app";
import { Device, token, uid } from "./helpers";

const convStub = (id: string) => env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(id));
const userStub = (id: string) => env.USERS.get(env.USERS.idFromName(id));

/** Runs the conversation's alarm until the outbox is empty and retention has nothing due now. */
async function drainAlarms(id: string): Promise<void> {
  let floor = -1;
  for (let i = 0; i < 30; i++) {
    await runDurableObjectAlarm(convStub(id));
    const s = await convStats(id);
    if (s.outbox_pending === 0 && s.floor_seq === floor) return;
    floor = s.floor_seq;
  }
}

async function convStats(id: string) {
  const res = await convStub(id).stats();
  if (!res.ok) throw new Error(res.message);
  return res.value;
}

describe("retention", () => {
  it("max_messages raises the floor in bounded batches; reads report the gap", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([], { retention: { max_messages: 10 } });
    const stub = convStub(conv);
    const logs = vi.spyOn(console, "log");
    const sent = await runInDurableObject(stub, async (obj) => {
      let ok = 0;
      for (let i = 0; i < 2600; i++) if ((await obj.send({ user: alice.user, device: "phone" }, `m${i}`, JSON.stringify({ i }))).ok) ok++;
      return ok;
    });
    expect(sent).toBe(2600);
    // Retention runs in batches of at most 500 entries (the alarm may also fire by itself).
    await drainAlarms(conv);
    const batches = logs.mock.calls
      .map((args) => String(args[0]))
      .filter((line) => line.includes('"retention_removed"') && line.includes(conv))
      .map((line) => JSON.parse(line) as { from: number; to: number });
    logs.mockRestore();
    const done = await convStats(conv);
    expect(done.head_seq).toBe(2601);
    expect(done.floor_seq).toBe(2591);
    expect(done.expired_total).toBe(2591);
    expect(batches.length).toBeGreaterThanOrEqual(6); // 2591 entries, 500 at a time
    for (const b of batches) expect(b.to - b.from + 1).toBeLessThanOrEqual(500);
    const page = await alice.get(`/v1/conversations/${conv}/messages?after=0`);
    expect(page.body.floor_seq).toBe(2591);
    expect(page.body.gaps).toEqual([{ from: 1, to: 2591, reason: "retention" }]);
    expect(page.body.messages.map((m: { seq: number }) => m.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 2592 + i));
    // The user's index learns the new floor.
    await drainAlarms(conv);
    const sync = await alice.get("/v1/sync");
    expect(sync.body.conversations.find((c: { id: string }) => c.id === conv).floor_seq).toBe(2591);
  });

  it("max_age removes old entries; a user back after a long time gets summaries, the newest page and an explicit gap", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user], { retention: { max_age_seconds: 1 } });
    for (let i = 0; i < 3; i++) await alice.send(conv, `old ${i}`);
    await new Promise((r) => setTimeout(r, 1200));
    await alice.send(conv, "new");
    await drainAlarms(conv);
    const sync = await bob.get("/v1/sync");
    expect(sync.status).toBe(200);
    const summary = sync.body.conversations.find((c: { id: string }) => c.id === conv);
    expect(summary).toMatchObject({ head_seq: 5, floor_seq: 4, received: 0 });
    const newest = await bob.get(`/v1/conversations/${conv}/messages`);
    expect(newest.status).toBe(200);
    expect(newest.body.messages.map((m: { seq: number }) => m.seq)).toEqual([5]);
    expect(newest.body.gaps).toEqual([{ from: 1, to: 4, reason: "retention" }]);
    expect(newest.body.has_more).toBe(false);
  });

  it("unread stays exact when retention removes every message of a sender (their count outlives their entries)", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user], { retention: { max_messages: 1 } });
    await alice.sendOk(conv, "a1");
    await alice.sendOk(conv, "a2");
    const last = await bob.sendOk(conv, "b1");
    await drainAlarms(conv);
    expect((await convStats(conv)).floor_seq).toBe(last - 1);
    // alice read nothing: of what is left, bob's message is unread, her own never are.
    expect(await alice.syncEntry(conv)).toMatchObject({ floor_seq: last - 1, head_seq: last, unread: 1 });
    expect(await bob.syncEntry(conv)).toMatchObject({ floor_seq: last - 1, head_seq: last, unread: 0 });
    const next = await alice.sendOk(conv, "a3");
    await drainAlarms(conv);
    expect(await alice.syncEntry(conv)).toMatchObject({ head_seq: next, unread: 0 });
    expect(await bob.syncEntry(conv)).toMatchObject({ head_seq: next, unread: 1 });
  });

  it("keys of removed entries are kept for their window from the send, then gone (the key table stays bounded)", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([], { retention: { max_messages: 3 } });
    const old = await alice.sendOk(conv, "old", "k-old");
    const young = await alice.sendOk(conv, "young", "k-young");
    await runInDurableObject(convStub(conv), (_obj, state) => {
      state.storage.sql.exec("UPDATE entries SET created_at = created_at - ? WHERE seq <= ?", TUNING.idempotencyKeepMs + 60_000, old);
    });
    for (let i = 0; i < 3; i++) await alice.sendOk(conv, `push ${i}`);
    await drainAlarms(conv);
    expect((await convStats(conv)).floor_seq).toBeGreaterThanOrEqual(young);
    const kept = await runInDurableObject(convStub(conv), (_obj, state) =>
      state.storage.sql.exec<{ client_msg_id: string }>("SELECT client_msg_id FROM idempotency ORDER BY seq").toArray().map((r) => r.client_msg_id),
    );
    expect(kept).toEqual(["k-young"]);
    expect((await alice.send(conv, "young", "k-young")).body).toMatchObject({ seq: young, duplicate: true });
    const again = await alice.send(conv, "old", "k-old");
    expect(again.status).toBe(201);
    expect(again.body.seq).toBeGreaterThan(young);
  });

  it("counts messages unavailable due to retention once per device", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bobPhone.user, "laptop");
    const conv = await alice.createConversation([bobPhone.user], { retention: { max_messages: 2 } });
    for (let i = 0; i < 6; i++) await alice.send(conv, `m${i}`);
    await drainAlarms(conv); // head 7, floor 5
    expect((await convStats(conv)).unavailable_total).toBe(0);
    await bobPhone.get(`/v1/conversations/${conv}/messages?after=0`);
    expect((await convStats(conv)).unavailable_total).toBe(5);
    await bobPhone.get(`/v1/conversations/${conv}/messages?after=0`);
    expect((await convStats(conv)).unavailable_total).toBe(5);
    await bobLaptop.get(`/v1/conversations/${conv}/messages?after=2`);
    expect((await convStats(conv)).unavailable_total).toBe(8);
  });
});

describe("undelivered-expiry receipt", () => {
  it("tells the sender, per recipient device, how many of their messages expired unreceived", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bobPhone.user, "laptop");
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([bobPhone.user, carol.user], { retention: { max_age_seconds: 2 } });
    for (let i = 0; i < 5; i++) await alice.send(conv, `m${i}`); // seqs 2..6
    expect((await bobPhone.post("/v1/cursors", { received: { [conv]: 3 } })).status).toBe(200);
    expect((await bobLaptop.post("/v1/cursors", { received: { [conv]: 6 } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2300));
    await bobPhone.send(conv, "fresh"); // seq 7 stays
    await drainAlarms(conv); // seqs 1..6 are older than 2 s: removed
    const receipt = await alice.get(`/v1/conversations/${conv}/expired`);
    expect(receipt.status).toBe(200);
    expect(receipt.body.floor_seq).toBe(6);
    expect(receipt.body.expired).toEqual([
      { user: bobPhone.user, device: "phone", entries: 3, last_seq: 6, updated_at: expect.any(String) },
      { user: carol.user, device: null, entries: 5, last_seq: 6, updated_at: expect.any(String) },
    ]);
    // Only the sender's own messages are reported to them.
    const bobView = await bobPhone.get(`/v1/conversations/${conv}/expired`);
    expect(bobView.body.expired).toEqual([]);
    const stranger = await Device.of(uid("eve"));
    expect((await stranger.get(`/v1/conversations/${conv}/expired`)).status).toBe(403);
  });
});

describe("bounds", () => {
  it("inactive devices expire with their cursors, queue and push target", async () => {
    const alice = await Device.of(uid("alice"));
    const bobOld = await Device.of(uid("bob"), "old");
    const bobNew = await Device.of(bobOld.user, "new");
    const conv = await alice.createConversation([bobOld.user]);
    await bobOld.post("/v1/devices", { push: { provider: "webhook", token: uid("tok") } });
    await bobOld.post("/v1/cursors", { received: { [conv]: 1 } });
    await bobNew.get("/v1/sync");
    await runInDurableObject(userStub(bobOld.user), (_o, state) => {
      state.storage.sql.exec("UPDATE devices SET last_seen_at = ? WHERE device_id = 'old'", Date.now() - 91 * 86_400_000);
    });
    await runDurableObjectAlarm(userStub(bobOld.user));
    const stats = await userStub(bobOld.user).stats();
    expect(stats.devices.map((d) => d.device_id)).toEqual(["new"]);
    const cursors = await runInDurableObject(userStub(bobOld.user), (_o, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM received WHERE device_id = 'old'").one(),
    );
    expect(cursors.n).toBe(0);
    // Coming back, the device starts over: no cursor, a full resync.
    const back = await bobOld.get("/v1/sync");
    expect(back.body.conversations.find((c: { id: string }) => c.id === conv).received).toBe(0);
  });
});

describe("load shedding", () => {
  it("history reads past the row budget get 503 + Retry-After; retrying loses and duplicates nothing", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const stub = convStub(conv);
    await runInDurableObject(stub, async (obj) => {
      for (let i = 0; i < 1000; i++) await obj.send({ user: alice.user, device: "phone" }, `m${i}`, JSON.stringify(i));
    });
    const readers = await Promise.all(Array.from({ length: 30 }, (_, i) => Device.of(alice.user, `d${i}`)));
    let shed = 0;
    const results = await Promise.all(
      readers.map(async (d) => {
        const seqs: number[] = [];
        let after = 0;
        for (let attempt = 0; attempt < 50; attempt++) {
          const res = await d.get(`/v1/conversations/${conv}/messages?after=${after}&limit=500`);
          if (res.status === 503) {
            shed++;
            expect(res.body.error.code).toBe("overloaded");
            const retryAfter = Number(res.headers.get("retry-after"));
            expect(retryAfter).toBeGreaterThanOrEqual(1);
            await new Promise((r) => setTimeout(r, 200 + Math.random() * 300)); // compressed Retry-After
            continue;
          }
          expect(res.status).toBe(200);
          seqs.push(...res.body.messages.map((m: { seq: number }) => m.seq));
          after = res.body.next_after;
          if (!res.body.has_more) break;
        }
        return seqs;
      }),
    );
    expect(shed).toBeGreaterThan(0);
    for (const seqs of results) expect(seqs).toEqual(Array.from({ length: 1001 }, (_, i) => i + 1));
  });

  it("a device over its rate limit gets 429 rate_limited with Retry-After", async () => {
    const jwt = await token(uid("alice"), "phone");
    const limited = { ...env, DEVICE_RATE: { limit: async () => ({ success: false }) } };
    const res = await app.fetch(new Request("https://x/v1/sync", { headers: { authorization: `Bearer ${jwt}` } }), limited, {
      waitUntil: () => undefined,
      passThroughOnException: () => undefined,
      props: {},
    } as unknown as ExecutionContext);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({ error: { code: "rate_limited" } });
  });
});
