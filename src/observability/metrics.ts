/**
 * Signal recording. Each isolate buffers increments and flushes them at most
 * once per METRICS_FLUSH_MS (default 1000), so measuring never adds a Durable
 * Object call to a hot path. A flush goes to the metrics shards (./shards.ts):
 * sums to this isolate's shard, each gauge to its source's shard. Every data
 * point is also written to Analytics Engine when the SIGNALS binding exists
 * (production).
 */
import type { Env } from "../env";
import { settings } from "../config/settings";
import { log } from "../platform/log";
import { call } from "../platform/rpc";
import { gaugeShard, metricsShardName, randomMetricsShard } from "./shards";
import { SIGNALS, type CounterName, type GaugeName, type HistogramName } from "./signals";

export interface MetricsBatch {
  counters: { name: CounterName; labels: string; value: number }[];
  /** `at` is when the isolate saw the value: a report that arrives late never overwrites a newer one. */
  gauges: { name: GaugeName; source: string; value: number; at: number }[];
  /** Per histogram, observations since the last flush: `counts[j]` of them were ≤ its j-th bucket bound (+Inf last). */
  histograms: { name: HistogramName; counts: number[]; sum: number; count: number }[];
}

type Labels = Record<string, string>;

function emptyBatch(): MetricsBatch {
  return { counters: [], gauges: [], histograms: [] };
}

function batchSize(batch: MetricsBatch): number {
  return batch.counters.length + batch.gauges.length + batch.histograms.length;
}

/** The label set as sorted JSON: the key counters are summed under, here and when shards are merged. */
export function canonical(labels: Labels): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));
}

export class MetricsBuffer {
  #batch = emptyBatch();
  #lastFlush = 0;
  /** Position in the batch of each counter (name + labels) and gauge (name + source): one entry each per flush. */
  #counterIndex = new Map<string, number>();
  #gaugeIndex = new Map<string, number>();
  #histogramIndex = new Map<HistogramName, number>();
  #home: number | null;

  /** `home`: the shard this buffer adds its sums to; by default one picked at random on the first flush. */
  constructor(home: number | null = null) {
    this.#home = home;
  }

  count(env: Env, name: CounterName, value = 1, labels: Labels = {}): void {
    if (value === 0) return;
    const text = canonical(labels);
    const key = `${name}|${text}`;
    const at = this.#counterIndex.get(key);
    if (at !== undefined) this.#batch.counters[at]!.value += value;
    else {
      this.#counterIndex.set(key, this.#batch.counters.length);
      this.#batch.counters.push({ name, labels: text, value });
    }
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name, text], doubles: [value] });
  }

  gauge(env: Env, name: GaugeName, source: string, value: number): void {
    const entry = { name, source, value, at: Date.now() };
    const key = `${name}|${source}`;
    const at = this.#gaugeIndex.get(key);
    if (at !== undefined) this.#batch.gauges[at] = entry;
    else {
      this.#gaugeIndex.set(key, this.#batch.gauges.length);
      this.#batch.gauges.push(entry);
    }
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name, source], doubles: [value] });
  }

  /** Counted into the histogram's buckets here, so a flush carries (and a shard writes) one row per bucket, not one per observation. */
  observe(env: Env, name: HistogramName, value: number): void {
    const bounds = SIGNALS[name].buckets;
    let at = this.#histogramIndex.get(name);
    if (at === undefined) {
      this.#histogramIndex.set(name, (at = this.#batch.histograms.length));
      this.#batch.histograms.push({ name, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 });
    }
    const h = this.#batch.histograms[at]!;
    for (let j = 0; j < bounds.length; j++) if (value <= bounds[j]!) h.counts[j]!++;
    h.counts[bounds.length]!++;
    h.sum += value;
    h.count++;
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name], doubles: [value] });
  }

  /** Sends the buffer if it is due; hand the promise to waitUntil. */
  flush(env: Env, force = false): Promise<void> | null {
    const interval = settings(env).metricsFlushMs;
    const size = batchSize(this.#batch);
    if (size === 0 || (!force && Date.now() - this.#lastFlush < interval && size < 500)) return null;
    const batch = this.#batch;
    this.#batch = emptyBatch();
    this.#counterIndex.clear();
    this.#gaugeIndex.clear();
    this.#histogramIndex.clear();
    this.#lastFlush = Date.now();
    const sends = [...this.#route(batch)].map(([shard, part]) =>
      call(env.METRICS, metricsShardName(shard), "add", part).catch((err: unknown) => log("metrics_flush_failed", { shard, error: String(err) })),
    );
    return Promise.all(sends).then(() => undefined);
  }

  /** Splits a batch by destination: sums to this buffer's shard, each gauge to its source's shard. */
  #route(batch: MetricsBatch): Map<number, MetricsBatch> {
    this.#home ??= randomMetricsShard();
    const parts = new Map<number, MetricsBatch>([[this.#home, { counters: batch.counters, gauges: [], histograms: batch.histograms }]]);
    for (const g of batch.gauges) {
      const shard = gaugeShard(g.name, g.source);
      let part = parts.get(shard);
      if (!part) parts.set(shard, (part = emptyBatch()));
      part.gauges.push(g);
    }
    for (const [shard, part] of parts) if (batchSize(part) === 0) parts.delete(shard);
    return parts;
  }
}

/** One buffer per isolate. */
export const metrics = new MetricsBuffer();
