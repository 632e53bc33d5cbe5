/**
 * Operator API (ADMIN_TOKEN): the nine signals as Prometheus text and JSON,
 * per-user and per-conversation stats, push gate state and dead letters, and
 * the dashboard page that draws them.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { metrics } from "../../observability/metrics";
import { toPrometheus } from "../../observability/prometheus";
import { readMetrics } from "../../observability/snapshot";
import { readGate } from "../../push/gate-do";
import { id } from "../../protocol/schemas";
import type { AppEnv } from "../auth";
import { ApiError, unwrap } from "../errors";
import { call } from "../../platform/rpc";
import { userStats } from "../admin-users";
import { valid } from "../validate";
import { doc } from "../openapi";
import { conversationStatsSchema, metricsSnapshotSchema, pushGatesSchema, userStatsSchema } from "../../protocol/admin-responses";
import dashboard from "../../admin/dashboard.html";

const PROVIDERS = ["webhook", "webpush", "apns", "fcm"] as const;

/** Compares in constant time so the token cannot be guessed byte by byte from timing. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (!c.env.ADMIN_TOKEN || !token || !sameSecret(token, c.env.ADMIN_TOKEN)) {
    throw new ApiError("unauthorized", "admin token required");
  }
  await next();
});

/** This isolate's buffer first, so a signal the caller just caused is in the merged view of the shards. */
async function snapshot(env: AppEnv["Bindings"]) {
  await metrics.flush(env, true);
  return readMetrics(env);
}

export const admin = new Hono<AppEnv>()
  // The page is a static shell; everything it shows comes from the token-guarded JSON below.
  .get("/", doc({ summary: "Operator dashboard (HTML; data from the token-guarded API)", tag: "admin", security: "none", ok: { status: 200, description: "the page", contentType: "text/html" } }), (c) => c.html(dashboard))
  .use("/api/*", adminAuth)
  .get("/api/metrics", doc({ summary: "The nine signals, Prometheus text exposition", tag: "admin", security: "admin", ok: { status: 200, description: "Prometheus text format 0.0.4", contentType: "text/plain; version=0.0.4" }, errors: ["overloaded"] }), async (c) => c.text(toPrometheus(await snapshot(c.env)), 200, { "content-type": "text/plain; version=0.0.4" }))
  .get("/api/metrics.json", doc({ summary: "The signals as JSON (counters, gauges, histograms)", tag: "admin", security: "admin", ok: { status: 200, description: "snapshot", schema: metricsSnapshotSchema }, errors: ["overloaded"] }), async (c) => c.json(await snapshot(c.env)))
  .get("/api/users/:id", doc({ summary: "Per-user stats: backlog, oldest undelivered and push state per device", tag: "admin", security: "admin", ok: { status: 200, description: "stats", schema: userStatsSchema }, errors: ["invalid_request", "overloaded"] }), valid("param", z.object({ id })), async (c) => c.json(await userStats(c.env, c.req.valid("param").id)))
  .get("/api/conversations/:id", doc({ summary: "Per-conversation stats: head, floor, outbox, retention counts", tag: "admin", security: "admin", ok: { status: 200, description: "stats", schema: conversationStatsSchema }, errors: ["invalid_request", "not_found", "overloaded"] }), valid("param", z.object({ id })), async (c) =>
    c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "stats"))),
  )
  .get("/api/push", doc({ summary: "Push gates per provider and recent dead letters", tag: "admin", security: "admin", ok: { status: 200, description: "gates", schema: pushGatesSchema }, errors: ["overloaded"] }), async (c) => {
    const gates = await Promise.all(PROVIDERS.map(async (provider) => ({ provider, ...(await readGate(c.env, provider)) })));
    return c.json({ providers: gates });
  });
