/**
 * WebSocket upgrades. The Worker authenticates (header or `?access_token=`),
 * validates the query, then hands the upgrade to the owning Durable Object with
 * the caller's identity in internal headers. The object checks membership and
 * answers with an HTTP error instead of a socket when it refuses.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { id, liveQuerySchema } from "../../protocol/schemas";
import { IDENTITY_HEADERS } from "../../realtime/sockets";
import type { AppEnv } from "../auth";
import { ApiError } from "../errors";
import { valid } from "../validate";
import { doc } from "../openapi";

export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** A plain request to a socket path gets 426 with the contract's error body. */
export const requireUpgrade = createMiddleware<AppEnv>(async (c, next) => {
  if (!isUpgrade(c.req.raw)) throw new ApiError("invalid_request", "this path needs a WebSocket upgrade", { status: 426 });
  await next();
});

function forward(c: { req: { raw: Request }; var: { user: string; device: string } }, path: string): Request {
  const headers = new Headers({ upgrade: "websocket" });
  headers.set(IDENTITY_HEADERS.user, c.var.user);
  headers.set(IDENTITY_HEADERS.device, c.var.device);
  return new Request(`https://do.internal${path}`, { headers });
}

export const liveSocket = new Hono<AppEnv>().get(
  "/:id/live",
  doc({ summary: "Live conversation socket: hello, catch-up pages, live, then each entry once", description: "WebSocket upgrade (token in the Authorization header or ?access_token=). Frames are listed on /docs.", tag: "realtime", ok: { status: 101, description: "switching protocols" }, errors: ["invalid_request", "forbidden", "not_found", "epoch_mismatch"] }),
  valid("param", z.object({ id })),
  valid("query", liveQuerySchema),
  async (c) => {
    const { id: convId } = c.req.valid("param");
    const q = c.req.valid("query");
    const params = new URLSearchParams();
    if (q.after !== undefined) params.set("after", String(q.after));
    if (q.epoch !== undefined) params.set("epoch", q.epoch);
    const stub = c.env.CONVERSATIONS.get(c.env.CONVERSATIONS.idFromName(convId));
    return stub.fetch(forward(c, `/live?${params}`));
  },
);

export const inboxSocket = new Hono<AppEnv>().get("/", doc({ summary: "Inbox socket: poke, read and membership frames for all your conversations", description: "WebSocket upgrade; an open inbox socket is what 'online' means for push.", tag: "realtime", ok: { status: 101, description: "switching protocols" }, errors: ["invalid_request"] }), async (c) => {
  const stub = c.env.USERS.get(c.env.USERS.idFromName(c.var.user));
  return stub.fetch(forward(c, "/inbox"));
});
