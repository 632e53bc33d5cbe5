#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --only=diag,raw+p1+p2,size,p3,p4,p4few,p5,peer,peerbacklog,peerdirect,peerquiet,p6,p4direct] [-- --src=HEAD] [-- --size-budget=SECONDS] [-- --storm-devices=N]`
 *
 * One run, side by side: starts the product's `wrangler dev` (own process group,
 * temp state, push pointed at a local webhook receiver), the reference limit's
 * (bench/raw: a separate minimal Worker whose Durable Object does one RPC + one
 * INSERT / one page SELECT; its own `wrangler dev`, port and state) and a
 * Socket.IO 4.8 peer, runs every scenario against the raw limit and against the
 * peer, takes medians over repeats, and writes bench/results/latest.{json,md,svg}.
 * `--src=<git ref>` (or BENCH_SRC) measures the product's sources at that commit
 * (`git archive`, read-only) instead of the work tree.
 * See BENCHMARKS.md for the method and the caveats.
 */
import { execSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT } from "../scripts/lib/dev-auth.mjs";
import { agent, bodyOf, devProxyResets, pool, request, shedRetries, token } from "./lib/client.mjs";
import { cpuDelta, cpuSnapshot, cpuUsed } from "./lib/cpu.mjs";
import { startRawWorker, startSocketIoPeer, startWebhookReceiver, startWrangler, stopAll } from "./lib/services.mjs";
import { median, quantile, round } from "./lib/stats.mjs";
import { renderMarkdown, renderSvg, summarize } from "./report.mjs";
import { runThroughput } from "./scenarios/throughput.mjs";
import { runStorm } from "./scenarios/storm.mjs";
import { runFanout } from "./scenarios/fanout.mjs";
import { runPushCollapse, runPushThrottle } from "./scenarios/push.mjs";
import { runRecovery } from "./scenarios/recovery.mjs";
import { runSizeScaling } from "./scenarios/size.mjs";
import { runInbox } from "./scenarios/inbox.mjs";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const onlyArg = argv.find((a) => a.startsWith("--only="));
const only = onlyArg ? new Set(onlyArg.slice(7).split(",")) : null;
const want = (name) => !only || only.has(name);
const srcArg = argv.find((a) => a.startsWith("--src="));
const srcRef = srcArg ? srcArg.slice(6) : process.env.BENCH_SRC || null;
// Seconds the size scenario may spend growing its biggest conversation past 10,000 members (default: full 180, quick 30).
const sizeBudgetArg = argv.find((a) => a.startsWith("--size-budget="));
// P3's device count (default 2,000; quick 200): one local workerd holds about 2,000 SQLite objects (BENCHMARKS.md).
const stormArg = argv.find((a) => a.startsWith("--storm-devices="));
const sizeGrowBudgetSeconds = sizeBudgetArg ? Number(sizeBudgetArg.slice(14)) : undefined;
const outDir = join(ROOT, "bench", "results");
const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

const WEBHOOK_SECRET = "bench-webhook-secret";
const push = quick
  ? { windowSeconds: 10, collapseSeconds: 10, deviceMinIntervalSeconds: 2, settleSeconds: 4, ratePerSecond: 20, burst: 20, throttleDevices: 80, throttleSeconds: 2, retryAfterSeconds: 2, throttleTimeoutSeconds: 30 }
  : { windowSeconds: 60, collapseSeconds: 60, deviceMinIntervalSeconds: 10, settleSeconds: 12, ratePerSecond: 20, burst: 20, throttleDevices: 200, throttleSeconds: 3, retryAfterSeconds: 2, throttleTimeoutSeconds: 90 };

function sh(cmd) {
  try { return execSync(cmd, { encoding: "utf8" }).trim(); } catch { return null; }
}

