/**
 * Raw-limit endpoints for `npm run bench`, mounted only when BENCH_ENABLED="true"
 * (the bench runner passes it to `wrangler dev`; a deployed Worker has none).
 * They go through the same Worker and the same HTTP path as the real API, so
 * the ratio isolates what the product adds.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../auth";
import { ApiError } from "../errors";
import { valid } from "../validate";

const name = z.object({ name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
const pageQuery = z.object({
  after: z.string().regex(/^\d{1,16}$/).transform(Number),
  limit: z.string().regex(/^\d{1,3}$/).transform(Number),
});

export const bench = new Hono<AppEnv>()
  .use("*", async (c, next) => {
    if (c.env.BENCH_ENABLED !== "true") throw new ApiError("not_found", "no such route");
    await next();
  })
  .post("/:name/insert", valid("param", name), async (c) => {
    const body = await c.req.text();
    const stub = c.env.BENCH.get(c.env.BENCH.idFromName(c.req.valid("param").name));
    return c.json({ seq: await stub.insert(body) }, 201);
  })
  .get("/:name/page", valid("param", name), valid("query", pageQuery), async (c) => {
    const { after, limit } = c.req.valid("query");
    const stub = c.env.BENCH.get(c.env.BENCH.idFromName(c.req.valid("param").name));
    return c.json({ entries: await stub.page(after, limit) });
  })
  .post("/:name/fill", valid("param", name), valid("query", z.object({ count: z.string().regex(/^\d{1,6}$/).transform(Number) })), async (c) => {
    const stub = c.env.BENCH.get(c.env.BENCH.idFromName(c.req.valid("param").name));
    return c.json({ total: await stub.fill(c.req.valid("query").count, 200) });
  });
