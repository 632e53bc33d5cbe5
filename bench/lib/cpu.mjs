/** CPU seconds used by process groups (Linux /proc), to see where a phase's time goes. */
import { readdirSync, readFileSync } from "node:fs";

const TICK = 100; // USER_HZ on Linux

function procs() {
  const out = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      // fields after ")": state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
      out.push({ pid: Number(d), comm, pgrp: Number(rest[2]), cpu: (Number(rest[11]) + Number(rest[12])) / TICK, kernel: Number(rest[12]) / TICK });
    } catch {}
  }
  return out;
}

/**
 * Snapshot of CPU seconds by category: { workerd, raw_workerd, wrangler_node, bench_client, peer, other }.
 * `workerd` is the product's, `raw_workerd` the reference limit's (bench/raw, its own
 * wrangler dev); `wrangler_node` is both wrangler dev node processes. The per-process
 * figures are kept (`_pids`) so a delta counts only processes alive at its end: a
 * process that exits mid-phase drops out instead of making a category negative.
 */
export function cpuSnapshot(groups) {
  const snap = { workerd: 0, raw_workerd: 0, wrangler_node: 0, bench_client: 0, peer: 0, other: 0 };
  const pids = new Map();
  let workerdKernel = 0;
  for (const p of procs()) {
    let cat = "other";
    if (p.pgrp === groups.wrangler) cat = p.comm.includes("workerd") ? "workerd" : "wrangler_node";
    else if (groups.raw && p.pgrp === groups.raw) cat = p.comm.includes("workerd") ? "raw_workerd" : "wrangler_node";
    else if (p.pid === process.pid) cat = "bench_client";
    else if (p.pid === groups.peer) cat = "peer";
    snap[cat] += p.cpu;
    if (cat === "workerd") workerdKernel += p.kernel;
    pids.set(p.pid, { cat, cpu: p.cpu });
  }
  Object.defineProperty(snap, "_pids", { value: pids, enumerable: false });
  // The product's workerd in the kernel (file writes and syncs of SQLite commits among them), not a category.
  Object.defineProperty(snap, "_workerdKernel", { value: workerdKernel, enumerable: false });
  return snap;
}

/** CPU seconds used per category between two snapshots (processes alive at `b`; new ones count from 0). */
export function cpuUsed(a, b) {
  const used = Object.fromEntries(Object.keys(b).map((k) => [k, 0]));
  if (a._pids && b._pids) {
    for (const [pid, x] of b._pids) used[x.cat] += x.cpu - (a._pids.get(pid)?.cpu ?? 0);
  } else {
    for (const k of Object.keys(a)) used[k] = b[k] - a[k];
  }
  return used;
}

/** Average cores busy per category between two snapshots, rounded to 0.01. */
export function cpuDelta(a, b, seconds) {
  const used = cpuUsed(a, b);
  const out = {};
  for (const k of Object.keys(used)) out[k] = Math.round((used[k] / seconds) * 100) / 100; // cores busy on average
  return out;
}

/**
 * Waits until the product's workerd is (nearly) idle: two consecutive 500 ms
 * samples under `cores` busy. Lets background work (member notification, alarms)
 * finish before the next measurement when the server offers no figure to watch.
 * Returns the seconds waited (at most `maxMs`).
 */
export async function waitWorkerdQuiet(groups, { maxMs = 60_000, cores = 0.15 } = {}) {
  const t0 = performance.now();
  let quiet = 0;
  let prev = cpuSnapshot(groups);
  while (performance.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuSnapshot(groups);
    quiet = cpuDelta(prev, now, 0.5).workerd < cores ? quiet + 1 : 0;
    prev = now;
    if (quiet >= 2) break;
  }
  return (performance.now() - t0) / 1000;
}
