/** Conversations: create, summary, membership, send and history pages. */
import { Hono } from "hono";
import { z } from "zod";
import { changeMembersSchema, createConversationSchema, id, pageQuerySchema, sendMessageSchema } from "../../protocol/schemas";
import { LIMITS } from "../../protocol/limits";
import type { AppEnv } from "../auth";
import { serializeBody } from "../body";
import { unwrap } from "../errors";
import { callConversation, callUser } from "../stubs";
import { valid } from "../validate";
import { doc } from "../openapi";
import { conversationSummarySchema, expiredReceiptsSchema, messagePageSchema, sendResultSchema } from "../../protocol/responses";

const params = valid("param", z.object({ id }));

export const conversations = new Hono<AppEnv>()
  .post(
    "/",
    doc({ summary: "Create a conversation", tag: "conversations", ok: { status: 201, description: "created; the creator is a member", schema: conversationSummarySchema }, errors: ["invalid_request", "conflict", "payload_too_large"] }),
    valid("json", createConversationSchema),
    async (c) => {
    const req = c.req.valid("json");
    const convId = req.id ?? crypto.randomUUID();
    const creator = { user: c.var.user, device: c.var.device };
    const summary = unwrap(
      await callConversation(c.env, convId, "create", { id: convId, creator, members: req.members, ...(req.retention ? { retention: req.retention } : {}) }),
    );
    return c.json(summary, 201);
    },
  )
  .get("/:id", doc({ summary: "A conversation's summary (current members)", tag: "conversations", ok: { status: 200, description: "summary", schema: conversationSummarySchema }, errors: ["invalid_request", "forbidden", "not_found"] }), params, async (c) => {
    const { id: convId } = c.req.valid("param");
    return c.json(unwrap(await callConversation(c.env, convId, "summary", c.var.user)));
  })
  .post("/:id/members", doc({ summary: "Add or remove members (one member entry in the log)", tag: "conversations", ok: { status: 200, description: "the new summary", schema: conversationSummarySchema }, errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"] }), params, valid("json", changeMembersSchema), async (c) => {
    const { id: convId } = c.req.valid("param");
    const { add = [], remove = [] } = c.req.valid("json");
    const actor = { user: c.var.user, device: c.var.device };
    return c.json(unwrap(await callConversation(c.env, convId, "changeMembers", actor, add, remove)));
  })
  .post("/:id/messages", doc({ summary: "Send a message (idempotent by device + client_msg_id)", description: "201 when appended; 200 with duplicate: true for a retry of the same client_msg_id from the same device.", tag: "conversations", ok: { status: 201, description: "accepted durably", schema: sendResultSchema }, errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"] }), params, valid("json", sendMessageSchema), async (c) => {
    const { id: convId } = c.req.valid("param");
    const { client_msg_id, body, attachments: mediaIds } = c.req.valid("json");
    const bodyJson = serializeBody(body);
    const sender = { user: c.var.user, device: c.var.device };
    // The sender must own each attachment; the reference is recorded before the send so no sweep races it.
    const attachments = mediaIds ? unwrap(await callUser(c.env, sender.user, "attachMedia", mediaIds, convId)) : [];
    const result = unwrap(await callConversation(c.env, convId, "send", sender, client_msg_id, bodyJson, attachments));
    return c.json(result, result.duplicate ? 200 : 201);
  })
  .get("/:id/messages", doc({ summary: "A page of history (after = forward, before = newest first)", tag: "conversations", ok: { status: 200, description: "messages ascending by seq, with gaps", schema: messagePageSchema }, errors: ["invalid_request", "forbidden", "not_found", "epoch_mismatch"] }), params, valid("query", pageQuerySchema), async (c) => {
    const { id: convId } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = unwrap(
      await callConversation(c.env, convId, "page", { user: c.var.user, device: c.var.device }, {
          limit: q.limit ?? LIMITS.defaultPageSize,
          ...(q.after !== undefined ? { after: q.after } : {}),
          ...(q.before !== undefined ? { before: q.before } : {}),
          ...(q.epoch !== undefined ? { epoch: q.epoch } : {}),
        }),
    );
    return c.json(page);
  })
  .get("/:id/expired", doc({ summary: "Undelivered-expiry receipt: your messages retention removed before a device received them", tag: "conversations", ok: { status: 200, description: "per recipient device", schema: expiredReceiptsSchema }, errors: ["invalid_request", "forbidden", "not_found"] }), params, async (c) => {
    const { id: convId } = c.req.valid("param");
    return c.json(unwrap(await callConversation(c.env, convId, "expiredReceipts", c.var.user)));
  });
