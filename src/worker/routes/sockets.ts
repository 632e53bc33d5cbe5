/**
 * WebSocket upgrades and socket tickets. The Worker authenticates (header,
 * one-time `?ticket=`, or `?access_token=`), validates the query, then hands
 * the upgrade to the owning object with the caller's identity in internal
 * headers. The object checks membership and answers with an HTTP error
 * instead of a socket when it refuses.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { call } from "../../platform/rpc";
import { IDENTITY_HEADERS } from "../../platform/sockets";
import { errorBodySchema, socketTicketSchema } from "../../protocol/responses";
import { id, liveQuerySchema } from "../../protocol/schemas";
import type { AppEnv } from "../auth";
import { ApiError, unwrap } from "../errors";
import { doc } from "../openapi";
import { valid } from "../validate";

export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** The paths that upgrade to sockets: the only ones where a token or ticket may ride in the query. */
export function isSocketPath(path: string): boolean {
  return path === "/v1/inbox" || /^\/v1\/conversations\/[^/]+\/live$/.test(path);
}

/** A plain request to a socket path gets 426 with the contract's error body. */
export const requireUpgrade = createMiddleware<AppEnv>(async (c, next) => {
  if (!isUpgrade(c.req.raw)) throw new ApiError("invalid_request", "this path needs a WebSocket upgrade", { status: 426 });
  await next();
});

function forward(c: { var: { user: string; device: string } }, path: string): Request {
  const headers = new Headers({ upgrade: "websocket" });
  headers.set(IDENTITY_HEADERS.user, c.var.user);
  headers.set(IDENTITY_HEADERS.device, c.var.device);
  return new Request(`https://do.internal${path}`, { headers });
}

const upgradeResponses = {
  ok: { status: 101, description: "switching protocols: the socket (frames on /docs)" },
  also: [{ status: 426, description: "a plain request (no Upgrade: websocket): the contract's error, code invalid_request", schema: errorBodySchema }],
};

export const liveSocket = new Hono<AppEnv>().get(
  "/:id/live",
  doc({
    summary: "Live conversation socket: hello, catch-up pages, live, then each entry once",
    description: "WebSocket upgrade. Authenticate with the Authorization header, a one-time ?ticket= (POST /v1/sockets/ticket) or ?access_token=. Frames are listed on /docs.",
    tag: "realtime",
    security: "socket",
    ...upgradeResponses,
    errors: ["invalid_request", "forbidden", "not_found", "epoch_mismatch"],
  }),
  valid("param", z.object({ id })),
  valid("query", liveQuerySchema),
  async (c) => {
    const q = c.req.valid("query");
    const params = new URLSearchParams();
    if (q.after !== undefined) params.set("after", String(q.after));
    if (q.epoch !== undefined) params.set("epoch", q.epoch);
    const stub = c.env.CONVERSATIONS.get(c.env.CONVERSATIONS.idFromName(c.req.valid("param").id));
    return stub.fetch(forward(c, `/live?${params}`));
  },
);

export const inboxSocket = new Hono<AppEnv>().get(
  "/",
  doc({
    summary: "Inbox socket: poke, read, membership and to_device frames for all your conversations",
    description: "WebSocket upgrade (header, ?ticket= or ?access_token=). An open inbox socket is what 'online' means for push.",
    tag: "realtime",
    security: "socket",
    ...upgradeResponses,
    errors: ["invalid_request"],
  }),
  valid(
    "query",
    z.object({
      access_token: z.string().optional().describe("the device JWT, for clients that cannot set headers (prefer a ticket)"),
      ticket: z.string().optional().describe("a one-time ticket from POST /v1/sockets/ticket"),
    }),
  ),
  async (c) => {
    const stub = c.env.USERS.get(c.env.USERS.idFromName(c.var.user));
    return stub.fetch(forward(c, "/inbox"));
  },
);

export const tickets = new Hono<AppEnv>().post(
  "/ticket",
  doc({
    summary: "A one-time socket ticket, so no long-lived token sits in a URL",
    description: "Bound to the caller's user and device, valid once, for 60 s: open a socket with ?ticket=<ticket>.",
    tag: "realtime",
    ok: { status: 200, description: "the ticket", schema: socketTicketSchema },
    errors: ["invalid_request", "payload_too_large"],
  }),
  async (c) => c.json(unwrap(await call(c.env.USERS, c.var.user, "issueTicket", c.var.user, c.var.device))),
);
