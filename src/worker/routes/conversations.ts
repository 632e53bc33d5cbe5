/** Conversations: create, summary, members, send, history pages, receipts. */
import { Hono } from "hono";
import { z } from "zod";
import { LIMITS } from "../../protocol/limits";
import {
  conversationSummarySchema,
  expiredReceiptsSchema,
  memberPageSchema,
  messagePageSchema,
  receiptCountsSchema,
  sendResultSchema,
} from "../../protocol/responses";
import {
  changeMembersSchema,
  createConversationSchema,
  id,
  membersQuerySchema,
  pageQuerySchema,
  receiptsQuerySchema,
  sendMessageSchema,
} from "../../protocol/schemas";
import { sendMessage } from "../../usecases/messages";
import { remotePorts } from "../../usecases/ports";
import { call } from "../../platform/rpc";
import type { AppEnv } from "../auth";
import { unwrap } from "../errors";
import { doc } from "../openapi";
import { jsonText } from "../respond";
import { valid } from "../validate";

const param = valid("param", z.object({ id }));

export const conversations = new Hono<AppEnv>()
  .post(
    "/",
    doc({
      summary: "Create a conversation",
      description: "The creator is a member. Creation writes seq 1, a `member` entry; up to 1,000 initial members (add more with POST …/members).",
      tag: "conversations",
      ok: { status: 201, description: "created", schema: conversationSummarySchema },
      errors: ["invalid_request", "conflict", "payload_too_large"],
      example: { id: "general", members: ["bob"], retention: { max_age_seconds: 2592000 } },
    }),
    valid("json", createConversationSchema),
    async (c) => {
      const req = c.req.valid("json");
      const convId = req.id ?? crypto.randomUUID();
      const creator = { user: c.var.user, device: c.var.device };
      const input = { id: convId, creator, members: req.members, ...(req.retention ? { retention: req.retention } : {}) };
      return c.json(unwrap(await call(c.env.CONVERSATIONS, convId, "create", input)), 201);
    },
  )
  .get(
    "/:id",
    doc({
      summary: "A conversation's summary (current members)",
      description: "`members` lists the first 1,000 current members by id; `members_truncated` says when GET …/members has more.",
      tag: "conversations",
      ok: { status: 200, description: "summary", schema: conversationSummarySchema },
      errors: ["invalid_request", "forbidden", "not_found"],
    }),
    param,
    async (c) => c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "summary", c.var.user))),
  )
  .get(
    "/:id/members",
    doc({
      summary: "Current members, a page at a time (by user id)",
      tag: "conversations",
      ok: { status: 200, description: "repeat with ?after=next_after while has_more", schema: memberPageSchema },
      errors: ["invalid_request", "forbidden", "not_found"],
    }),
    param,
    valid("query", membersQuerySchema),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "memberPage", c.var.user, q.after ?? "", q.limit ?? LIMITS.maxMembersListed)));
    },
  )
  .post(
    "/:id/members",
    doc({
      summary: "Add or remove members (one member entry in the log)",
      description: "Current members only; up to 1,000 users added or removed per request. A request that changes nothing writes nothing.",
      tag: "conversations",
      ok: { status: 200, description: "the new summary", schema: conversationSummarySchema },
      errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"],
      body: "optional",
      example: { add: ["carol"], remove: ["dave"] },
    }),
    param,
    valid("json", changeMembersSchema),
    async (c) => {
      const { add = [], remove = [] } = c.req.valid("json");
      const actor = { user: c.var.user, device: c.var.device };
      return c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "changeMembers", actor, add, remove)));
    },
  )
  .post(
    "/:id/messages",
    doc({
      summary: "Send a message (idempotent by device + client_msg_id)",
      description: "Acknowledged only after the entry is durably in the log. The same client_msg_id from the same device again answers 200 with the original seq and `duplicate: true`.",
      tag: "conversations",
      ok: { status: 201, description: "appended", schema: sendResultSchema },
      also: [{ status: 200, description: "a retry of an accepted send: the original seq, duplicate: true", schema: sendResultSchema }],
      errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"],
      example: { client_msg_id: "m1", body: { text: "hi" } },
    }),
    param,
    valid("json", sendMessageSchema),
    async (c) => {
      const sender = { user: c.var.user, device: c.var.device };
      const result = unwrap(await sendMessage(remotePorts(c.env), sender, c.req.valid("param").id, c.req.valid("json")));
      return c.json(result, result.duplicate ? 200 : 201);
    },
  )
  .get(
    "/:id/messages",
    doc({
      summary: "A page of history (after = forward, before = newest first)",
      description: "Messages ascend by seq in both directions; gaps name what retention removed and what lies outside your membership.",
      tag: "conversations",
      ok: { status: 200, description: "a page", schema: messagePageSchema },
      errors: ["invalid_request", "forbidden", "not_found", "epoch_mismatch"],
    }),
    param,
    valid("query", pageQuerySchema),
    async (c) => {
      const q = c.req.valid("query");
      const params = {
        limit: q.limit ?? LIMITS.defaultPageSize,
        ...(q.after !== undefined ? { after: q.after } : {}),
        ...(q.before !== undefined ? { before: q.before } : {}),
        ...(q.epoch !== undefined ? { epoch: q.epoch } : {}),
      };
      return jsonText(c, unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "page", { user: c.var.user, device: c.var.device }, params)));
    },
  )
  .get(
    "/:id/receipts",
    doc({
      summary: "Delivery and read receipts of one entry, derived from cursors",
      description: "Members (current, or former within their interval): how many current members other than the sender have a device whose `received` is ≥ seq (and how many devices), and how many have `read` ≥ seq.",
      tag: "conversations",
      ok: { status: 200, description: "counts", schema: receiptCountsSchema },
      errors: ["invalid_request", "forbidden", "not_found"],
    }),
    param,
    valid("query", receiptsQuerySchema),
    async (c) => c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "receipts", c.var.user, c.req.valid("query").seq))),
  )
  .get(
    "/:id/expired",
    doc({
      summary: "Undelivered-expiry receipt: your messages retention removed before a device received them",
      tag: "conversations",
      ok: { status: 200, description: "per recipient device", schema: expiredReceiptsSchema },
      errors: ["invalid_request", "forbidden", "not_found"],
    }),
    param,
    async (c) => c.json(unwrap(await call(c.env.CONVERSATIONS, c.req.valid("param").id, "expiredReceipts", c.var.user))),
  );
