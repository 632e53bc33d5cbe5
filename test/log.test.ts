/** The log: gapless seqs, idempotent sends, ack only after durable. */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ConversationSummary, MemberChangeBody, Message, SendResult } from "../src/protocol/types";
import { Device, range, request, seqs, uid } from "./helpers";

describe("basics", () => {
  it("GET /healthz answers 200 {ok:true}", async () => {
    const res = await request("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });

  it("create returns the summary; the creation is seq 1, a member entry naming everyone", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const id = uid("c");
    const res = await alice.post<ConversationSummary>("/v1/conversations", { id, members: [bob.user, bob.user] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id, head_seq: 1, floor_seq: 0, members: [alice.user, bob.user].sort() });
    expect(typeof res.body.epoch).toBe("string");
    expect(res.body.epoch.length).toBeGreaterThan(0);

    const page = await bob.page(id, "after=0");
    expect(page.status).toBe(200);
    expect(page.body.messages).toHaveLength(1);
    const first = page.body.messages[0]!;
    expect(first).toMatchObject({ seq: 1, type: "member", sender: { user: alice.user, device: "phone" }, client_msg_id: null });
    const change = first.body as MemberChangeBody;
    expect([...change.added].sort()).toEqual([alice.user, bob.user].sort());
    expect(change.removed).toEqual([]);
    expect(change.by).toBe(alice.user);
  });

  it("a sent message comes back with the contract's fields", async () => {
    const alice = await Device.of(uid("alice"), "laptop");
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const cmid = uid("m");
    const sent = await alice.post<SendResult>(`/v1/conversations/${conv}/messages`, { client_msg_id: cmid, body: { text: "hi", n: [1, 2] } });
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ seq: 2, duplicate: false });
    expect(typeof sent.body.msg_id).toBe("string");
    expect(new Date(sent.body.created_at).toISOString()).toBe(sent.body.created_at);

    const page = await bob.page(conv, "after=1");
    expect(page.body.messages).toEqual<Message[]>([
      {
        seq: 2,
        msg_id: sent.body.msg_id,
        type: "message",
        sender: { user: alice.user, device: "laptop" },
        client_msg_id: cmid,
        body: { text: "hi", n: [1, 2] },
        created_at: sent.body.created_at,
      },
    ]);
  });

  it("any JSON body is kept as sent, including null, strings and arrays", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const bodies: unknown[] = [null, "plain", [1, "two", { three: 3 }], 0, false, { nested: { deep: ["x"] } }];
    for (const body of bodies) {
      const res = await alice.post(`/v1/conversations/${conv}/messages`, { client_msg_id: uid("m"), body });
      expect(res.status).toBe(201);
    }
    const page = await alice.page(conv, "after=1");
    expect(page.body.messages.map((m) => m.body)).toEqual(bodies);
  });
});

describe("gapless seqs", () => {
  it("50 concurrent sends from 3 devices get exactly seqs 2..51, no duplicates", async () => {
    const user = uid("alice");
    const bob = await Device.of(uid("bob"));
    const devices = await Promise.all(["phone", "tablet", "laptop"].map((d) => Device.of(user, d)));
    const conv = await devices[0]!.createConversation([bob.user]);
    const results = await Promise.all(
      range(0, 49).map((i) => devices[i % 3]!.send(conv, `m${i}`, `cm${i}`)),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(201));
    const got = results.map((r) => r.body.seq).sort((a, b) => a - b);
    expect(got).toEqual(range(2, 51));
    expect(new Set(results.map((r) => r.body.msg_id)).size).toBe(50);

    const summary = await bob.summary(conv);
    expect(summary.body.head_seq).toBe(51);
    const page = await bob.page(conv, "after=0&limit=500");
    expect(seqs(page.body)).toEqual(range(1, 51));
    // Each reply names the entry that holds its own text.
    for (const [i, r] of results.entries()) {
      const m = page.body.messages.find((x) => x.seq === r.body.seq)!;
      expect(m.body).toEqual({ text: `m${i}` });
      expect(m.client_msg_id).toBe(`cm${i}`);
      expect(m.sender.device).toBe(["phone", "tablet", "laptop"][i % 3]);
    }
  });

  it("sends from several members interleave without gaps; membership changes take a seq too", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const carol = await Device.of(uid("carol"));
    const conv = await alice.createConversation([bob.user]);
    const first = await Promise.all([alice.sendOk(conv), bob.sendOk(conv), alice.sendOk(conv)]);
    const s = await alice.members(conv, { add: [carol.user] });
    expect(s.head_seq).toBe(5);
    const second = await Promise.all([carol.sendOk(conv), bob.sendOk(conv)]);
    expect([...first, ...second].sort((a, b) => a - b)).toEqual([2, 3, 4, 6, 7]);
    const page = await alice.page(conv, "after=0");
    expect(seqs(page.body)).toEqual(range(1, 7));
    expect(page.body.messages[4]!.type).toBe("member");
  });
});

