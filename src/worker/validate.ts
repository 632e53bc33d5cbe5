/**
 * Hono's validator with our zod schemas: a failure becomes `400 invalid_request`
 * naming the first bad field, before any Durable Object is touched.
 *
 * JSON bodies are parsed whatever the content-type says ("JSON everywhere"), so a
 * client that forgets the header gets its real error, not a confusing empty body.
 */
import type { Context, ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z, ZodType } from "zod";
import { ApiError } from "./errors";

async function rawJson(value: unknown, c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (/^application\/([\w.-]+\+)?json/i.test(type)) return value;
  const text = await c.req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError("invalid_request", "malformed JSON in request body");
  }
}

/**
 * @example app.post("/v1/x", valid("json", schema), (c) => c.req.valid("json"))
 */
export function valid<T extends ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return validator(target, async (value, c): Promise<z.output<T>> => {
    const input = target === "json" ? await rawJson(value, c) : value;
    const result = schema.safeParse(input);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    throw new ApiError("invalid_request", `${target} ${where}${issue?.message ?? "is invalid"}`);
  });
}
