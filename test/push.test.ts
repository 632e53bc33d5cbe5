/**
 * Push handoff end to end: UserDO decisions → real Queue → consumer → the fake
 * providers' real HTTP server (test/fakes/providers.ts), plus consumer unit tests
 * for the gate (rate cap, Retry-After, breaker) and the dead-letter path.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { handlePushBatch } from "../src/push/consumer";
import type { PushTask } from "../src/push/types";
import type { RecordedRequest } from "./fakes/providers";
import { Device, uid } from "./helpers";
import { TestSocket } from "./sockets";

const fake = (env as unknown as { FAKE_PROVIDER_URL: string }).FAKE_PROVIDER_URL;

async function received(token: string): Promise<RecordedRequest[]> {
  const res = await fetch(`${fake}/_requests?provider=webhook&token=${encodeURIComponent(token)}`);
  return (await res.json()) as RecordedRequest[];
}

async function program(token: string, respond: { status: number; headers?: Record<string, string>; times?: number }): Promise<void> {
  await fetch(`${fake}/_control`, { method: "POST", body: JSON.stringify({ token, respond }) });
}

async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withWebhook(user: string, device: string): Promise<{ dev: Device; token: string }> {
  const dev = await Device.of(user, device);
  const token = uid("tok");
  const res = await dev.post("/v1/devices", { push: { provider: "webhook", token } });
  expect(res.status).toBe(200);
  return { dev, token };
}

async function userStats(user: string) {
  return runInDurableObject(env.USERS.get(env.USERS.idFromName(user)), (obj) => obj.stats());
}

describe("push decisions", () => {
  it("a burst of 300 messages to an offline device becomes one signed, content-free push", async () => {
    const alice = await Device.of(uid("alice"));
    const { dev: bob, token } = await withWebhook(uid("bob"), "phone");
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => alice.send(conv, `secret text ${i + j}`)));
    }
    const pushes = await waitFor(() => received(token), (r) => r.length >= 1);
    await sleep(1500);
    const all = await received(token);
    expect(all.length).toBe(1);
    const push = all[0]!;
    expect(push.problems).toEqual([]); // signature verified by the receiver
    expect(push.body).not.toContain("secret text");
    const body = JSON.parse(push.body) as Record<string, unknown>;
    expect(body).toMatchObject({ user_id: bob.user, device_id: "phone", token, conversation_id: conv });
    expect(typeof body.head_seq).toBe("number");
    expect(body.unread as number).toBeGreaterThan(0);
    expect(pushes.length).toBeGreaterThanOrEqual(1);
  });

  it("an online device (open inbox socket) gets none", async () => {
    const alice = await Device.of(uid("alice"));
    const { dev: bob, token } = await withWebhook(uid("bob"), "phone");
    const conv = await alice.createConversation([bob.user]);
    const inbox = await TestSocket.must("/v1/inbox", bob.jwt);
    await inbox.next("hello");
    for (let i = 0; i < 5; i++) await alice.send(conv, `m${i}`);
    await inbox.until((f) => f.some((x) => x.type === "poke" && x.head_seq === 6));
    await sleep(1200);
    expect(await received(token)).toEqual([]);
    inbox.close();
  });

  it("the sender's own device is never pushed for its own message", async () => {
    const { dev: alice, token: aliceToken } = await withWebhook(uid("alice"), "phone");
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await bob.send(conv, "from bob"); // alice's phone is behind by bob's message: one push is right
    const first = await waitFor(() => received(aliceToken), (r) => r.length >= 1);
    expect(first.length).toBe(1);
    await alice.get("/v1/sync"); // resets the collapse window
    await alice.post("/v1/cursors", { received: { [conv]: 2 }, read: { [conv]: 2 } });
    for (let i = 0; i < 3; i++) await alice.send(conv, `own ${i}`);
    await sleep(1500);
    expect((await received(aliceToken)).length).toBe(1);
  });

  it("a sync resets the collapse window and counts as a push-to-sync conversion", async () => {
    const alice = await Device.of(uid("alice"));
    const { dev: bob, token } = await withWebhook(uid("bob"), "phone");
    const conv = await alice.createConversation([bob.user]);
    await alice.send(conv, "one");
    await waitFor(() => received(token), (r) => r.length >= 1);
    await alice.send(conv, "two, inside the window");
    await sleep(800);
    expect((await received(token)).length).toBe(1);
    expect((await userStats(bob.user)).pushes_converted).toBe(0);
    await bob.get("/v1/sync");
    expect((await userStats(bob.user)).pushes_converted).toBe(1);
    await sleep(2100); // the per-device ceiling (2 s in tests)
    await alice.send(conv, "three, after the device synced");
    const after = await waitFor(() => received(token), (r) => r.length >= 2);
    expect(after.length).toBe(2);
  });

  it("a burst across many conversations is one push that names them all", async () => {
    const { dev: bob, token } = await withWebhook(uid("bob"), "phone");
    const alice = await Device.of(uid("alice"));
    const convs = await Promise.all(Array.from({ length: 8 }, () => alice.createConversation([bob.user])));
    await Promise.all(convs.map((c) => alice.send(c, "hello")));
    const pushes = await waitFor(() => received(token), (r) => r.length >= 1);
    await sleep(2500);
    const all = await received(token);
    expect(all.length).toBeLessThanOrEqual(2);
    const named = new Set(all.flatMap((p) => (JSON.parse(p.body) as { conversations: { id: string }[] }).conversations.map((c) => c.id)));
    expect(named).toEqual(new Set(convs));
    expect(Math.max(...all.map((p) => (JSON.parse(p.body) as { count: number }).count))).toBeGreaterThanOrEqual(4);
    expect(pushes.length).toBeGreaterThanOrEqual(1);
  });

  it("a dead token (410) is removed from the device", async () => {
    const alice = await Device.of(uid("alice"));
    const { dev: bob, token } = await withWebhook(uid("bob"), "phone");
    await program(token, { status: 410, times: 5 });
    const conv = await alice.createConversation([bob.user]);
    await alice.send(conv, "ping");
    await waitFor(() => received(token), (r) => r.length >= 1);
    const stats = await waitFor(() => userStats(bob.user), (s) => s.devices[0]?.push_provider === null);
    expect(stats.devices.find((d) => d.device_id === "phone")?.push_provider).toBeNull();
  });
});

describe("push consumer", () => {
  let n = 0;
  const task = (token: string): PushTask => ({
    user_id: uid("u"),
    device_id: "phone",
    target: { provider: "webhook", token },
    conversation_id: "c1",
    head_seq: 3,
    unread: 2,
    conversations: [{ id: "c1", head_seq: 3, unread: 2 }],
    created_at: Date.now(),
  });
  /**
   * A batch whose messages record how they were settled. getQueueResult() in this
   * pool drops `delaySeconds`, and the delay is exactly what these tests check.
   */
  function batchOf(tasks: PushTask[], attempts = 1) {
    const settled = { acks: [] as string[], retries: [] as { msgId: string; delaySeconds?: number }[] };
    const messages = tasks.map((body) => {
      const id = `m${++n}`;
      return {
        id,
        timestamp: new Date(),
        attempts,
        body,
        ack: () => void settled.acks.push(id),
        retry: (o?: QueueRetryOptions) => void settled.retries.push({ msgId: id, ...(o?.delaySeconds !== undefined ? { delaySeconds: o.delaySeconds } : {}) }),
      };
    });
    const batch: MessageBatch<PushTask> = { queue: "push", messages, metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } }, retryAll: () => undefined, ackAll: () => undefined };
    return { batch, settled };
  }
  async function run({ batch, settled }: ReturnType<typeof batchOf>) {
    await handlePushBatch(batch, env);
    return { retryMessages: settled.retries, explicitAcks: settled.acks };
  }

  beforeEach(async () => {
    // A fresh provider gate per test: the webhook gate is shared state, so wait out any pause.
    await sleep(50);
  });

  it("honours Retry-After on 429 and pauses the provider for everyone", async () => {
    await sleep(2100); // let earlier tests' pauses and bucket drain settle
    const t = uid("tok");
    await program(t, { status: 429, headers: { "retry-after": "3" }, times: 1 });
    const first = await run(batchOf([task(t)]));
    expect(first.retryMessages).toEqual([{ msgId: expect.any(String), delaySeconds: 3 }]);
    // While paused, nothing reaches the provider: the task goes back on the queue (as a new
    // message, so its delivery attempts stay unspent) without a request.
    const other = uid("tok");
    const second = await run(batchOf([task(other)]));
    expect(second.retryMessages).toEqual([]);
    expect(second.explicitAcks.length).toBe(1);
    expect(await received(other)).toEqual([]);
    // …and is delivered once the pause is over.
    const later = await waitFor(() => received(other), (r) => r.length >= 1, 15_000);
    expect(later.length).toBe(1);
    expect((await received(t)).length).toBe(1);
  });

  it("never exceeds the provider rate cap; the rest wait", async () => {
    await sleep(3500); // past the pause of the previous test
    const tokens = Array.from({ length: 20 }, () => uid("tok"));
    const result = await run(batchOf(tokens.map(task)));
    const sent = (await Promise.all(tokens.map(received))).filter((r) => r.length > 0).length;
    expect(sent).toBeLessThanOrEqual(6); // burst of 5 (+1 refilled while the batch runs)
    expect(sent).toBeGreaterThanOrEqual(1);
    // Every message is settled; the deferred ones went back on the queue with a delay.
    expect(result.explicitAcks.length).toBe(20);
    expect(result.retryMessages).toEqual([]);
  });

  it("retries 5xx with backoff and dead-letters after the last attempt", async () => {
    await sleep(1500);
    const t = uid("tok");
    await program(t, { status: 503, times: 10 });
    const early = await run(batchOf([task(t)], 1));
    expect(early.retryMessages.length).toBe(1);
    expect(early.retryMessages[0]!.delaySeconds).toBeGreaterThanOrEqual(1);
    await sleep(300);
    const last = await run(batchOf([task(t)], 4));
    expect(last.retryMessages).toEqual([]);
    expect(last.explicitAcks.length).toBe(1);
    const gate = env.PUSH_GATE.get(env.PUSH_GATE.idFromName("webhook"));
    const stats = await waitFor(() => gate.stats(), (s) => s.dead_letters.some((d) => d.reason.includes("retries exhausted")));
    expect(stats.dead_letters.some((d) => d.reason.includes("retries exhausted (503)"))).toBe(true);
  });
});