function machine() {
  const pkg = JSON.parse(readFileSync(join(ROOT, "node_modules", "wrangler", "package.json"), "utf8"));
  const sio = JSON.parse(readFileSync(join(ROOT, "node_modules", "socket.io", "package.json"), "utf8"));
  return {
    nproc: Number(sh("nproc")) || cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    mem_total_gib: round(totalmem() / 2 ** 30, 1),
    mem_free_gib: round(freemem() / 2 ** 30, 1),
    node: process.version,
    wrangler: pkg.version,
    socket_io: sio.version,
    loadavg_start: loadavg().map((x) => round(x, 2)),
    git_commit: sh("git -C " + JSON.stringify(ROOT) + " rev-parse --short HEAD"),
    // What was measured: the work tree (with this many uncommitted files) or a commit (--src / BENCH_SRC).
    src: srcRef ? `commit ${sh("git -C " + JSON.stringify(ROOT) + " rev-parse --short " + JSON.stringify(srcRef))} (${srcRef})` : "work tree",
    src_uncommitted_files: srcRef ? 0 : Number(sh("git -C " + JSON.stringify(ROOT) + " status --porcelain src migrations wrangler.toml | wc -l")),
  };
}

/**
 * Where the time goes: for each request kind, throughput at C connections and the
 * CPU it costs per request in workerd (wrangler dev's proxy worker and our Worker
 * share that process), through wrangler dev's port and straight to the user
 * Worker behind its proxy.
 */
async function diagnostics(ctx) {
  const C = ctx.concurrency;
  const n = quick ? 300 : 1500;
  const body = JSON.stringify(bodyOf(200));
  const users = ["dg0", "dg1"];
  const toks = await Promise.all(Array.from({ length: C }, (_, i) => token(users[i % 2], `d${i}`)));
  const conv = `dg-${ctx.runId}`;
  await request({ base: ctx.url, method: "POST", path: "/v1/conversations", token: toks[0], json: { id: conv, members: ["dg1"] } });
  const kinds = [
    { name: "GET /healthz (no auth, no object)", path: () => "/healthz" },
    { name: "GET /v1/conversations/:id (auth + RPC + small read)", path: () => `/v1/conversations/${conv}`, auth: true },
    { name: "raw RPC + INSERT (bench/raw)", method: "POST", path: () => `/raw/diag-${ctx.runId}/insert`, raw: body, onRaw: true },
    { name: "P1 send (auth + RPC + send)", method: "POST", path: () => `/v1/conversations/${conv}/messages`, auth: true, json: true },
  ];
  const measure = async (base, kind, tag) => {
    const a = agent(C);
    const c0 = cpuSnapshot(ctx.groups);
    const t0 = performance.now();
    await pool(n, C, (i) => request({ base, agent: a, method: kind.method ?? "GET", path: kind.path(), token: kind.auth ? toks[i % C] : undefined, ...(kind.json ? { json: { client_msg_id: `${tag}${i}`, body: bodyOf(200) } } : { raw: kind.raw }) }));
    const s = (performance.now() - t0) / 1000;
    const c1 = cpuSnapshot(ctx.groups);
    a.destroy();
    // Both workerd processes (the product's and the raw limit's): only the one under test is busy.
    const d = cpuUsed(c0, c1);
    const wd = d.workerd + d.raw_workerd;
    return { rps: n / s, workerd_cpu_ms_per_req: (wd * 1000) / n, client_cpu_ms_per_req: (d.bench_client * 1000) / n, workerd_cores: wd / s };
  };
  const out = { n, C, kinds: [] };
  for (const [i, kind] of kinds.entries()) {
    const row = { name: kind.name, proxied: await measure(kind.onRaw ? ctx.rawUrl : ctx.url, kind, `p${i}-`) };
    const direct = kind.onRaw ? ctx.rawDirectUrl : ctx.directUrl;
    if (direct) row.direct = await measure(direct, kind, `d${i}-`);
    out.kinds.push(row);
    log(`  ${kind.name}: ${row.proxied.rps.toFixed(0)} req/s, workerd ${row.proxied.workerd_cpu_ms_per_req.toFixed(2)} CPU ms/req` + (row.direct ? `; direct ${row.direct.rps.toFixed(0)} req/s, ${row.direct.workerd_cpu_ms_per_req.toFixed(2)} CPU ms/req` : ""));
  }
  // One at a time: the round trips.
  const a = agent(1);
  const lat = async (path, method = "GET", raw, base = ctx.url) => {
    const l = [];
    for (let i = 0; i < (quick ? 100 : 300); i++) {
      const t0 = performance.now();
      await request({ base, agent: a, method, path, raw });
      l.push(performance.now() - t0);
    }
    return { p50: quantile(l, 0.5), p99: quantile(l, 0.99) };
  };
  out.healthz_latency_ms = await lat("/healthz");
  out.raw_insert_latency_ms = await lat(`/raw/diag-${ctx.runId}/insert`, "POST", body, ctx.rawUrl);
  out.raw_page100_latency_ms = await lat(`/raw/diag-${ctx.runId}/page?after=0&limit=100`, "GET", undefined, ctx.rawUrl);
  a.destroy();
  return out;
}

