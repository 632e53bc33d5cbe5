/**
 * The SDK with tokens that expire (issue #13): nothing the user typed or read
 * is lost to a 401; only a permanent refusal (400, 403, 404, 413) drops work,
 * and says so. Against the real Worker; tokens are HS256 JWTs, and one with
 * `exp` in the past gets 401.
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, type ClientStatus, type JsonValue, type OutboxItem } from "../src/client";
import { client, fixture, loggingFetch, selfFetch, until } from "./client-fixtures";
import { Device, sendMany, sleep, token, uid } from "./helpers";

const anHourAgo = () => ({ exp: Math.floor(Date.now() / 1000) - 3600 });

/** A token provider the test steers: what it hands out, what a refresh yields, whether it works at all. */
class Provider {
  /** forceRefresh of each call, in order. */
  readonly calls: boolean[] = [];
  failing: Error | null = null;
  constructor(
    public current: string,
    public refresh: () => Promise<string>,
  ) {}
  readonly token = async ({ forceRefresh }: { forceRefresh: boolean }): Promise<string> => {
    this.calls.push(forceRefresh);
    if (this.failing) throw this.failing;
    if (forceRefresh) this.current = await this.refresh();
    return this.current;
  };
}

async function messageIds(dev: Device, conv: string): Promise<(string | null)[]> {
  return (await dev.page(conv, "after=0")).body.messages.filter((m) => m.type === "message").map((m) => m.client_msg_id);
}

function recordSends(c: ReturnType<typeof client>) {
  const sent: string[] = [];
  const failed: string[] = [];
  c.on("sent", (s) => sent.push(s.clientMsgId));
  c.on("sendFailed", (f) => failed.push(f.item.client_msg_id));
  return { sent, failed };
}

describe("client tokens", () => {
  it("a token that expires between queueing and flushing is refreshed through the provider; the message arrives once", async () => {
    const { alice, bob, conv } = await fixture(0);
    const provider = new Provider(bob.jwt, () => token(bob.user, bob.device));
    const c = client(bob, new MemoryStorage(), { token: provider.token });
    await c.send(conv, { text: "typed offline" }, "exp1");
    // Time passes offline: the token the app holds expires.
    provider.current = await token(bob.user, bob.device, anHourAgo());
    const { sent, failed } = recordSends(c);
    await c.start();
    await c.whenIdle();
    await until(() => c.outbox().length === 0);
    c.stop();
    expect(provider.calls[0]).toBe(false);
    expect(provider.calls).toContain(true);
    expect(sent).toEqual(["exp1"]);
    expect(failed).toEqual([]);
    expect(await messageIds(alice, conv)).toEqual(["exp1"]);
  });

  it("a provider that fails: auth_required, outbox and read marks kept, recovery by itself once it works", async () => {
    const { alice, bob, conv } = await fixture(3);
    const provider = new Provider(bob.jwt, () => token(bob.user, bob.device));
    provider.failing = new Error("signed out");
    const c = client(bob, new MemoryStorage(), { token: provider.token });
    await c.send(conv, { text: "while signed out" }, "so1");
    await c.markRead(conv, 3);
    const statuses: ClientStatus[] = [];
    c.on("status", (s) => statuses.push(s));
    const authEvents: unknown[] = [];
    c.on("auth_required", (e) => authEvents.push(e.error));
    const { sent, failed } = recordSends(c);
    c.show(conv);
    await c.start();
    await until(() => c.status === "auth_required");
    await sleep(200); // several retries come and go
    expect(c.authRequired).toBe(true);
    expect(c.status).toBe("auth_required");
    expect(authEvents).toHaveLength(1);
    expect(c.outbox().map((i) => i.client_msg_id)).toEqual(["so1"]);
    expect(c.conversation(conv)?.read_pending).toBe(3);

    provider.failing = null; // signed in again
    await until(() => c.status === "online" && c.outbox().length === 0 && c.conversation(conv)?.read_pending === null);
    await c.whenIdle();
    c.stop();
    expect(c.authRequired).toBe(false);
    expect(statuses).toEqual(["connecting", "auth_required", "connecting", "online", "offline"]);
    expect(sent).toEqual(["so1"]);
    expect(failed).toEqual([]);
    expect((await messageIds(alice, conv)).slice(3)).toEqual(["so1"]);
    expect((await bob.syncEntry(conv))?.read).toBe(3);
  });

  it("an expired static token waits for tokenChanged() without hammering the server, then resumes", async () => {
    const { alice, bob, conv } = await fixture(0);
    const { fetch, requests } = loggingFetch();
    const c = client(bob, new MemoryStorage(), { token: await token(bob.user, bob.device, anHourAgo()), fetch });
    await c.send(conv, { text: "stale token" }, "st1");
    await c.start();
    await until(() => c.status === "auth_required");
    const asked = requests.length;
    await sleep(300);
    expect(requests.length).toBe(asked);
    expect(c.outbox()).toHaveLength(1);

    c.tokenChanged(await token(bob.user, bob.device));
    await until(() => c.status === "online" && c.outbox().length === 0);
    c.stop();
    expect(await messageIds(alice, conv)).toEqual(["st1"]);
  });

  it("read marks survive a fresh token that is refused too (401 twice), and land once the provider recovers", async () => {
    const { bob, conv } = await fixture(2);
    const expired = await token(bob.user, bob.device, anHourAgo());
    const provider = new Provider(expired, async () => expired);
    const c = client(bob, new MemoryStorage(), { token: provider.token });
    await c.markRead(conv, 2);
    await c.start();
    await until(() => c.status === "auth_required");
    expect(provider.calls).toContain(true);
    expect(c.conversation(conv)?.read_pending).toBe(2);
    expect((await bob.syncEntry(conv))?.read).toBe(0);

    provider.refresh = () => token(bob.user, bob.device); // the identity provider is back
    await until(() => c.conversation(conv)?.read_pending === null);
    c.stop();
    expect((await bob.syncEntry(conv))?.read).toBe(2);
  });

  it("transient failures (network, 500, 503, 429) keep the message; it is sent once when they pass", async () => {
    const { alice, bob, conv } = await fixture(0);
    const retryNow = { "retry-after": "0", "content-type": "application/json" };
    const failures: Array<() => Response> = [
      () => {
        throw new TypeError("connection reset");
      },
      () => Response.json({ error: { code: "internal", message: "bug" } }, { status: 500 }),
      () => new Response(JSON.stringify({ error: { code: "overloaded", message: "shed" } }), { status: 503, headers: retryNow }),
      () => new Response(JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }), { status: 429, headers: retryNow }),
    ];
    const queuedAtFailure: number[] = [];
    const c = client(bob, new MemoryStorage(), {
      fetch: async (req) => {
        const fail = req.method === "POST" && req.url.endsWith("/messages") ? failures.shift() : undefined;
        if (!fail) return selfFetch(req);
        queuedAtFailure.push(c.outbox().length);
        return fail();
      },
    });
    const { sent, failed } = recordSends(c);
    await c.send(conv, { text: "persistent" }, "tr1");
    await c.start();
    await until(() => c.outbox().length === 0);
    c.stop();
    expect(failures).toEqual([]);
    expect(queuedAtFailure).toEqual([1, 1, 1, 1]);
    expect(sent).toEqual(["tr1"]);
    expect(failed).toEqual([]);
    expect(await messageIds(alice, conv)).toEqual(["tr1"]);
  });
});

