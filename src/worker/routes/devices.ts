/** Devices: register the calling device (and its push target), forget one of your devices. */
import { Hono } from "hono";
import { z } from "zod";
import { call } from "../../platform/rpc";
import { deviceInfoSchema } from "../../protocol/responses";
import { id, registerDeviceSchema } from "../../protocol/schemas";
import type { PushTarget } from "../../protocol/types";
import type { AppEnv } from "../auth";
import { unwrap } from "../errors";
import { doc } from "../openapi";
import { valid } from "../validate";

export const devices = new Hono<AppEnv>()
  .post(
    "/",
    doc({
      summary: "Register the calling device (and its push target)",
      description: "The device comes from the token (`did`). The body may be empty: a device without a push target is registered all the same.",
      tag: "devices",
      ok: { status: 200, description: "the device", schema: deviceInfoSchema },
      errors: ["invalid_request", "payload_too_large"],
      body: "optional",
      example: { push: { provider: "webhook", token: "bob-laptop" } },
    }),
    valid("json", registerDeviceSchema),
    async (c) => {
      const push = (c.req.valid("json").push ?? null) as PushTarget | null;
      return c.json(unwrap(await call(c.env.USERS, c.var.user, "registerDevice", c.var.user, c.var.device, push)));
    },
  )
  .delete(
    "/:device_id",
    doc({
      summary: "Forget one of your devices (a lost phone): its cursors, queue and push target",
      tag: "devices",
      ok: { status: 204, description: "forgotten" },
      errors: ["invalid_request", "not_found"],
    }),
    valid("param", z.object({ device_id: id })),
    async (c) => {
      unwrap(await call(c.env.USERS, c.var.user, "deleteDevice", c.req.valid("param").device_id));
      return c.body(null, 204);
    },
  );
