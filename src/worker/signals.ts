/**
 * Worker-side signals and the per-device rate limit. Latency is measured where
 * the client feels it (the Worker), and every shed response is counted, so a
 * reconnect storm shows up as volume and as 429/503 counts.
 */
import { createMiddleware } from "hono/factory";
import { metrics } from "../observability/metrics";
import type { AppEnv } from "./auth";
import { TUNING } from "../config/tuning";
import { retryAfterSeconds } from "../platform/retry";
import { ApiError } from "./errors";

/** Counts sync requests, times sync and history pages, counts 429/503, flushes the buffer. */
export const signals = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  const path = c.req.path;
  const paged = c.req.method === "GET" && (path === "/v1/sync" || /^\/v1\/conversations\/[^/]+\/messages$/.test(path));
  if (path === "/v1/sync" && c.req.method === "GET") metrics.count(c.env, "sync_requests_total");
  if (paged && c.res.status === 200) metrics.observe(c.env, "sync_page_seconds", (Date.now() - started) / 1000);
  if (c.res.status === 429 || c.res.status === 503) metrics.count(c.env, "shed_total", 1, { status: String(c.res.status) });
  const pending = metrics.flush(c.env);
  if (pending) c.executionCtx.waitUntil(pending);
});

/** Per-device budget with the Workers Rate Limiting binding (absent binding = no limit). */
export const deviceRateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const limiter = c.env.DEVICE_RATE;
  if (limiter) {
    const { success } = await limiter.limit({ key: `${c.var.user}/${c.var.device}` });
    // The binding counts per fixed window and does not say when it resets: spread retries over it.
    if (!success) {
      const retryAfter = retryAfterSeconds(TUNING.rateLimitRetryMinSeconds * 1000, TUNING.rateLimitRetrySpreadSeconds);
      throw new ApiError("rate_limited", "too many requests from this device", { retryAfter });
    }
  }
  await next();
});