describe("idempotent retries", () => {
  it("same device + client_msg_id again → 200, original seq and msg_id, duplicate:true, one entry", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const first = await alice.send(conv, "hello", "retry-1");
    expect(first.status).toBe(201);
    expect(first.body.duplicate).toBe(false);
    await alice.sendOk(conv, "other");
    const again = await alice.send(conv, "hello (changed body)", "retry-1");
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    const page = await alice.page(conv, "after=0");
    expect(seqs(page.body)).toEqual([1, 2, 3]);
    expect(page.body.messages[1]!.body).toEqual({ text: "hello" });
    expect((await alice.summary(conv)).body.head_seq).toBe(3);
  });

  it("same client_msg_id from a different device (same user) is a new entry", async () => {
    const user = uid("alice");
    const phone = await Device.of(user, "phone");
    const tablet = await Device.of(user, "tablet");
    const conv = await phone.createConversation([]);
    const a = await phone.send(conv, "a", "same-id");
    const b = await tablet.send(conv, "b", "same-id");
    expect([a.status, b.status]).toEqual([201, 201]);
    expect([a.body.seq, b.body.seq]).toEqual([2, 3]);
    expect(b.body.duplicate).toBe(false);
  });

  it("same client_msg_id from a different user is a new entry", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const a = await alice.send(conv, "a", "same-id");
    const b = await bob.send(conv, "b", "same-id");
    expect([a.status, b.status]).toEqual([201, 201]);
    expect([a.body.seq, b.body.seq]).toEqual([2, 3]);
  });

  it("20 concurrent duplicate retries create exactly one entry", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const results = await Promise.all(range(1, 20).map(() => alice.send(conv, "once", "dup-storm")));
    const created = results.filter((r) => r.status === 201);
    const dups = results.filter((r) => r.status === 200);
    expect(created).toHaveLength(1);
    expect(dups).toHaveLength(19);
    for (const d of dups) expect(d.body).toEqual({ ...created[0]!.body, duplicate: true });
    expect(created[0]!.body.seq).toBe(2);
    expect((await alice.summary(conv)).body.head_seq).toBe(2);
    const page = await alice.page(conv, "after=0");
    expect(seqs(page.body)).toEqual([1, 2]);
  });

  it("a retry after the objects were reset is still recognised", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const first = await alice.send(conv, "x", "survives-reset");
    await abortAllDurableObjects();
    const again = await alice.send(conv, "x", "survives-reset");
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    expect((await alice.summary(conv)).body.head_seq).toBe(2);
  });
});

describe("ack only after durable", () => {
  it("after a 201, the entry is readable even after every object was reset", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const sent = await Promise.all(range(1, 5).map((i) => alice.send(conv, `durable${i}`, `d${i}`)));
    expect(sent.map((s) => s.status)).toEqual([201, 201, 201, 201, 201]);
    await abortAllDurableObjects();
    const page = await bob.page(conv, "after=0");
    expect(page.status).toBe(200);
    expect(page.body.head_seq).toBe(6);
    expect(seqs(page.body)).toEqual(range(1, 6));
    for (const s of sent) {
      const m = page.body.messages.find((x) => x.seq === s.body.seq)!;
      expect(m.msg_id).toBe(s.body.msg_id);
    }
    // The seq counter also survived: the next send continues the sequence.
    expect(await alice.sendOk(conv)).toBe(7);
  });

  it("membership changes survive a reset too", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([]);
    await alice.members(conv, { add: [bob.user] });
    await abortAllDurableObjects();
    const s = await bob.summary(conv);
    expect(s.status).toBe(200);
    expect(s.body.members).toEqual([alice.user, bob.user].sort());
  });
});