describe("client permanent refusals", () => {
  it("drops what the server refuses for good (413, 400, 403) with the reason, and sends the rest", async () => {
    const { alice, bob, conv } = await fixture(0);
    const carol = await Device.of(uid("carol"));
    const notMine = await alice.createConversation([carol.user]);
    const storage = new MemoryStorage();
    // Queued by an older app version that checked neither size nor depth: the server refuses both for good.
    let deep: JsonValue = "bottom";
    for (let i = 0; i < 70; i++) deep = [deep];
    const legacy: OutboxItem[] = [
      { conversation_id: conv, client_msg_id: "big", body: { text: "x".repeat(70 * 1024) }, created_at: new Date().toISOString() },
      { conversation_id: conv, client_msg_id: "deep", body: deep, created_at: new Date().toISOString() },
    ];
    await storage.set("od:outbox", legacy);
    const c = client(bob, storage);
    await c.send(notMine, { text: "not a member here" }, "nm1");
    await c.send(conv, { text: "fine" }, "ok1");
    const refused: Array<[string, string, number]> = [];
    c.on("sendFailed", (f) => refused.push([f.item.client_msg_id, f.reason, f.error.status]));
    await c.start();
    await until(() => c.outbox().length === 0);
    c.stop();
    expect(refused).toEqual([
      ["big", "payload_too_large", 413],
      ["deep", "invalid_request", 400],
      ["nm1", "forbidden", 403],
    ]);
    expect(await messageIds(alice, conv)).toEqual(["ok1"]);
    expect(await storage.get("od:outbox")).toEqual([]);
  });

  it("send() refuses a body the server would refuse, instead of queueing it", async () => {
    const { bob, conv } = await fixture(0);
    const c = client(bob, new MemoryStorage());
    let deep: JsonValue = 0;
    for (let i = 0; i < 70; i++) deep = { d: deep };
    await expect(c.send(conv, { text: "x".repeat(70 * 1024) })).rejects.toBeInstanceOf(RangeError);
    await expect(c.send(conv, deep)).rejects.toBeInstanceOf(RangeError);
    expect(c.outbox()).toEqual([]);
  });

  it("a read mark refused for good (not a member) is dropped with readFailed; the others of the same request land", async () => {
    const { alice, bob, conv } = await fixture(2);
    const carol = await Device.of(uid("carol"));
    const notMine = await alice.createConversation([carol.user]);
    await sendMany(alice, notMine, 1);
    const c = client(bob, new MemoryStorage());
    await c.markRead(conv, 2);
    await c.markRead(notMine, 2);
    const failed: Array<[string, number, string]> = [];
    c.on("readFailed", (f) => failed.push([f.conversationId, f.seq, f.reason]));
    await c.sync();
    expect(failed).toEqual([[notMine, 2, "forbidden"]]);
    expect(c.conversation(conv)?.read_pending).toBeNull();
    expect(c.conversation(notMine)?.read_pending).toBeNull();
    expect((await bob.syncEntry(conv))?.read).toBe(2);
  });
});
