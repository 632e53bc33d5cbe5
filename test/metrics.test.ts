/**
 * Sharded metrics: isolates (here: separate buffers with their own home shard)
 * flush to different MetricsDO shards, and the admin view merges them exactly:
 * counters and histograms sum, and a gauge source's newest report wins even
 * when the reports come from different isolates in the wrong order.
 */
import { runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { TUNING } from "../src/config/tuning";
import { MetricsBuffer, type MetricsBatch } from "../src/observability/metrics";
import type { MetricsSnapshot } from "../src/observability/metrics-do";
import { gaugeShard, metricsShardName } from "../src/observability/shards";
import { mergeSnapshots, readMetrics } from "../src/observability/snapshot";
import { SIGNALS } from "../src/observability/signals";
import { BASE, request, sleep, testEnv, uid } from "./helpers";

const ADMIN = "test-admin";
const shardStub = (shard: number) => testEnv.METRICS.get(testEnv.METRICS.idFromName(metricsShardName(shard)));
/** Three isolates that chose different shards. */
const HOMES = [0, 5, 11] as const;

function counterOf(snap: MetricsSnapshot, name: string, labels: Record<string, string>): number | undefined {
  return snap.counters.find((c) => c.name === name && JSON.stringify(c.labels) === JSON.stringify(labels))?.value;
}

/** Cumulative bucket counts of a histogram, +Inf last, as the admin JSON has them. */
function buckets(snap: MetricsSnapshot, name: "sync_page_seconds"): number[] {
  const h = snap.histograms.find((x) => x.name === name);
  return [...SIGNALS[name].buckets, Infinity].map((le) => h?.buckets.find((b) => b.le === le)?.count ?? 0);
}

describe("mergeSnapshots", () => {
  it("sums counters by name and label set, histograms bucket by bucket, and takes gauges' max and summed sources", () => {
    const a: MetricsSnapshot = {
      at: 10,
      counters: [
        { name: "shed_total", labels: { status: "503" }, value: 2 },
        { name: "sync_requests_total", labels: {}, value: 1 },
      ],
      gauges: [{ name: "oldest_undelivered_seconds", value: 4, sources: 2 }],
      histograms: [{ name: "sync_page_seconds", buckets: [{ le: 0.5, count: 1 }, { le: Infinity, count: 1 }], sum: 0.25, count: 1 }],
    };
    const b: MetricsSnapshot = {
      at: 20,
      counters: [
        { name: "shed_total", labels: { status: "429" }, value: 5 },
        { name: "shed_total", labels: { status: "503" }, value: 3 },
      ],
      gauges: [{ name: "oldest_undelivered_seconds", value: 9, sources: 1 }],
      histograms: [{ name: "sync_page_seconds", buckets: [{ le: 0.01, count: 2 }, { le: 0.5, count: 2 }, { le: Infinity, count: 3 }], sum: 4, count: 3 }],
    };
    expect(mergeSnapshots([a, b])).toEqual({
      at: 20,
      counters: [
        { name: "shed_total", labels: { status: "429" }, value: 5 },
        { name: "shed_total", labels: { status: "503" }, value: 5 },
        { name: "sync_requests_total", labels: {}, value: 1 },
      ],
      gauges: [{ name: "oldest_undelivered_seconds", value: 9, sources: 3 }],
      histograms: [{ name: "sync_page_seconds", buckets: [{ le: 0.01, count: 2 }, { le: 0.5, count: 3 }, { le: Infinity, count: 4 }], sum: 4.25, count: 4 }],
    });
  });
});

describe("metrics written through several shards", () => {
  it("come back merged exactly: counters and histograms sum over the shards", async () => {
    const tag = uid("run");
    const before = await readMetrics(testEnv);
    const values = [[0.004, 0.2], [0.03, 3], [0.2, 0.7, 0.001]];
    for (const [i, home] of HOMES.entries()) {
      const isolate = new MetricsBuffer(home);
      isolate.count(testEnv, "shed_total", i + 1, { status: "503", run: tag });
      isolate.count(testEnv, "shed_total", 10, { run: tag, status: "503" }); // same label set, other key order
      for (const v of values[i]!) isolate.observe(testEnv, "sync_page_seconds", v);
      await isolate.flush(testEnv, true);
    }
    // Each part landed on its own shard…
    for (const [i, home] of HOMES.entries()) {
      expect(counterOf(await shardStub(home).snapshot(), "shed_total", { run: tag, status: "503" })).toBe(i + 1 + 10);
    }
    // …and the merged view is their exact sum.
    const after = await readMetrics(testEnv);
    expect(counterOf(after, "shed_total", { run: tag, status: "503" })).toBe(1 + 2 + 3 + 30);
    const all = values.flat();
    const expected = [...SIGNALS.sync_page_seconds.buckets, Infinity].map((le) => all.filter((v) => v <= le).length);
    const grown = buckets(after, "sync_page_seconds").map((n, i) => n - buckets(before, "sync_page_seconds")[i]!);
    expect(grown).toEqual(expected);
    const h = (s: MetricsSnapshot) => s.histograms.find((x) => x.name === "sync_page_seconds")!;
    expect(h(after).count - h(before).count).toBe(all.length);
    expect(h(after).sum - h(before).sum).toBeCloseTo(all.reduce((s, v) => s + v, 0), 9);
  });

  it("observations are counted into buckets in the isolate: many of them never force a flush, and arrive exactly", async () => {
    const before = await readMetrics(testEnv);
    const env = { ...testEnv, METRICS_FLUSH_MS: "60000" }; // the production cadence (tests flush at once)
    const isolate = new MetricsBuffer(HOMES[0]);
    isolate.count(env, "sync_requests_total", 1, { run: uid("run") });
    await isolate.flush(env, true); // the flush interval starts now
    const values = Array.from({ length: 2_000 }, (_, i) => (i % 40) * 0.001 + (i % 7 === 0 ? 3 : 0));
    for (const v of values) isolate.observe(env, "sync_page_seconds", v);
    // One histogram entry however many observations (a batch of 500 entries would flush early).
    expect(isolate.flush(env)).toBeNull();
    await isolate.flush(env, true);
    const after = await readMetrics(testEnv);
    const expected = [...SIGNALS.sync_page_seconds.buckets, Infinity].map((le) => values.filter((v) => v <= le).length);
    expect(buckets(after, "sync_page_seconds").map((n, i) => n - buckets(before, "sync_page_seconds")[i]!)).toEqual(expected);
    const h = (s: MetricsSnapshot) => s.histograms.find((x) => x.name === "sync_page_seconds")!;
    expect(h(after).count - h(before).count).toBe(values.length);
    expect(h(after).sum - h(before).sum).toBeCloseTo(values.reduce((s, v) => s + v, 0), 6);
  });

  it("a batch from an isolate of the previous version (observations, no histograms) still adds its counters", async () => {
    const tag = uid("run");
    const old = { counters: [{ name: "shed_total", labels: JSON.stringify({ run: tag }), value: 3 }], gauges: [], observations: [{ name: "sync_page_seconds", value: 0.01 }] };
    await shardStub(HOMES[1]).add(old as unknown as MetricsBatch);
    expect(counterOf(await shardStub(HOMES[1]).snapshot(), "shed_total", { run: tag })).toBe(3);
  });

  it("feed the admin JSON and the Prometheus text with the merged values", async () => {
    const tag = uid("run");
    for (const home of HOMES) {
      const isolate = new MetricsBuffer(home);
      isolate.count(testEnv, "sync_requests_total", 2, { run: tag });
      await isolate.flush(testEnv, true);
    }
    const json = await request<MetricsSnapshot>("GET", "/admin/api/metrics.json", { token: ADMIN });
    expect(json.status).toBe(200);
    expect(counterOf(json.body, "sync_requests_total", { run: tag })).toBe(6);
    const text = await (await fetchAdmin("/admin/api/metrics")).text();
    expect(text.split("\n")).toContain(`offline_delivery_sync_requests_total{run="${tag}"} 6`);
  });

  it("a gauge source's newest report wins, whichever isolate sent it and in whatever order they arrive", async () => {
    const source = uid("conv");
    const owner = gaugeShard("oldest_undelivered_seconds", source);
    const before = await readMetrics(testEnv);
    const sourcesBefore = before.gauges.find((g) => g.name === "oldest_undelivered_seconds")?.sources ?? 0;
    const older = new MetricsBuffer(HOMES[1]);
    const newer = new MetricsBuffer(HOMES[2]);
    older.gauge(testEnv, "oldest_undelivered_seconds", source, 1_000_000);
    await sleep(5);
    newer.gauge(testEnv, "oldest_undelivered_seconds", source, 2);
    // The newer report arrives first; the older one, sent later, must not overwrite it.
    await newer.flush(testEnv, true);
    await older.flush(testEnv, true);
    const rows = await Promise.all(
      Array.from({ length: TUNING.metricsShards }, (_, shard) =>
        runInDurableObject(shardStub(shard), (_obj, state) => state.storage.sql.exec<{ value: number }>("SELECT value FROM gauges WHERE source = ?", source).toArray()),
      ),
    );
    // Both isolates' reports met on the source's shard, and only there.
    expect(rows.map((r, shard) => (r.length > 0 ? shard : -1)).filter((s) => s >= 0)).toEqual([owner]);
    expect(rows[owner]).toEqual([{ value: 2 }]);
    const after = await readMetrics(testEnv);
    const gauge = after.gauges.find((g) => g.name === "oldest_undelivered_seconds")!;
    expect(gauge.sources).toBe(sourcesBefore + 1);
    expect(gauge.value).toBeLessThan(1_000_000);
  });
});

function fetchAdmin(path: string): Promise<Response> {
  return SELF.fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
}