async function phase(ctx, name, fn) {
  if (!want(name)) return undefined;
  log(`${name}: start`);
  const c0 = cpuSnapshot(ctx.groups);
  const t0 = performance.now();
  try {
    const result = await fn(ctx);
    const seconds = (performance.now() - t0) / 1000;
    const cores = cpuDelta(c0, cpuSnapshot(ctx.groups), seconds);
    log(`${name}: done in ${seconds.toFixed(1)} s; cores busy: workerd ${cores.workerd}, raw workerd ${cores.raw_workerd}, wrangler node ${cores.wrangler_node}, bench client ${cores.bench_client}, peer ${cores.peer}, other ${cores.other}`);
    return { ...result, _seconds: round(seconds, 1), _cores: cores };
  } catch (err) {
    log(`${name}: FAILED: ${err.stack ?? err}`);
    return { error: String(err.message ?? err) };
  }
}

/** `ctx` aimed at other servers: the product at `url` (its sockets too), the raw limit at `rawUrl`, a runId of its own. */
const aimedAt = (ctx, url, rawUrl, suffix) => ({ ...ctx, url, wsUrl: url.replace(/^http/, "ws"), rawUrl, runId: `${ctx.runId}${suffix}` });

/**
 * runRecovery straight to the user Workers of a second product server and raw limit started without
 * the DevTools inspector (stopped after): the runtime with no dev tooling in between.
 */
async function recoveryWithoutInspector(ctx) {
  const ours = await startWrangler({}, { srcRef, inspector: false });
  const raw = await startRawWorker({ inspector: false });
  try {
    const c = { ...aimedAt(ctx, ours.directUrl, raw.directUrl, "pq"), groups: { ...ctx.groups, wrangler: ours.pid, raw: raw.pid } };
    const c0 = cpuSnapshot(c.groups);
    const t0 = performance.now();
    const out = await runRecovery(c);
    // The phase's own figure counts the idle inspector-run servers; these are the quiet ones'.
    return { ...out, cores_quiet: cpuDelta(c0, cpuSnapshot(c.groups), (performance.now() - t0) / 1000) };
  } finally {
    await Promise.all([ours.stop(), raw.stop()]);
  }
}

