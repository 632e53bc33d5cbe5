/**
 * The service-wide view of the signals: every metrics shard read at once and
 * merged. The merge is exact because of how ./shards.ts routes writes: a
 * counter or histogram is a sum of its parts on every shard, and each gauge
 * source lives on exactly one shard, so the highest fresh value is the highest
 * of the shards' and the source counts add up.
 */
import type { Env } from "../env";
import { call } from "../platform/rpc";
import { canonical } from "./metrics";
import type { MetricsSnapshot } from "./metrics-do";
import { allMetricsShards, metricsShardName } from "./shards";

type Counter = MetricsSnapshot["counters"][number];
type Gauge = MetricsSnapshot["gauges"][number];
type Histogram = MetricsSnapshot["histograms"][number];

/** All shards in parallel. One unreadable shard fails the read: a partial sum would look like a counter reset. */
export async function readMetrics(env: Env): Promise<MetricsSnapshot> {
  const parts = await Promise.all(allMetricsShards().map((shard) => call(env.METRICS, metricsShardName(shard), "snapshot")));
  return mergeSnapshots(parts);
}

export function mergeSnapshots(parts: readonly MetricsSnapshot[]): MetricsSnapshot {
  return {
    at: Math.max(0, ...parts.map((p) => p.at)),
    counters: mergeCounters(parts.flatMap((p) => p.counters)),
    gauges: mergeGauges(parts.flatMap((p) => p.gauges)),
    histograms: mergeHistograms(parts.flatMap((p) => p.histograms)),
  };
}

/** Sums by name and label set; ordered by name, then labels, as one shard orders them. */
function mergeCounters(rows: readonly Counter[]): Counter[] {
  const byKey = new Map<string, Counter & { key: string }>();
  for (const c of rows) {
    const labels = canonical(c.labels);
    const key = `${c.name}|${labels}`;
    const seen = byKey.get(key);
    if (seen) seen.value += c.value;
    else byKey.set(key, { key: labels, name: c.name, labels: c.labels, value: c.value });
  }
  return [...byKey.values()]
    .sort((a, b) => compare(a.name, b.name) || compare(a.key, b.key))
    .map(({ name, labels, value }) => ({ name, labels, value }));
}

function mergeGauges(rows: readonly Gauge[]): Gauge[] {
  const byName = new Map<string, Gauge>();
  for (const g of rows) {
    const seen = byName.get(g.name);
    if (seen) byName.set(g.name, { name: g.name, value: Math.max(seen.value, g.value), sources: seen.sources + g.sources });
    else byName.set(g.name, { ...g });
  }
  return [...byName.values()];
}

/** Bucket by bucket: a bucket a shard does not have counts 0 there (its rows start at its smallest observation). */
function mergeHistograms(rows: readonly Histogram[]): Histogram[] {
  const byName = new Map<string, { counts: Map<number, number>; sum: number; count: number }>();
  for (const h of rows) {
    let acc = byName.get(h.name);
    if (!acc) byName.set(h.name, (acc = { counts: new Map(), sum: 0, count: 0 }));
    for (const b of h.buckets) acc.counts.set(b.le, (acc.counts.get(b.le) ?? 0) + b.count);
    acc.sum += h.sum;
    acc.count += h.count;
  }
  return [...byName].map(([name, acc]) => ({
    name,
    buckets: [...acc.counts].sort(([a], [b]) => a - b).map(([le, count]) => ({ le, count })),
    sum: acc.sum,
    count: acc.count,
  }));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
