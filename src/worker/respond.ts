import type { Context } from "hono";
import type { Json } from "../protocol/internal";

/** A body the objects already serialized (pages, sync with timelines): passed through, not parsed again. */
export function jsonText(c: Context, json: Json<unknown>, status: 200 | 201 = 200): Response {
  return c.body(json, status, { "content-type": "application/json" });
}
