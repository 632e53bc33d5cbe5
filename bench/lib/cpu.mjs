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
      out.push({ pid: Number(d), comm, pgrp: Number(rest[2]), cpu: (Number(rest[11]) + Number(rest[12])) / TICK });
    } catch {}
  }
  return out;
}

/** Snapshot of CPU seconds: { workerd, wranglerNode, bench, peer, other }. */
export function cpuSnapshot(groups) {
  const snap = { workerd: 0, wrangler_node: 0, bench_client: 0, peer: 0, other: 0 };
  for (const p of procs()) {
    if (p.pgrp === groups.wrangler) snap[p.comm.includes("workerd") ? "workerd" : "wrangler_node"] += p.cpu;
    else if (p.pid === process.pid) snap.bench_client += p.cpu;
    else if (p.pid === groups.peer) snap.peer += p.cpu;
    else snap.other += p.cpu;
  }
  return snap;
}

export function cpuDelta(a, b, seconds) {
  const out = {};
  for (const k of Object.keys(a)) out[k] = Math.round(((b[k] - a[k]) / seconds) * 100) / 100; // cores busy on average
  return out;
}
