import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Device, request, uid } from "./helpers";
import { TestSocket } from "./sockets";

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe("live conversation socket", () => {
  it("sends hello, catch-up, live, then each new entry once", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 5; i++) await alice.send(conv, `m${i}`);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live?after=0`, bob.jwt);
    await ws.next("live");
    expect(ws.frames[0]).toMatchObject({ type: "hello", conversation_id: conv, head_seq: 6, floor_seq: 0 });
    expect(ws.seqs()).toEqual(range(1, 6));
    await alice.send(conv, "after live");
    await ws.until(() => ws.seqs().length === 7);
    expect(ws.seqs()).toEqual(range(1, 7));
    ws.close();
  });

  it("has no gap and no duplicate while a concurrent sender appends during catch-up", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 250; i++) await alice.send(conv, `pre${i}`);
    const sending = Promise.all(range(1, 60).map((i) => alice.send(conv, `during${i}`)));
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live?after=0`, bob.jwt);
    await sending;
    const head = 1 + 250 + 60;
    await ws.until(() => ws.seqs().length >= head);
    expect(ws.seqs()).toEqual(range(1, head));
    // catch-up pages are bounded
    for (const f of ws.frames.filter((x) => x.type === "messages")) expect(f.messages.length).toBeLessThanOrEqual(100);
    ws.close();
  });

  it("resumes after a disconnect from the last acked seq", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.send(conv, "one");
    const first = await TestSocket.must(`/v1/conversations/${conv}/live?after=0`, bob.jwt);
    await first.next("live");
    first.send({ type: "ack", seq: 2 });
    expect(await first.next("acked")).toEqual({ type: "acked", seq: 2 });
    first.close();
    await alice.send(conv, "two");
    await alice.send(conv, "three");
    const sync = await bob.get("/v1/sync");
    const received = sync.body.conversations.find((c: { id: string }) => c.id === conv).received;
    expect(received).toBe(2);
    const second = await TestSocket.must(`/v1/conversations/${conv}/live?after=${received}`, bob.jwt);
    await second.next("live");
    expect(second.seqs()).toEqual([3, 4]);
    second.close();
  });

  it("send frames are idempotent and answered with sent", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live`, alice.jwt);
    await ws.next("live");
    ws.send({ type: "send", client_msg_id: "c1", body: { text: "hi" } });
    expect(await ws.next("sent")).toEqual({ type: "sent", client_msg_id: "c1", seq: 2, duplicate: false });
    ws.send({ type: "send", client_msg_id: "c1", body: { text: "hi" } });
    expect(await ws.next("sent")).toEqual({ type: "sent", client_msg_id: "c1", seq: 2, duplicate: true });
    await ws.until(() => ws.seqs().length === 1);
    expect(ws.seqs()).toEqual([2]);
    ws.close();
  });

  it("answers ping with pong", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live`, alice.jwt);
    await ws.next("live");
    ws.send("ping");
    await ws.next("pong");
    ws.close();
  });

  it("bad frames get an error frame and change nothing", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live`, alice.jwt);
    await ws.next("live");
    const bad = ["not json", "[]", "null", JSON.stringify({ type: "nope" }), JSON.stringify({ type: "send", body: 1 }),
      JSON.stringify({ type: "send", client_msg_id: "bad id!", body: 1 }), JSON.stringify({ type: "ack", seq: -1 }),
      JSON.stringify({ type: "send", client_msg_id: "big", body: "x".repeat(70_000) })];
    for (const b of bad) ws.send(b);
    await ws.until((f) => f.filter((x) => x.type === "error").length === bad.length);
    const errors = ws.frames.filter((x) => x.type === "error");
    expect(errors.map((e) => e.code).sort()).toEqual([...Array(7).fill("invalid_request"), "payload_too_large"].sort());
    const summary = await alice.get(`/v1/conversations/${conv}`);
    expect(summary.body.head_seq).toBe(1);
    ws.close();
  });

  it("refuses unauthenticated and non-member upgrades with the HTTP error", async () => {
    const alice = await Device.of(uid("alice"));
    const eve = await Device.of(uid("eve"));
    const conv = await alice.createConversation([]);
    const anon = await TestSocket.open(`/v1/conversations/${conv}/live`);
    expect(anon).toBeInstanceOf(Response);
    expect((anon as Response).status).toBe(401);
    expect(await (anon as Response).json()).toMatchObject({ error: { code: "unauthorized" } });
    const stranger = await TestSocket.open(`/v1/conversations/${conv}/live`, eve.jwt);
    expect((stranger as Response).status).toBe(403);
    expect(await (stranger as Response).json()).toMatchObject({ error: { code: "forbidden" } });
    const plain = await request("GET", `/v1/conversations/${conv}/live`, { token: alice.jwt });
    expect(plain.status).toBe(426);
    expect(plain.body).toMatchObject({ error: { code: "invalid_request" } });
  });

  it("accepts the token as ?access_token= on upgrades only", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live?access_token=${alice.jwt}`);
    await ws.next("live");
    ws.close();
    const plain = await request("GET", `/v1/conversations/${conv}?access_token=${alice.jwt}`);
    expect(plain.status).toBe(401);
  });

  it("a removed member stops receiving at their leave seq", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live`, bob.jwt);
    await ws.next("live");
    await alice.send(conv, "before");
    const removed = await alice.post(`/v1/conversations/${conv}/members`, { remove: [bob.user] });
    expect(removed.body.head_seq).toBe(3);
    await alice.send(conv, "after");
    await ws.until(() => ws.closed !== null);
    expect(ws.seqs()).toEqual([2, 3]);
    expect(ws.closed!.code).toBe(4003);
  });

  it("keeps identity and delivery across hibernation", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const ws = await TestSocket.must(`/v1/conversations/${conv}/live`, bob.jwt);
    await ws.next("live");
    const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv));
    // Attachments are what survives hibernation: check they carry identity.
    const ids = await runInDurableObject(stub, (_obj, state) => state.getWebSockets().map((s) => s.deserializeAttachment()));
    expect(ids).toEqual([{ v: 1, user: bob.user, device: "phone" }]);
    ws.send({ type: "send", client_msg_id: "x1", body: "from bob" });
    expect(await ws.next("sent")).toMatchObject({ seq: 2 });
    ws.close();
  });
});

describe("inbox socket", () => {
  it("pokes for a conversation the device is not viewing", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    const inbox = await TestSocket.must(`/v1/inbox`, bob.jwt);
    expect(await inbox.next("hello")).toHaveProperty("checkpoint");
    await alice.send(conv, "wake up");
    const poke = await inbox.until((f) => f.some((x) => x.type === "poke" && x.head_seq === 2));
    expect(poke.find((x) => x.type === "poke" && x.head_seq === 2)).toMatchObject({ conversation_id: conv });
    inbox.close();
  });

  it("sends read frames to the user's other devices", async () => {
    const alice = await Device.of(uid("alice"));
    const bobPhone = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bobPhone.user, "laptop");
    const conv = await alice.createConversation([bobPhone.user]);
    await alice.send(conv, "read me");
    const laptop = await TestSocket.must(`/v1/inbox`, bobLaptop.jwt);
    const phone = await TestSocket.must(`/v1/inbox`, bobPhone.jwt);
    await laptop.next("hello");
    await phone.next("hello");
    const res = await bobPhone.post("/v1/cursors", { read: { [conv]: 2 } });
    expect(res.body.read[conv]).toBe(2);
    expect(await laptop.next("read")).toEqual({ type: "read", conversation_id: conv, read: 2 });
    await new Promise((r) => setTimeout(r, 100));
    expect(phone.frames.some((f) => f.type === "read")).toBe(false);
    laptop.close();
    phone.close();
  });

  it("tells an online device that to-device entries are waiting", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    await alice.createConversation([bob.user]);
    const inbox = await TestSocket.must(`/v1/inbox`, bob.jwt);
    await inbox.next("hello");
    const res = await alice.post("/v1/to-device", { user: bob.user, client_msg_id: uid("k"), body: { key: 1 } });
    expect(res.status).toBe(202);
    expect(await inbox.next("to_device")).toEqual({ type: "to_device", pending: 1 });
    inbox.close();
  });

  it("sends membership frames", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const inbox = await TestSocket.must(`/v1/inbox`, bob.jwt);
    await inbox.next("hello");
    const conv = await alice.createConversation([bob.user]);
    expect(await inbox.next("membership")).toEqual({ type: "membership", conversation_id: conv, membership: "member" });
    await alice.post(`/v1/conversations/${conv}/members`, { remove: [bob.user] });
    expect(await inbox.next("membership")).toEqual({ type: "membership", conversation_id: conv, membership: "left" });
    inbox.close();
  });
});
