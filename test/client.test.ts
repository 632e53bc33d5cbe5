/**
 * The client SDK against the real Worker (Workers pool): fetch = SELF.fetch,
 * sockets upgrade through SELF.fetch. Faults are injected in the fetch and
 * socket factory the SDK is given.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  addSpans,
  backoffDelay,
  fetchSocketFactory,
  HttpError,
  MemoryStorage,
  NetworkError,
  type ClientStorage,
  type JsonValue,
  type StorageOp,
} from "../src/client";
import type { ToDeviceEntry } from "../src/protocol/types";
import { client, cuttable, fixture, Recorder, selfFetch, serverReceived, sorted, until } from "./client-fixtures";
import { flush, range, sendMany, uid } from "./helpers";

describe("coverage and backoff (pure)", () => {
  it("folds spans into the contiguous watermark", () => {
    expect(addSpans({ upTo: 0, above: [] }, [[5, 7], [1, 2]])).toEqual({ upTo: 2, above: [[5, 7]] });
    expect(addSpans({ upTo: 2, above: [[5, 7]] }, [[3, 4]])).toEqual({ upTo: 7, above: [] });
    expect(addSpans({ upTo: 2, above: [[9, 9]] }, [[5, 6], [7, 8]])).toEqual({ upTo: 2, above: [[5, 9]] });
  });

  it("full jitter stays under the ceiling and never undercuts Retry-After", () => {
    for (let a = 0; a < 10; a++) {
      const d = backoffDelay(a, new NetworkError("x"), { baseMs: 100, maxMs: 1000 });
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(1000, 100 * 2 ** a));
    }
    expect(backoffDelay(0, new HttpError(503, "overloaded", "busy", 3), { baseMs: 100 }, () => 0.99)).toBe(3000);
  });
});

describe("client sync", () => {
  it("pulls newest page first, backfills forward, delivers each entry once and acks received", async () => {
    const { bob, conv } = await fixture(45);
    const rec = new Recorder();
    const storage = new MemoryStorage();
    const c = client(bob, storage, { pageSize: 10, onEntries: rec.onEntries });
    c.show(conv);
    await c.sync();
    expect(rec.batches[0]!.source).toBe("newest");
    expect(rec.batches[0]!.messages.map((m) => m.seq)).toEqual(range(37, 46));
    expect(rec.batches.slice(1).every((b) => b.source === "backfill")).toBe(true);
    expect(sorted(rec.seqs)).toEqual(range(1, 46));
    expect(new Set(rec.seqs).size).toBe(rec.seqs.length);
    expect(c.conversation(conv)).toMatchObject({ received: 46, above: [], head_seq: 46 });
    expect(await serverReceived(bob, conv)).toBe(46);
    expect(await storage.keys(`app:msg:${conv}:`)).toHaveLength(46);
    // A second pass finds nothing new and hands the app nothing.
    await c.sync();
    expect(rec.seqs).toHaveLength(46);
    expect(c.checkpoint).not.toBeNull();
  });

  it("a connection dropped mid-page (response lost) is retried without loss or duplicate", async () => {
    const { bob, conv } = await fixture(30);
    const rec = new Recorder();
    let calls = 0;
    const dropping = async (req: Request) => {
      calls += 1;
      const res = await SELF.fetch(req);
      // The server answered the 4th request, the client never sees it.
      if (calls === 4) throw new TypeError("network connection lost");
      return res;
    };
    const c = client(bob, new MemoryStorage(), { pageSize: 7, onEntries: rec.onEntries, fetch: dropping });
    c.show(conv);
    await expect(c.sync()).rejects.toBeInstanceOf(NetworkError);
    const partial = rec.seqs.length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(31);
    await c.sync();
    expect(sorted(rec.seqs)).toEqual(range(1, 31));
    expect(new Set(rec.seqs).size).toBe(31);
  });

  it("the background loop retries a failed fetch (Nth call throws) with backoff until synced", async () => {
    const { bob, conv } = await fixture(25);
    const rec = new Recorder();
    let calls = 0;
    const flaky = async (req: Request) => {
      calls += 1;
      if (calls === 3 || calls === 5) throw new TypeError("connection reset");
      return SELF.fetch(req);
    };
    const c = client(bob, new MemoryStorage(), { pageSize: 5, onEntries: rec.onEntries, fetch: flaky });
    const retries: number[] = [];
    c.on("retry", (r) => retries.push(r.delayMs));
    c.show(conv);
    await c.start();
    await c.whenIdle();
    c.stop();
    expect(retries.length).toBe(2);
    expect(sorted(rec.seqs)).toEqual(range(1, 26));
    expect(new Set(rec.seqs).size).toBe(26);
  });

  it("honours Retry-After on 503 and 429 before retrying", async () => {
    const { bob, conv } = await fixture(3);
    const rec = new Recorder();
    const times: number[] = [];
    let calls = 0;
    const shedding = async (req: Request) => {
      calls += 1;
      times.push(Date.now());
      if (calls === 1) {
        return new Response(JSON.stringify({ error: { code: "overloaded", message: "shed" } }), { status: 503, headers: { "retry-after": "1", "content-type": "application/json" } });
      }
      if (calls === 2) {
        return new Response(JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }), { status: 429, headers: { "retry-after": "1", "content-type": "application/json" } });
      }
      return SELF.fetch(req);
    };
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, fetch: shedding, backoff: { baseMs: 1, maxMs: 5 } });
    c.show(conv);
    await c.start();
    await c.whenIdle();
    c.stop();
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1000);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(1000);
    expect(sorted(rec.seqs)).toEqual(range(1, 4));
  });

  it("a crash mid-sync resumes from the persisted cursor with a new instance, no duplicate", async () => {
    const { bob, conv } = await fixture(60);
    const storage = new MemoryStorage();
    const rec = new Recorder();
    const urls: string[] = [];
    let pages = 0;
    // First instance: "crashes" (its fetch dies for good) after 4 history pages.
    const dying = async (req: Request) => {
      if (req.url.includes("/messages")) pages += 1;
      if (pages > 4) throw new TypeError("process killed");
      return SELF.fetch(req);
    };
    const first = client(bob, storage, { pageSize: 8, onEntries: rec.onEntries, fetch: dying });
    first.show(conv);
    await expect(first.sync()).rejects.toBeInstanceOf(NetworkError);
    const persisted = (await storage.get(`od:conv:${conv}`)) as { received: number; above: number[][] };
    expect(persisted.received).toBeGreaterThan(0);
    expect(persisted.above).toEqual([[54, 61]]);

    const logging = async (req: Request) => {
      urls.push(req.url);
      return SELF.fetch(req);
    };
    const second = client(bob, storage, { pageSize: 8, onEntries: rec.onEntries, fetch: logging });
    second.show(conv);
    await second.sync();
    const firstPage = urls.find((u) => u.includes("/messages"))!;
    // Resumes forward from the persisted watermark; the newest page is not fetched again.
    expect(new URL(firstPage).searchParams.get("after")).toBe(String(persisted.received));
    expect(sorted(rec.seqs)).toEqual(range(1, 61));
    expect(new Set(rec.seqs).size).toBe(61);
    expect(await storage.keys(`app:msg:${conv}:`)).toHaveLength(61);
  });

  it("a crash between the app's handler and the commit applies nothing twice (atomic batch)", async () => {
    const { bob, conv } = await fixture(20);
    const inner = new MemoryStorage();
    let batches = 0;
    // The storage "crashes" on the 3rd batch: neither the app's writes nor the cursor land.
    const crashing: ClientStorage = {
      get: (k) => inner.get(k),
      set: (k, v) => inner.set(k, v),
      delete: (k) => inner.delete(k),
      keys: (p) => inner.keys(p),
      batch: async (ops) => {
        batches += 1;
        if (batches === 3) throw new Error("disk gone");
        return inner.batch(ops);
      },
    };
    const rec = new Recorder();
    const first = client(bob, crashing, { pageSize: 5, onEntries: rec.onEntries });
    first.show(conv);
    await expect(first.sync()).rejects.toThrow("disk gone");
    const second = client(bob, inner, { pageSize: 5, onEntries: rec.onEntries });
    second.show(conv);
    await second.sync();
    // The handler saw one page twice (its commit failed), but what was applied is exactly once.
    const keys = await inner.keys(`app:msg:${conv}:`);
    expect(keys).toHaveLength(21);
    expect(sorted((await Promise.all(keys.map((k) => inner.get(k)))) as number[])).toEqual(range(1, 21));
  });

  it("epoch_mismatch (stale epoch in storage) resets local state and resyncs cleanly", async () => {
    const { bob, conv } = await fixture(6);
    const storage = new MemoryStorage();
    const stale: JsonValue = { id: conv, epoch: "stale-epoch", received: 5, above: [], head_seq: 5, floor_seq: 0, read: 0, unread: 0, membership: "member", server_received: 5, last_activity_at: null, gaps: [], read_pending: null };
    await storage.batch([
      { op: "set", key: `od:conv:${conv}`, value: stale },
      { op: "set", key: `app:msg:${conv}:1`, value: 1 },
    ]);
    const rec = new Recorder();
    const resets: Array<{ oldEpoch: string | null; newEpoch: string | null }> = [];
    const c = client(bob, storage, {
      onEntries: rec.onEntries,
      onReset: async (info) => {
        resets.push({ oldEpoch: info.oldEpoch, newEpoch: info.newEpoch });
        const keys = await storage.keys(`app:msg:${info.conversationId}:`);
        return keys.map((key): StorageOp => ({ op: "delete", key }));
      },
    });
    c.show(conv);
    await c.sync();
    const real = (await bob.summary(conv)).body.epoch;
    expect(resets).toEqual([{ oldEpoch: "stale-epoch", newEpoch: real }]);
    expect(sorted(rec.seqs)).toEqual(range(1, 7));
    expect(c.conversation(conv)).toMatchObject({ epoch: real, received: 7 });
    expect(await storage.keys(`app:msg:${conv}:`)).toHaveLength(7);
  });

  it("a stale epoch on the live socket upgrade (409) resets too", async () => {
    const { bob, conv } = await fixture(2);
    const storage = new MemoryStorage();
    const rec = new Recorder();
    const c = client(bob, storage, { onEntries: rec.onEntries, socketFactory: fetchSocketFactory(selfFetch) });
    c.show(conv);
    await c.sync();
    // The epoch changes under the client (simulated: its stored epoch goes stale), with nothing to pull.
    const current = c.conversation(conv)!;
    const resets: string[] = [];
    const c2 = client(bob, storage, { onEntries: rec.onEntries, socketFactory: fetchSocketFactory(selfFetch), onReset: (i) => void resets.push(String(i.oldEpoch)) });
    await storage.set(`od:conv:${conv}`, { ...current, epoch: "old", server_epoch: "old", gaps: [], above: [] });
    c2.show(conv);
    await c2.start();
    await until(() => resets.length === 1 && c2.conversation(conv)?.received === 3);
    c2.stop();
    expect(resets).toEqual(["old"]);
  });
});

describe("client outbox", () => {
  it("sends queued messages once after a reload, even when a confirmation is lost", async () => {
    const { alice, bob, conv } = await fixture(0);
    const storage = new MemoryStorage();
    const offline = client(bob, storage);
    for (let i = 0; i < 3; i++) await offline.send(conv, { text: `offline ${i}` }, `cm${i}`);
    expect(offline.outbox()).toHaveLength(3);

    // "Reload": a new instance over the same storage still has the outbox.
    let posts = 0;
    const losing = async (req: Request) => {
      const res = await SELF.fetch(req);
      if (req.method === "POST" && req.url.endsWith("/messages") && ++posts === 1) throw new TypeError("response lost");
      return res;
    };
    const rec = new Recorder();
    const reloaded = client(bob, storage, { fetch: losing, onEntries: rec.onEntries });
    await reloaded.ready();
    expect(reloaded.outbox().map((i) => i.client_msg_id)).toEqual(["cm0", "cm1", "cm2"]);
    const sent: Array<{ id: string; duplicate: boolean }> = [];
    reloaded.on("sent", (s) => sent.push({ id: s.clientMsgId, duplicate: s.duplicate }));
    reloaded.show(conv);
    await reloaded.start();
    await reloaded.whenIdle();
    await until(() => reloaded.outbox().length === 0);
    reloaded.stop();
    expect(sent).toEqual([
      { id: "cm0", duplicate: true },
      { id: "cm1", duplicate: false },
      { id: "cm2", duplicate: false },
    ]);
    const page = await alice.page(conv, "after=0");
    const ids = page.body.messages.map((m) => m.client_msg_id).filter((x) => x !== null);
    expect(ids).toEqual(["cm0", "cm1", "cm2"]);
    expect(await storage.get("od:outbox")).toEqual([]);
  });

  it("drops a message the server refuses for good and reports it", async () => {
    const { bob } = await fixture(0);
    const c = client(bob, new MemoryStorage());
    const failed: string[] = [];
    c.on("sendFailed", (f) => failed.push(`${f.item.client_msg_id}:${f.error.code}`));
    await c.send(uid("nosuchconv"), { text: "x" }, "lost1");
    await c.start();
    await until(() => c.outbox().length === 0);
    c.stop();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/^lost1:(forbidden|not_found)$/);
  });
});

describe("client sockets", () => {
  it("live frames deliver once; sends go over the socket; a dropped socket catches up without duplicates", async () => {
    const { alice, bob, conv } = await fixture(2);
    const rec = new Recorder();
    const { factory, open } = cuttable();
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, socketFactory: factory });
    const live: boolean[] = [];
    c.on("socket", (s) => s.conversationId === conv && live.push(s.open));
    const via: string[] = [];
    c.on("sent", (s) => via.push(s.via));
    c.show(conv);
    await c.start();
    await c.whenIdle();
    await until(() => live.includes(true));
    await sendMany(alice, conv, 4, "live");
    await until(() => rec.seqs.length === 7);
    expect(rec.batches.some((b) => b.source === "live")).toBe(true);

    await c.send(conv, { text: "from bob" }, "bob1");
    await until(() => rec.seqs.length === 8);
    expect(via).toEqual(["socket"]);

    // Cut the socket; alice keeps talking; bob reconnects (after=received) and catches up.
    open[open.length - 1]!.close(1000, "cut");
    await sendMany(alice, conv, 3, "gap");
    await until(() => rec.seqs.length === 11);
    expect(sorted(rec.seqs)).toEqual(range(1, 11));
    expect(new Set(rec.seqs).size).toBe(11);
    await until(async () => (await serverReceived(bob, conv)) === 11);
    c.stop();
  });

  it("an inbox poke triggers a sync that updates summaries and pulls shown conversations", async () => {
    const { alice, bob, conv } = await fixture(1);
    const rec = new Recorder();
    const c = client(bob, new MemoryStorage(), { onEntries: rec.onEntries, socketFactory: fetchSocketFactory(selfFetch), inbox: true });
    const pokes: number[] = [];
    c.on("poke", (p) => pokes.push(p.head_seq));
    let inboxOpen = false;
    c.on("socket", (s) => {
      if (s.conversationId === null) inboxOpen = s.open;
    });
    await c.start();
    await c.whenIdle();
    // A poke is a hint to open inbox sockets only: the send waits until the inbox is open.
    await until(() => inboxOpen);
    await alice.sendOk(conv, "poke me");
    await flush(conv);
    await until(() => pokes.length > 0 && c.conversation(conv)?.head_seq === 3);
    expect(c.conversation(conv)?.unread).toBe(2);
    expect(rec.seqs).toEqual([]); // not shown: summaries only
    c.stop();
  });
});

describe("client to-device", () => {
  it("hands entries to the app once, then acks them", async () => {
    const { alice, bob } = await fixture(0);
    await bob.register();
    for (let i = 0; i < 3; i++) {
      const res = await alice.post("/v1/to-device", { user: bob.user, device: bob.device, client_msg_id: `td${i}`, body: { n: i } });
      expect(res.status).toBe(202);
    }
    const got: ToDeviceEntry[] = [];
    const c = client(bob, new MemoryStorage(), { pageSize: 2, onToDevice: (entries) => void got.push(...entries) });
    await c.sync();
    expect(got.map((e) => e.body)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    const left = await bob.get<{ entries: unknown[] }>("/v1/to-device");
    expect(left.body.entries).toEqual([]);
    await c.sync();
    expect(got).toHaveLength(3);
  });
});
