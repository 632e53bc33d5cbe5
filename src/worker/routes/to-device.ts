/** The per-device queue: device-addressed data (key exchange, device commands), deleted only by ack. */
import { Hono } from "hono";
import { LIMITS } from "../../protocol/limits";
import { queuedSchema, remainingSchema, toDevicePageSchema } from "../../protocol/responses";
import { toDeviceAckSchema, toDeviceListSchema, toDeviceSendSchema } from "../../protocol/schemas";
import { call } from "../../platform/rpc";
import { serializeBody } from "../../usecases/messages";
import type { AppEnv } from "../auth";
import { unwrap } from "../errors";
import { doc } from "../openapi";
import { valid } from "../validate";

export const toDevice = new Hono<AppEnv>()
  .post(
    "/",
    doc({
      summary: "Queue device-addressed data for one device or all devices of a user",
      description: "You may address your own devices and users you share a conversation with. The same sender device + client_msg_id again is not queued twice.",
      tag: "to-device",
      ok: { status: 202, description: "queued (a repeat answers the original count with duplicate: true)", schema: queuedSchema },
      errors: ["invalid_request", "forbidden", "not_found", "payload_too_large"],
      example: { user: "bob", client_msg_id: "k1", body: { prekey: "…" } },
    }),
    valid("json", toDeviceSendSchema),
    async (c) => {
      const req = c.req.valid("json");
      const bodyJson = unwrap(serializeBody(req.body));
      const from = { user: c.var.user, device: c.var.device };
      const senderConversations = req.user === from.user ? [] : await call(c.env.USERS, from.user, "memberConversations");
      const input = { from, to: req.user, clientMsgId: req.client_msg_id, bodyJson, senderConversations, ...(req.device !== undefined ? { device: req.device } : {}) };
      return c.json(unwrap(await call(c.env.USERS, req.user, "enqueueToDevice", input)), 202);
    },
  )
  .get(
    "/",
    doc({
      summary: "This device's queued entries, oldest first",
      tag: "to-device",
      ok: { status: 200, description: "entries", schema: toDevicePageSchema },
      errors: ["invalid_request"],
    }),
    valid("query", toDeviceListSchema),
    async (c) => c.json(unwrap(await call(c.env.USERS, c.var.user, "listToDevice", c.var.device, c.req.valid("query").limit ?? LIMITS.defaultPageSize))),
  )
  .post(
    "/ack",
    doc({
      summary: "Delete this device's entries up to an id",
      tag: "to-device",
      ok: { status: 200, description: "entries left", schema: remainingSchema },
      errors: ["invalid_request", "payload_too_large"],
      example: { up_to: 1 },
    }),
    valid("json", toDeviceAckSchema),
    async (c) => c.json(unwrap(await call(c.env.USERS, c.var.user, "ackToDevice", c.var.device, c.req.valid("json").up_to))),
  );
