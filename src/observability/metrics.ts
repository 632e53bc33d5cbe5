/**
 * Signal recording. Each isolate buffers increments and flushes them to the
 * MetricsDO at most once per METRICS_FLUSH_MS (default 1000), so measuring
 * never adds a Durable Object call to a hot path. Every data point is also
 * written to Analytics Engine when the SIGNALS binding exists (production).
 */
import type { Env } from "../env";
import { log } from "./log";
import type { CounterName, GaugeName, HistogramName } from "./signals";

export interface MetricsBatch {
  counters: { name: CounterName; labels: string; value: number }[];
  gauges: { name: GaugeName; source: string; value: number }[];
  observations: { name: HistogramName; value: number }[];
}

type Labels = Record<string, string>;

function emptyBatch(): MetricsBatch {
  return { counters: [], gauges: [], observations: [] };
}

function canonical(labels: Labels): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))));
}

class MetricsBuffer {
  #batch = emptyBatch();
  #lastFlush = 0;
  #counterIndex = new Map<string, number>();

  count(env: Env, name: CounterName, value = 1, labels: Labels = {}): void {
    if (value === 0) return;
    const key = `${name}|${canonical(labels)}`;
    const at = this.#counterIndex.get(key);
    if (at !== undefined) this.#batch.counters[at]!.value += value;
    else {
      this.#counterIndex.set(key, this.#batch.counters.length);
      this.#batch.counters.push({ name, labels: canonical(labels), value });
    }
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name, canonical(labels)], doubles: [value] });
  }

  gauge(env: Env, name: GaugeName, source: string, value: number): void {
    this.#batch.gauges.push({ name, source, value });
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name, source], doubles: [value] });
  }

  observe(env: Env, name: HistogramName, value: number): void {
    this.#batch.observations.push({ name, value });
    env.SIGNALS?.writeDataPoint({ indexes: [name], blobs: [name], doubles: [value] });
  }

  /** Sends the buffer if it is due; hand the promise to waitUntil. */
  flush(env: Env, force = false): Promise<void> | null {
    const interval = Number(env.METRICS_FLUSH_MS ?? "1000");
    const size = this.#batch.counters.length + this.#batch.gauges.length + this.#batch.observations.length;
    if (size === 0 || (!force && Date.now() - this.#lastFlush < interval && size < 500)) return null;
    const batch = this.#batch;
    this.#batch = emptyBatch();
    this.#counterIndex.clear();
    this.#lastFlush = Date.now();
    const stub = env.METRICS.get(env.METRICS.idFromName("global"));
    return stub.add(batch).catch((err: unknown) => log("metrics_flush_failed", { error: String(err) }));
  }
}

/** One buffer per isolate. */
export const metrics = new MetricsBuffer();
