#!/usr/bin/env node
/**
 * `node scripts/gate-throughput.mjs`: how many push permits per second the
 * push gate grants in the local runtime (workerd through Miniflare), one gate
 * against the sharded gate. Offline; nothing is sent to any provider.
 *
 * The provider cap is set out of reach (PUSH_RATE_PER_SECOND = PUSH_BURST =
 * 1e9), so what limits the figure is the gate machinery itself: Durable Object
 * calls and their SQLite writes. A driver Worker bound to the real PushGateDO
 * class (src/push/gate-do.ts bundled with esbuild) runs CONSUMERS concurrent loops, each a
 * queue consumer handling BATCH tasks at a time, for SECONDS per variant:
 *
 *   one gate, per task     the consumer before issue #16: acquire() and report()
 *                          on the provider's single object, per task
 *   one gate, per batch    acquire(50) and one bulk report on a single object
 *   sharded, per batch     the consumer's acquirePermits() over the provider's
 *                          shards plus one bulk report per shard (what runs now)
 *
 * Locally every object runs in one workerd process on this machine's cores, so
 * sharding cannot show the parallelism it has in production, where each shard
 * is an object of its own (each good for roughly 500–1,000 requests a second):
 * the local figures show the calls a grant costs; production multiplies the
 * sharded figure by up to the shard count.
 *
 * Options: --seconds N (default 3), --consumers N (default 16).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg("seconds", 3);
const CONSUMERS = arg("consumers", 16);
const BATCH = 50;
const COMPATIBILITY_DATE = "2026-04-26";
const VARS = { AUTH_SECRET: "bench", PUSH_RATE_PER_SECOND: "1000000000", PUSH_BURST: "1000000000", LOG_LEVEL: "error" };

/** Runs inside workerd: the three variants, each for `ms`, with `consumers` loops. */
const DRIVER = `
import { acquirePermits } from "./src/push/consumer.ts";
import { gateShardName } from "./src/push/gate-do.ts";
import { call } from "./src/platform/rpc.ts";

const delivered = (n) => Array.from({ length: n }, () => ({ report: "delivered" }));

const variants = {
  async "one gate, per task"(env, provider) {
    const name = gateShardName(provider, 0);
    let granted = 0, calls = 0;
    for (let i = 0; i < ${BATCH}; i++) {
      const p = await call(env.PUSH_GATE, name, "acquire", 1);
      await call(env.PUSH_GATE, name, "report", provider, delivered(p.granted));
      granted += p.granted;
      calls += 2;
    }
    return { granted, calls };
  },
  async "one gate, per batch"(env, provider) {
    const name = gateShardName(provider, 0);
    const p = await call(env.PUSH_GATE, name, "acquire", ${BATCH});
    await call(env.PUSH_GATE, name, "report", provider, delivered(p.granted));
    return { granted: p.granted, calls: 2 };
  },
  async "sharded, per batch"(env, provider) {
    const a = await acquirePermits(env, provider, ${BATCH});
    const byShard = new Map();
    for (const s of a.shards) byShard.set(s, (byShard.get(s) ?? 0) + 1);
    await Promise.all([...byShard].map(([s, n]) => call(env.PUSH_GATE, gateShardName(provider, s), "report", provider, delivered(n))));
    // One acquire: with the cap out of reach the first shard asked never runs short.
    return { granted: a.shards.length, calls: 1 + byShard.size };
  },
};

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const variant = url.searchParams.get("variant");
    const ms = Number(url.searchParams.get("ms"));
    const consumers = Number(url.searchParams.get("consumers"));
    const run = variants[variant];
    const provider = "bench-" + Math.random().toString(36).slice(2);
    await run(env, provider); // wakes the objects and applies their schema outside the timing
    let granted = 0, calls = 0;
    const started = Date.now();
    await Promise.all(Array.from({ length: consumers }, async () => {
      while (Date.now() - started < ms) {
        const r = await run(env, provider);
        granted += r.granted;
        calls += r.calls;
      }
    }));
    const seconds = (Date.now() - started) / 1000;
    return Response.json({ variant, seconds, granted, calls, grantsPerSecond: granted / seconds, callsPerSecond: calls / seconds });
  },
};
`;

const text = { name: "text", setup: (b) => b.onLoad({ filter: /\.(sql|html)$/ }, async (a) => ({ contents: readFileSync(a.path, "utf8"), loader: "text" })) };
const bundle = (options) =>
  esbuild.build({ bundle: true, format: "esm", platform: "neutral", mainFields: ["module", "main"], conditions: ["workerd", "worker", "browser"], external: ["cloudflare:*"], plugins: [text], logLevel: "error", write: false, ...options });

// The gate alone (the full Worker pulls in optional imports of the OpenAPI tooling that only wrangler's bundling settles).
const main = await bundle({ stdin: { contents: 'export { PushGateDO } from "./src/push/gate-do.ts"; export default { fetch: () => new Response(null, { status: 404 }) };', resolveDir: ROOT, loader: "js" } });
const driver = await bundle({ stdin: { contents: DRIVER, resolveDir: ROOT, loader: "js" } });
const modules = (path, result) => [{ type: "ESModule", path, contents: result.outputFiles[0].text }];
const mf = new Miniflare({
  workers: [
    { name: "driver", modules: modules("driver.mjs", driver), compatibilityDate: COMPATIBILITY_DATE, bindings: VARS, durableObjects: { PUSH_GATE: { className: "PushGateDO", scriptName: "main", useSQLite: true } } },
    { name: "main", modules: modules("main.mjs", main), compatibilityDate: COMPATIBILITY_DATE, bindings: VARS, durableObjects: { PUSH_GATE: { className: "PushGateDO", useSQLite: true } } },
  ],
});
try {
  console.log(`push gate throughput, local workerd: ${CONSUMERS} concurrent consumers, batches of ${BATCH}, ${SECONDS} s per variant`);
  for (const variant of ["one gate, per task", "one gate, per batch", "sharded, per batch"]) {
    const q = new URLSearchParams({ variant, ms: String(SECONDS * 1000), consumers: String(CONSUMERS) });
    const res = await mf.dispatchFetch(`http://driver/?${q}`);
    if (!res.ok) throw new Error(`${variant}: ${res.status} ${await res.text()}`);
    const r = await res.json();
    console.log(`${variant.padEnd(22)} ${Math.round(r.grantsPerSecond).toString().padStart(8)} grants/s  ${Math.round(r.callsPerSecond).toString().padStart(6)} gate calls/s  (${r.granted} grants in ${r.seconds.toFixed(1)} s)`);
  }
} finally {
  await mf.dispose();
}
