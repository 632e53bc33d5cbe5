/**
 * The product's operator API (ADMIN_TOKEN from .dev.vars, "dev-admin-token" in
 * .dev.vars.example): per-conversation stats, used to read send counters and to
 * let a conversation's background member notification finish between bursts.
 */
import { readDevVars } from "../../scripts/lib/dev-auth.mjs";
import { request, sleep } from "./client.mjs";
import { waitWorkerdQuiet } from "./cpu.mjs";

export function adminToken() {
  return readDevVars().ADMIN_TOKEN || "dev-admin-token";
}

/**
 * GET /admin/api/conversations/:id, or null when unavailable. A request that hangs
 * (wrangler dev's proxy under load sometimes drops one) is given up after
 * `timeoutMs` and tried again, `attempts` times in all.
 */
export async function convStats(ctx, conv, { timeoutMs = 20_000, attempts = 3 } = {}) {
  for (let i = 0; i < attempts; i++) {
    try {
      const r = await request({ base: ctx.url, path: `/admin/api/conversations/${conv}`, token: adminToken(), timeoutMs });
      if (r.status === 200 && r.body && typeof r.body === "object") return r.body;
      if (r.status !== 429 && r.status !== 503) return null;
    } catch {}
    await sleep(200);
  }
  return null;
}

/**
 * Waits until the conversation's outbox (member pokes) is empty. Returns the
 * seconds waited; null when the server shows no `outbox_pending` (then it waits
 * until the product's workerd is idle instead, or 1 s without `ctx.groups`);
 * `{ timedOut, pending, seconds }` after `timeoutMs`.
 */
export async function waitOutboxDrained(ctx, conv, timeoutMs = 180_000) {
  const t0 = performance.now();
  for (;;) {
    const s = await convStats(ctx, conv);
    const pending = s?.outbox_pending;
    if (s && typeof pending !== "number") {
      if (ctx.groups) await waitWorkerdQuiet(ctx.groups, { maxMs: Math.min(timeoutMs, 60_000) });
      else await sleep(1000);
      return null;
    }
    if (pending === 0) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > timeoutMs) return { timedOut: true, pending: pending ?? "unknown (stats unavailable)", seconds: (performance.now() - t0) / 1000 };
    await sleep(100);
  }
}
