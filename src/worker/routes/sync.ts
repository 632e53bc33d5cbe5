/** Sync and cursors: what changed since a checkpoint, and moving received/read forward. */
import { Hono } from "hono";
import { LIMITS } from "../../protocol/limits";
import { cursorsResponseSchema, syncResponseSchema } from "../../protocol/responses";
import { cursorsSchema, syncQuerySchema } from "../../protocol/schemas";
import { moveCursors } from "../../usecases/cursors";
import { remotePorts } from "../../usecases/ports";
import { syncInbox } from "../../usecases/sync";
import type { AppEnv } from "../auth";
import { unwrap } from "../errors";
import { doc } from "../openapi";
import { jsonText } from "../respond";
import { valid } from "../validate";

export const sync = new Hono<AppEnv>().get(
  "/",
  doc({
    summary: "Conversations changed since a checkpoint (summaries first, optionally with timelines)",
    description:
      "Without `since`: the whole inbox, newest activity first. Repeat with the returned checkpoint while `has_more`; keep the last checkpoint you fully processed. " +
      "`timeline_limit` (0..50) adds each conversation's newest entries after this device's `received` cursor; it moves no cursor.",
    tag: "sync",
    ok: { status: 200, description: "a page of summaries", schema: syncResponseSchema },
    errors: ["invalid_request"],
  }),
  valid("query", syncQuerySchema),
  async (c) => {
    const q = c.req.valid("query");
    const who = { user: c.var.user, device: c.var.device };
    const query = { limit: q.limit ?? LIMITS.defaultPageSize, timelineLimit: q.timeline_limit ?? 0, ...(q.since !== undefined ? { since: q.since } : {}) };
    return jsonText(c, unwrap(await syncInbox(remotePorts(c.env), who, query)));
  },
);

export const cursors = new Hono<AppEnv>().post(
  "/",
  doc({
    summary: "Move received (this device) and read (your user) cursors forward",
    description: "Maps of conversation id → seq (≤ 100 conversations). Lower values are ignored; values are clamped to what you may see. Every named conversation is checked before anything changes.",
    tag: "sync",
    ok: { status: 200, description: "the effective values", schema: cursorsResponseSchema },
    errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"],
    body: "optional",
    example: { received: { general: 2 }, read: { general: 2 } },
  }),
  valid("json", cursorsSchema),
  async (c) => {
    const { received = new Map<string, number>(), read = new Map<string, number>() } = c.req.valid("json");
    return c.json(unwrap(await moveCursors(remotePorts(c.env), { user: c.var.user, device: c.var.device }, received, read)));
  },
);
