/**
 * Development-only token minting for the demo page. Mounted only when
 * DEV_MODE="true" (set in .dev.vars, never in wrangler.toml), so a deployed
 * Worker has no such route.
 */
import { Hono } from "hono";
import { sign } from "hono/jwt";
import { z } from "zod";
import { id } from "../../protocol/schemas";
import type { AppEnv } from "../auth";
import { ApiError } from "../errors";
import { valid } from "../validate";

export const devTokens = new Hono<AppEnv>().post("/token", valid("json", z.object({ user: id, device: id })), async (c) => {
  if (c.env.DEV_MODE !== "true") throw new ApiError("not_found", "no such route");
  const { user, device } = c.req.valid("json");
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({ sub: user, did: device, iat: now, exp: now + 86400 }, c.env.AUTH_SECRET, "HS256");
  return c.json({ token, user, device, expires_in: 86400 });
});
