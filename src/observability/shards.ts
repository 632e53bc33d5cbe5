/**
 * Where metrics are aggregated: TUNING.metricsShards MetricsDO objects, never
 * one that every isolate writes (ARCHITECTURE "Cost model").
 *
 * Counters and histograms are sums, so any shard may hold any part of them: an
 * isolate adds its increments to one shard it picks at random once, which
 * spreads the writes. A gauge is the latest value per source; for the newest
 * report to win, every report of a source must meet in one object, so a gauge
 * goes to the shard its (name, source) hashes to, whichever isolate sends it.
 */
import { TUNING } from "../config/tuning";

/** Shard 0 keeps the name of the former singleton, so the sums it already holds stay in the view. */
export function metricsShardName(shard: number): string {
  return shard === 0 ? "global" : `shard-${shard}`;
}

export function allMetricsShards(): number[] {
  return Array.from({ length: TUNING.metricsShards }, (_, shard) => shard);
}

export function randomMetricsShard(random: () => number = Math.random): number {
  return Math.floor(random() * TUNING.metricsShards) % TUNING.metricsShards;
}

/** The shard that owns a gauge source: the same in every isolate and every deploy with the same shard count. */
export function gaugeShard(name: string, source: string): number {
  return fnv1a(`${name}\n${source}`) % TUNING.metricsShards;
}

/** 32-bit FNV-1a: stable, fast, and spread well enough for picking one of a few shards. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
