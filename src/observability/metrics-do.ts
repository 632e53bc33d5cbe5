/**
 * MetricsDO: one shard of the signals the isolates flush (./shards.ts says
 * which shard gets what; ./snapshot.ts merges them for the admin API). Each
 * shard is written at most once per flush interval by the isolates that chose
 * it; Analytics Engine carries the raw points in production.
 */
import type { Env } from "../env";
import type { Schema } from "../platform/schema";
import { PlatformObject } from "../platform/object";
import v1 from "../../migrations/metrics/0001_init.sql";
import type { MetricsBatch } from "./metrics";
import { SIGNALS, type HistogramName } from "./signals";
import { TUNING } from "../config/tuning";

const SCHEMA: Schema = { migrations: [{ version: 1, sql: v1 }] };
/** Gauge reports older than this are stale (their source went quiet or healthy). */
const GAUGE_FRESH_MS = TUNING.gaugeFreshMs;
/** Sources hash evenly over the shards, so each keeps its share of the service-wide bound. */
const MAX_GAUGE_SOURCES = Math.ceil(TUNING.maxGaugeSources / TUNING.metricsShards);
const INF = 1e308;

export interface MetricsSnapshot {
  at: number;
  counters: { name: string; labels: Record<string, string>; value: number }[];
  gauges: { name: string; value: number; sources: number }[];
  histograms: { name: string; buckets: { le: number; count: number }[]; sum: number; count: number }[];
}

export class MetricsDO extends PlatformObject {

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, SCHEMA);
  }

  async add(batch: MetricsBatch): Promise<void> {
    this.ready();
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (const c of batch.counters) {
        this.sql.run(
          `INSERT INTO counters (name, labels, value) VALUES (?, ?, ?)
           ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value`,
          c.name, c.labels, c.value,
        );
      }
      for (const g of batch.gauges) {
        // Reports of one source reach this shard from several isolates in any order: the newest seen wins.
        this.sql.run(
          `INSERT INTO gauges (name, source, value, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name, source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
           WHERE excluded.updated_at >= gauges.updated_at`,
          g.name, g.source, g.value, g.at,
        );
      }
      // An isolate still running the previous version sends no `histograms`: its counters and gauges still count.
      for (const h of batch.histograms ?? []) this.#observe(h);
      this.sql.run("DELETE FROM gauges WHERE updated_at < ?", now - GAUGE_FRESH_MS);
      this.sql.run(
        "DELETE FROM gauges WHERE (name, source) IN (SELECT name, source FROM gauges ORDER BY updated_at DESC LIMIT -1 OFFSET ?)",
        MAX_GAUGE_SOURCES,
      );
    });
  }

  async snapshot(): Promise<MetricsSnapshot> {
    this.ready();
    const fresh = Date.now() - GAUGE_FRESH_MS;
    const counters = this.sql
      .all<{ name: string; labels: string; value: number }>("SELECT name, labels, value FROM counters ORDER BY name, labels")
      .map((r) => ({ name: r.name, labels: JSON.parse(r.labels) as Record<string, string>, value: r.value }));
    const gauges = this.sql.all<{ name: string; value: number; sources: number }>(
      "SELECT name, max(value) AS value, count(*) AS sources FROM gauges WHERE updated_at >= ? GROUP BY name", fresh,
    );
    const histograms = (Object.keys(SIGNALS) as (keyof typeof SIGNALS)[])
      .filter((n): n is HistogramName => SIGNALS[n].type === "histogram")
      .map((name) => {
        const sums = this.sql.first<{ sum: number; count: number }>("SELECT sum, count FROM histogram_sums WHERE name = ?", name);
        const buckets = this.sql.all<{ le: number; count: number }>("SELECT le, count FROM histograms WHERE name = ? ORDER BY le", name);
        return { name, buckets: buckets.map((b) => ({ le: b.le >= INF ? Infinity : b.le, count: b.count })), sum: sums?.sum ?? 0, count: sums?.count ?? 0 };
      });
    return { at: Date.now(), counters, gauges, histograms };
  }

  /** One isolate's bucket counts since its last flush: one upsert per bucket that grew, one for the sum. */
  #observe(h: MetricsBatch["histograms"][number]): void {
    [...SIGNALS[h.name].buckets, INF].forEach((le, j) => {
      const n = h.counts[j] ?? 0;
      if (n === 0) return;
      this.sql.run(
        "INSERT INTO histograms (name, le, count) VALUES (?, ?, ?) ON CONFLICT (name, le) DO UPDATE SET count = count + excluded.count",
        h.name, le, n,
      );
    });
    this.sql.run(
      `INSERT INTO histogram_sums (name, sum, count) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET sum = sum + excluded.sum, count = count + excluded.count`,
      h.name, h.sum, h.count,
    );
  }
}
