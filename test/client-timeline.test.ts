/**
 * v1.1 "the inbox in one round trip": the sync pass asks for `timeline_limit`
 * and hands each conversation's timeline to the app through the exactly-once
 * path; only the conversation being opened pages history. Needs the server's
 * GET /v1/sync?timeline_limit= (PROTOCOL.md "v1.1 additions").
 */
import { describe, expect, it } from "vitest";
import { MemoryStorage, OfflineClient, type ClientStorage, type JsonValue, type StorageOp } from "../src/client";
import { client, fixture, loggingFetch, Recorder, serverReceived, sorted } from "./client-fixtures";
import { BASE, flush, range, sendMany } from "./helpers";

function historyRequests(requests: Array<{ url: URL }>): URL[] {
  return requests.map((r) => r.url).filter((u) => u.pathname.endsWith("/messages"));
}

describe("client timelines", () => {
  it("draws the inbox from one sync: each conversation's newest entries, exactly once, and no history request", async () => {
    const { alice, bob, conv: small } = await fixture(5);
    const big = await alice.createConversation([bob.user]);
    await sendMany(alice, big, 30);
    await flush(big);
    const rec = new Recorder();
    const { fetch, requests } = loggingFetch();
    const c = client(bob, new MemoryStorage(), { timelineLimit: 10, fetch, onEntries: rec.onEntries });
    await c.sync();

    expect(historyRequests(requests)).toEqual([]);
    expect(requests.find((r) => r.url.pathname === "/v1/sync")?.url.searchParams.get("timeline_limit")).toBe("10");
    expect(rec.batches.every((b) => b.source === "timeline")).toBe(true);
    const seqsOf = (id: string) => rec.batches.filter((b) => b.conversationId === id).flatMap((b) => b.messages.map((m) => m.seq));
    // Not limited: everything after this device's received cursor; the creation entry is seq 1.
    expect(seqsOf(small)).toEqual(range(1, 6));
    expect(c.conversation(small)).toMatchObject({ received: 6, above: [], head_seq: 6, history_before: null });
    // Limited: the newest 10; the hole below stays uncovered and is remembered for when the conversation opens.
    expect(seqsOf(big)).toEqual(range(22, 31));
    expect(c.conversation(big)).toMatchObject({ received: 0, above: [[22, 31]], head_seq: 31, history_before: 22 });
    // Reading a timeline moves no cursor: the SDK acks what it now has, the contiguous watermark.
    expect(await serverReceived(bob, small)).toBe(6);
    expect(await serverReceived(bob, big)).toBe(0);

    // Later: only what is new since, again as a timeline.
    await sendMany(alice, small, 2, "later");
    await flush(small);
    await c.sync();
    expect(seqsOf(small)).toEqual(range(1, 8));
    expect(await serverReceived(bob, small)).toBe(8);
    expect(historyRequests(requests)).toEqual([]);
  });

  it("opening a conversation with a limited timeline pages back from next_before, then forward; each entry once", async () => {
    const { alice, bob, conv } = await fixture(40);
    const other = await alice.createConversation([bob.user]);
    await sendMany(alice, other, 30);
    await flush(other);
    const rec = new Recorder();
    const storage = new MemoryStorage();
    const { fetch, requests } = loggingFetch();
    const c = client(bob, storage, { timelineLimit: 10, pageSize: 8, fetch, onEntries: rec.onEntries });
    await c.sync();
    expect(c.conversation(conv)).toMatchObject({ received: 0, above: [[32, 41]], history_before: 32 });

    c.show(conv);
    await c.sync();
    const pages = historyRequests(requests);
    // Newest history first (just below the timeline), then forward from the watermark; never the other conversation.
    expect(pages[0]!.searchParams.get("before")).toBe("32");
    expect(pages.slice(1).every((u) => u.searchParams.has("after"))).toBe(true);
    expect(pages.every((u) => u.pathname.includes(`/${conv}/`))).toBe(true);
    expect(rec.batches.find((b) => b.source === "newest")?.messages.map((m) => m.seq)).toEqual(range(24, 31));
    const mine = rec.batches.filter((b) => b.conversationId === conv).flatMap((b) => b.messages.map((m) => m.seq));
    expect(sorted(mine)).toEqual(range(1, 41));
    expect(new Set(mine).size).toBe(41);
    expect(c.conversation(conv)).toMatchObject({ received: 41, above: [], history_before: null });
    expect(await storage.keys(`app:msg:${conv}:`)).toHaveLength(41);
    expect(await serverReceived(bob, conv)).toBe(41);
    // The other conversation keeps its hole until it is opened.
    expect(c.conversation(other)).toMatchObject({ received: 0, history_before: 22 });
  });

  it("a crash after a timeline was handed over, before its checkpoint committed, repeats the page without duplicates", async () => {
    const { bob, conv } = await fixture(5);
    const inner = new MemoryStorage();
    // The storage "crashes" on the batch that would commit the checkpoint.
    const crashing: ClientStorage = {
      get: (k) => inner.get(k),
      set: (k, v) => inner.set(k, v),
      delete: (k) => inner.delete(k),
      keys: (p) => inner.keys(p),
      batch: async (ops) => {
        if (ops.some((o) => o.key === "od:checkpoint")) throw new Error("disk gone");
        return inner.batch(ops);
      },
    };
    const rec = new Recorder();
    await expect(client(bob, crashing, { timelineLimit: 10, onEntries: rec.onEntries }).sync()).rejects.toThrow("disk gone");
    expect(rec.seqs).toEqual(range(1, 6));
    const second = client(bob, inner, { timelineLimit: 10, onEntries: rec.onEntries });
    await second.sync();
    expect(rec.seqs).toEqual(range(1, 6));
    expect(second.checkpoint).not.toBeNull();
    expect(await inner.keys(`app:msg:${conv}:`)).toHaveLength(6);
  });

  it("a timeline for a conversation whose local epoch is stale resets it first, then delivers", async () => {
    const { bob, conv } = await fixture(4);
    const storage = new MemoryStorage();
    const stale: JsonValue = { id: conv, epoch: "stale-epoch", received: 3, above: [], head_seq: 3, floor_seq: 0, read: 0, unread: 0, membership: "member", server_received: 0, last_activity_at: null, gaps: [], read_pending: null };
    await storage.batch([
      { op: "set", key: `od:conv:${conv}`, value: stale },
      { op: "set", key: `app:msg:${conv}:1`, value: 1 },
    ]);
    const rec = new Recorder();
    const resets: Array<string | null> = [];
    const c = client(bob, storage, {
      timelineLimit: 10,
      onEntries: rec.onEntries,
      onReset: async (info) => {
        resets.push(info.oldEpoch);
        return (await storage.keys(`app:msg:${info.conversationId}:`)).map((key): StorageOp => ({ op: "delete", key }));
      },
    });
    await c.sync();
    const real = (await bob.summary(conv)).body.epoch;
    expect(resets).toEqual(["stale-epoch"]);
    expect(sorted(rec.seqs)).toEqual(range(1, 5));
    expect(c.conversation(conv)).toMatchObject({ epoch: real, received: 5 });
    expect(await storage.keys(`app:msg:${conv}:`)).toHaveLength(5);
  });

  it("asks for 20 entries per conversation by default, and timelineLimit 0 turns timelines off", async () => {
    const { bob } = await fixture(1);
    const on = loggingFetch();
    await new OfflineClient({ baseUrl: BASE, token: bob.jwt, storage: new MemoryStorage(), fetch: on.fetch, socketFactory: null }).sync();
    expect(on.requests.find((r) => r.url.pathname === "/v1/sync")?.url.searchParams.get("timeline_limit")).toBe("20");
    const off = loggingFetch();
    await client(bob, new MemoryStorage(), { timelineLimit: 0, fetch: off.fetch }).sync();
    expect(off.requests.find((r) => r.url.pathname === "/v1/sync")?.url.searchParams.has("timeline_limit")).toBe(false);
    expect(() => client(bob, new MemoryStorage(), { timelineLimit: 51 })).toThrow(RangeError);
  });
});
