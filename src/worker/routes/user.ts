/** Device-scoped endpoints: devices, sync, cursors and the per-device queue. */
import { Hono } from "hono";
import { z } from "zod";
import { LIMITS } from "../../protocol/limits";
import {
  cursorsSchema,
  id,
  registerDeviceSchema,
  syncQuerySchema,
  toDeviceAckSchema,
  toDeviceListSchema,
  toDeviceSendSchema,
} from "../../protocol/schemas";
import type { PushTarget } from "../../protocol/types";
import type { AppEnv } from "../auth";
import { serializeBody } from "../body";
import { unwrap } from "../errors";
import { callConversation, callUser } from "../stubs";
import { valid } from "../validate";
import { doc } from "../openapi";
import {
  cursorsResponseSchema,
  deviceInfoSchema,
  queuedSchema,
  remainingSchema,
  syncResponseSchema,
  toDevicePageSchema,
} from "../../protocol/responses";

export const devices = new Hono<AppEnv>()
  .post("/", doc({ summary: "Register the calling device (and its push target)", tag: "devices", ok: { status: 200, description: "the device", schema: deviceInfoSchema }, errors: ["invalid_request", "payload_too_large"] }), valid("json", registerDeviceSchema), async (c) => {
    const { push } = c.req.valid("json");
    const target = (push ?? null) as PushTarget | null;
    return c.json(unwrap(await callUser(c.env, c.var.user, "registerDevice", c.var.user, c.var.device, target)));
  })
  .delete("/:device_id", doc({ summary: "Forget one of your devices (cursors, queue, push target)", tag: "devices", ok: { status: 204, description: "forgotten" }, errors: ["invalid_request", "not_found"] }), valid("param", z.object({ device_id: id })), async (c) => {
    const { device_id } = c.req.valid("param");
    unwrap(await callUser(c.env, c.var.user, "deleteDevice", device_id));
    return c.body(null, 204);
  });

export const sync = new Hono<AppEnv>().get("/", doc({ summary: "Conversations changed since a checkpoint (summaries first)", tag: "sync", ok: { status: 200, description: "repeat with the checkpoint while has_more", schema: syncResponseSchema }, errors: ["invalid_request"] }), valid("query", syncQuerySchema), async (c) => {
  const { since, limit } = c.req.valid("query");
  return c.json(unwrap(await callUser(c.env, c.var.user, "sync", c.var.device, since, limit ?? LIMITS.defaultPageSize)));
});

/**
 * Cursors are checked by each ConversationDO (membership, clamp to the visible
 * head, read mirror for unread counts), then recorded in the UserDO. A request
 * naming several conversations is validated everywhere before anything changes.
 */
export const cursors = new Hono<AppEnv>().post("/", doc({ summary: "Move received (this device) and read (your user) cursors forward", tag: "sync", ok: { status: 200, description: "the effective values", schema: cursorsResponseSchema }, errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"] }), valid("json", cursorsSchema), async (c) => {
  const { received = new Map<string, number>(), read = new Map<string, number>() } = c.req.valid("json");
  const names = [...new Set([...received.keys(), ...read.keys()])];
  const who = { user: c.var.user, device: c.var.device };
  const check = (apply: boolean) =>
    Promise.all(
      names.map(async (conv) => ({
        conversation_id: conv,
        check: unwrap(await callConversation(c.env, conv, "cursor", who, received.get(conv) ?? null, read.get(conv) ?? null, apply)),
      })),
    );
  if (names.length > 1) await check(false);
  const inputs = await check(true);
  return c.json(unwrap(await callUser(c.env, c.var.user, "applyCursors", c.var.device, inputs, [...received.keys()], [...read.keys()])));
});

export const toDevice = new Hono<AppEnv>()
  .post("/", doc({ summary: "Queue device-addressed data for one device or all devices of a user", tag: "to-device", ok: { status: 202, description: "queued (a repeated client_msg_id is not queued twice)", schema: queuedSchema }, errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"] }), valid("json", toDeviceSendSchema), async (c) => {
    const req = c.req.valid("json");
    const bodyJson = serializeBody(req.body);
    const from = { user: c.var.user, device: c.var.device };
    const senderConversations = req.user === from.user ? [] : await callUser(c.env, from.user, "memberConversations");
    const result = unwrap(
      await callUser(c.env, req.user, "enqueueToDevice", {
          from,
          to: req.user,
          clientMsgId: req.client_msg_id,
          bodyJson,
          senderConversations,
          ...(req.device !== undefined ? { device: req.device } : {}),
        }),
    );
    return c.json(result, 202);
  })
  .get("/", doc({ summary: "This device's queued entries, oldest first", tag: "to-device", ok: { status: 200, description: "entries", schema: toDevicePageSchema }, errors: ["invalid_request"] }), valid("query", toDeviceListSchema), async (c) => {
    const { limit } = c.req.valid("query");
    return c.json(unwrap(await callUser(c.env, c.var.user, "listToDevice", c.var.device, limit ?? LIMITS.defaultPageSize)));
  })
  .post("/ack", doc({ summary: "Delete this device's entries up to an id", tag: "to-device", ok: { status: 200, description: "entries left", schema: remainingSchema }, errors: ["invalid_request", "payload_too_large"] }), valid("json", toDeviceAckSchema), async (c) => {
    const { up_to } = c.req.valid("json");
    return c.json(unwrap(await callUser(c.env, c.var.user, "ackToDevice", c.var.device, up_to)));
  });
