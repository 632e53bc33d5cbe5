/**
 * The nine operational signals of the seed, each measured where it happens.
 * Names follow Prometheus conventions; README "Operations" explains each.
 */
export const SIGNALS = {
  /** 1. sync request rate */
  sync_requests_total: { type: "counter", help: "GET /v1/sync requests" },
  /** 2. oldest undelivered message age (per conversation, max of fresh reports) */
  oldest_undelivered_seconds: { type: "gauge", help: "Age of the oldest accepted entry whose member pokes are not all confirmed" },
  /** 3. backlog size by user and device (distribution at sync; per device in /admin/users/:id) */
  device_backlog_entries: { type: "histogram", help: "Entries a device is behind (sum over its conversations) when it syncs", buckets: [0, 1, 10, 50, 100, 500, 1000, 10000] },
  /** 4. cursor advancement rate */
  cursor_advanced_entries_total: { type: "counter", help: "Entries by which received cursors moved forward" },
  /** 5. duplicate delivery count */
  duplicate_deliveries_total: { type: "counter", help: "Entries served again to a device that had already acknowledged them" },
  duplicate_sends_total: { type: "counter", help: "Sends answered as duplicates (same device + client_msg_id)" },
  /** 6. reconnect storm volume */
  socket_connects_total: { type: "counter", help: "Live and inbox socket upgrades accepted" },
  shed_total: { type: "counter", help: "Requests refused with 429 rate_limited or 503 overloaded" },
  /** 7. sync pagination latency */
  sync_page_seconds: { type: "histogram", help: "Latency of GET /v1/sync and history pages, seen by the Worker", buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] },
  /** 8. push-to-sync conversion rate = converted / sent */
  push_sent_total: { type: "counter", help: "Push tasks enqueued" },
  push_converted_total: { type: "counter", help: "Pushed devices that synced afterwards" },
  /** 9. messages unavailable due to retention */
  retention_unavailable_total: { type: "counter", help: "Entries a device asked for that retention had removed (once per device)" },
  retention_expired_total: { type: "counter", help: "Entries removed by retention" },
  media_deleted_total: { type: "counter", help: "Media objects deleted (last reference removed by retention, or never referenced)" },
} as const;

export type SignalName = keyof typeof SIGNALS;
export type CounterName = { [K in SignalName]: (typeof SIGNALS)[K]["type"] extends "counter" ? K : never }[SignalName];
export type GaugeName = { [K in SignalName]: (typeof SIGNALS)[K]["type"] extends "gauge" ? K : never }[SignalName];
export type HistogramName = { [K in SignalName]: (typeof SIGNALS)[K]["type"] extends "histogram" ? K : never }[SignalName];
