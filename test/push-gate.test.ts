/**
 * The sharded push gate: the provider-wide cap holds across shards, a 429 or
 * an opened circuit seen by one shard holds them all, a batch takes its
 * permits in a few calls and counts each deferred task once, and dead letters
 * stay bounded with the newest listed. Each test uses a provider name of its
 * own, so the gates (in-memory buckets) start fresh.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { settings } from "../src/config/settings";
import { TUNING } from "../src/config/tuning";
import { acquirePermits, handlePushBatch } from "../src/push/consumer";
import { deadLetterGateName, gateShardCount, gateShardName, readGate } from "../src/push/gate-do";
import type { PushTask } from "../src/push/types";
import { sleep, testEnv, uid } from "./helpers";

const tuning = settings(testEnv).push;
const shardCount = gateShardCount(tuning);
const shard = (provider: string, i: number) => testEnv.PUSH_GATE.get(testEnv.PUSH_GATE.idFromName(gateShardName(provider, i)));
const shards = (provider: string) => Array.from({ length: shardCount }, (_, i) => shard(provider, i));

describe("shard layout", () => {
  it("splits the provider's bucket so the shards' bursts add up to the provider's burst", () => {
    expect(shardCount).toBeGreaterThan(1);
    expect(shardCount).toBeLessThanOrEqual(TUNING.pushGateShards);
    expect(tuning.burst / shardCount).toBeGreaterThanOrEqual(1);
  });
});

describe("provider-wide cap across shards", () => {
  it("one shard grants only its share; a batch collects the whole burst from all shards, and no more", async () => {
    const lone = uid("prov");
    expect((await shard(lone, 0).acquire(50)).granted).toBe(Math.floor(tuning.burst / shardCount));

    const provider = uid("prov");
    const first = await acquirePermits(testEnv, provider, 50);
    expect(first.shards).toHaveLength(tuning.burst);
    expect(new Set(first.shards).size).toBe(shardCount);
    expect(first.refused?.reason).toBe("rate");
    expect((await acquirePermits(testEnv, provider, 50)).shards.length).toBeLessThanOrEqual(1);
  });

  it("total grants over a window stay within rate × window + burst", async () => {
    const provider = uid("prov");
    const started = Date.now();
    let granted = 0;
    let calls = 0;
    while (Date.now() - started < 2500) {
      granted += (await acquirePermits(testEnv, provider, 50)).shards.length;
      calls += 1;
      await sleep(20);
    }
    const windowSeconds = (Date.now() - started) / 1000;
    expect(calls).toBeGreaterThan(10);
    expect(granted).toBeLessThanOrEqual(tuning.ratePerSecond * windowSeconds + tuning.burst);
    // Every shard's refill was used, not one shard's: each may end the window with less than one token unspent.
    expect(granted).toBeGreaterThanOrEqual(Math.floor(tuning.burst + tuning.ratePerSecond * windowSeconds - shardCount));
    const view = await readGate(testEnv, provider);
    expect(view.stats.granted).toBe(granted);
  });
});

describe("provider-wide holds", () => {
  it("a 429 seen by one shard pauses the others until its Retry-After", async () => {
    const provider = uid("prov");
    await shard(provider, shardCount - 1).report(provider, [{ report: "delivered" }, { report: "throttled", retryAfterSeconds: 2 }]);
    for (const s of shards(provider)) {
      const permits = await s.acquire(1);
      expect(permits.granted).toBe(0);
      expect(permits.refused?.reason).toBe("paused");
      expect(permits.refused!.retryAfterMs).toBeGreaterThan(1000);
      expect(permits.refused!.retryAfterMs).toBeLessThanOrEqual(2000);
    }
    const batch = await acquirePermits(testEnv, provider, 10);
    expect(batch.shards).toEqual([]);
    expect(batch.refused?.reason).toBe("paused");
    // Every refused permit counted once: one per shard asked directly, ten for the batch.
    expect((await readGate(testEnv, provider)).stats).toMatchObject({ throttled: 1, delivered: 1, denied: shardCount + 10 });
    await sleep(2100);
    expect((await acquirePermits(testEnv, provider, 10)).shards.length).toBeGreaterThan(0);
  });

  it("a circuit opened by one shard's 5xx is open on all of them", async () => {
    const provider = uid("prov");
    const errors = Array.from({ length: tuning.breakerThreshold }, () => ({ report: "server_error" as const }));
    await shard(provider, 0).report(provider, errors);
    for (const s of shards(provider)) {
      const permits = await s.acquire(1);
      expect(permits.refused?.reason).toBe("circuit_open");
      expect((await s.stats()).circuit_open).toBe(true);
    }
    const view = await readGate(testEnv, provider);
    expect(view.circuit_open).toBe(true);
    expect(view.stats).toMatchObject({ server_errors: tuning.breakerThreshold, breaker_trips: 1 });
  });

  it("errors below the threshold on one shard open nothing", async () => {
    const provider = uid("prov");
    const errors = Array.from({ length: tuning.breakerThreshold - 1 }, () => ({ report: "server_error" as const }));
    await shard(provider, 1).report(provider, errors);
    expect((await readGate(testEnv, provider)).circuit_open).toBe(false);
    expect((await acquirePermits(testEnv, provider, 1)).shards).toHaveLength(1);
  });
});

describe("the consumer's batches", () => {
  const task = (): PushTask => ({
    user_id: uid("u"),
    device_id: "phone",
    target: { provider: "webhook", token: uid("tok") },
    conversation_id: "c1",
    head_seq: 1,
    unread: 1,
    conversations: [{ id: "c1", head_seq: 1, unread: 1 }],
    created_at: Date.now(),
  });

  it("sends what the gate granted, defers the rest, and counts every task exactly once", async () => {
    await sleep(1200); // full buckets
    const before = (await readGate(testEnv, "webhook")).stats;
    const acks: string[] = [];
    const retries: string[] = [];
    const messages = Array.from({ length: 12 }, (_, i) => ({
      id: `g${i}`,
      timestamp: new Date(),
      attempts: 1,
      body: task(),
      ack: () => void acks.push(`g${i}`),
      retry: () => void retries.push(`g${i}`),
    }));
    await handlePushBatch({ queue: "push", messages, metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } }, retryAll: () => undefined, ackAll: () => undefined }, testEnv);
    const after = (await readGate(testEnv, "webhook")).stats;
    expect(acks).toHaveLength(12);
    expect(retries).toEqual([]);
    const granted = after.granted - before.granted;
    expect(granted).toBeGreaterThanOrEqual(1);
    expect(granted).toBeLessThanOrEqual(tuning.burst + 1);
    expect(after.delivered - before.delivered).toBe(granted);
    expect(after.denied - before.denied).toBe(12 - granted);
  });
});

describe("dead letters", () => {
  it("stay bounded per provider, and the admin view lists the newest", async () => {
    const provider = uid("prov");
    const letter = (i: number) => ({ user_id: "u", device_id: "d", conversation_id: "c", attempts: 8, reason: `r${i}` });
    const total = TUNING.maxDeadLetters + 5;
    for (let i = 0; i < total; i += 250) {
      const chunk = Array.from({ length: Math.min(250, total - i) }, (_, j) => letter(i + j));
      await testEnv.PUSH_GATE.get(testEnv.PUSH_GATE.idFromName(deadLetterGateName(provider))).recordDeadLetters(chunk);
    }
    const view = await readGate(testEnv, provider);
    expect(view.stats.dead_letters).toBe(total);
    expect(view.dead_letters.slice(0, 3).map((d) => d.reason)).toEqual([`r${total - 1}`, `r${total - 2}`, `r${total - 3}`]);
    const kept = await runInDurableObject(shard(provider, 0), (_obj, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM dead_letters").one(),
    );
    expect(kept.n).toBe(TUNING.maxDeadLetters);
  });
});