async function main() {
  const info = machine();
  log(`bench ${quick ? "--quick" : "full"} on ${info.nproc} cores, load ${info.loadavg_start.join(" ")}, node ${info.node}, wrangler ${info.wrangler}; measuring the ${info.src}`);
  const hook = await startWebhookReceiver(WEBHOOK_SECRET);
  const vars = {
    PUSH_WEBHOOK_URL: hook.url,
    PUSH_WEBHOOK_SECRET: WEBHOOK_SECRET,
    PUSH_COLLAPSE_SECONDS: String(push.collapseSeconds),
    PUSH_DEVICE_MIN_INTERVAL_SECONDS: String(push.deviceMinIntervalSeconds),
    PUSH_RATE_PER_SECOND: String(push.ratePerSecond),
    PUSH_BURST: String(push.burst),
  };
  const wrangler = await startWrangler(vars, { srcRef });
  log(`wrangler dev on ${wrangler.url} (pgid ${wrangler.pid})`);
  const rawWorker = await startRawWorker();
  log(`raw limit (bench/raw) wrangler dev on ${rawWorker.url} (pgid ${rawWorker.pid})`);
  const peer = await startSocketIoPeer();
  log(`socket.io peer on ${peer.url}`);
  const ctx = {
    quick,
    url: wrangler.url,
    wsUrl: wrangler.url.replace(/^http/, "ws"),
    peerUrl: peer.url,
    directUrl: wrangler.directUrl,
    rawUrl: rawWorker.url,
    rawDirectUrl: rawWorker.directUrl,
    hook,
    push,
    log,
    runId: Math.random().toString(36).slice(2, 8),
    concurrency: 50,
    retryCompress: 0.1,
    stormDevices: stormArg ? Number(stormArg.slice(16)) : quick ? 200 : 2000,
    fanoutSockets: quick ? 200 : 1000,
    recovery: { clients: 200, messages: 50, repeats: quick ? 3 : 5 },
    // The same recovery where the backlog, not the upgrades, is the work: devices back after a long time offline.
    backlog: { clients: 20, messages: 1000, repeats: quick ? 3 : 5 },
    sizeGrowBudgetSeconds,
    groups: { wrangler: wrangler.pid, raw: rawWorker.pid, peer: peer.pid },
  };
  const results = { quick, started_at: new Date(started).toISOString(), machine: info, settings: { concurrency: ctx.concurrency, retry_after_scale: ctx.retryCompress, push, storm_devices: ctx.stormDevices, fanout_sockets: ctx.fanoutSockets, recovery: ctx.recovery, backlog: ctx.backlog, vars: { ...vars, PUSH_WEBHOOK_SECRET: "(bench)" } } };
  try {
    results.diagnostics = await phase(ctx, "diag", diagnostics);
    results.throughput = await phase(ctx, "raw+p1+p2", runThroughput);
    results.storm = await phase(ctx, "p3", runStorm);
    results.fanout = await phase(ctx, "p4", (c) => runFanout({ ...c, fanoutPeer: true, fanoutRaw: true }));
    // Same sockets, few users × many devices: separates per-member work (outbox, unread, pokes) from the socket fan-out.
    if (!quick) results.fanout_few = await phase(ctx, "p4few", (c) => runFanout({ ...c, runId: `${c.runId}f`, fanoutPerUser: c.fanoutSockets / 10, fanoutRounds: 2 }));
    results.push_collapse = await phase(ctx, "p5", runPushCollapse);
    results.push_throttle = await phase(ctx, "p5", runPushThrottle);
    results.recovery = await phase(ctx, "peer", runRecovery);
    results.recovery_backlog = await phase(ctx, "peerbacklog", (c) => runRecovery({ ...c, runId: `${c.runId}b`, recovery: c.backlog }));
    results.inbox = await phase(ctx, "p6", runInbox);
    // Diagnostic: the same recovery straight to the user Worker, bypassing wrangler dev's proxy (what the proxy adds).
    results.recovery_direct = await phase(ctx, "peerdirect", (c) => runRecovery(aimedAt(c, c.directUrl, c.rawDirectUrl, "pd")));
    // Diagnostic: the same recovery with neither the dev proxy nor the DevTools inspector (bench/lib/dev-quiet.mjs).
    results.recovery_quiet = await phase(ctx, "peerquiet", recoveryWithoutInspector);
    if (!quick) results.fanout_direct = await phase(ctx, "p4direct", (c) => runFanout({ ...aimedAt(c, c.directUrl, c.rawDirectUrl, "d"), fanoutRaw: true, fanoutRounds: 1 }));
    // Last: its 10,000-member conversation creates 10,000 UserDOs, near what one local workerd process holds (README, Local limits).
    results.size = await phase(ctx, "size", runSizeScaling);
  } finally {
    await stopAll();
  }
  results.dev_proxy_resets = devProxyResets.count;
  results.connection_resets = devProxyResets.connectionResets;
  results.socket_open_retries = devProxyResets.socketRetries;
  results.setup_shed_retries = shedRetries.count;
  results.machine.loadavg_end = loadavg().map((x) => round(x, 2));
  results.total_seconds = round((Date.now() - started) / 1000, 1);
  results.summary = summarize(results);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  const md = renderMarkdown(results);
  writeFileSync(join(outDir, "latest.md"), md);
  writeFileSync(join(outDir, "latest.svg"), renderSvg(results));
  console.log("\n" + md);
  log(`wrote bench/results/latest.{json,md,svg} in ${results.total_seconds} s total`);
}

const onSignal = async () => { await stopAll(); process.exit(130); };
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
