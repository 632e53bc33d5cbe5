/** Prometheus text exposition (format 0.0.4) of a MetricsDO snapshot. */
import type { MetricsSnapshot } from "./metrics-do";
import { SIGNALS, type SignalName } from "./signals";

const PREFIX = "offline_delivery_";

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

export function toPrometheus(snap: MetricsSnapshot): string {
  const lines: string[] = [];
  for (const name of Object.keys(SIGNALS) as SignalName[]) {
    const spec = SIGNALS[name];
    const full = PREFIX + name;
    lines.push(`# HELP ${full} ${spec.help}`, `# TYPE ${full} ${spec.type}`);
    if (spec.type === "counter") {
      const rows = snap.counters.filter((c) => c.name === name);
      if (rows.length === 0) lines.push(`${full} 0`);
      for (const c of rows) lines.push(`${full}${labelText(c.labels)} ${c.value}`);
    } else if (spec.type === "gauge") {
      lines.push(`${full} ${snap.gauges.find((g) => g.name === name)?.value ?? 0}`);
    } else {
      const h = snap.histograms.find((x) => x.name === name);
      for (const le of [...spec.buckets, Infinity]) {
        const count = h?.buckets.find((b) => b.le === le)?.count ?? 0;
        lines.push(`${full}_bucket{le="${le === Infinity ? "+Inf" : le}"} ${count}`);
      }
      lines.push(`${full}_sum ${h?.sum ?? 0}`, `${full}_count ${h?.count ?? 0}`);
    }
  }
  return lines.join("\n") + "\n";
}
