/**
 * Request validation through Hono's (standard-schema) validator, with our zod
 * schemas: a failure becomes `400 invalid_request` naming the first bad field,
 * before any Durable Object is touched. The same middleware carries the schema
 * into the OpenAPI document (hono-openapi), so docs and checks cannot drift.
 */
import { validator } from "hono-openapi";
import type { Context, ValidationTargets } from "hono";
import type { ZodType } from "zod";
import { ApiError } from "./errors";

/**
 * @example app.post("/v1/x", valid("json", schema), (c) => c.req.valid("json"))
 */
export function valid<T extends ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return validator(target, schema, (result) => {
    if (result.success) return;
    const issue = result.error[0];
    const path = (issue?.path ?? []).map((p) => (typeof p === "object" ? String(p.key) : String(p))).join(".");
    throw new ApiError("invalid_request", `${target} ${path ? `${path}: ` : ""}${issue?.message ?? "is invalid"}`);
  });
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json/i;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * "JSON everywhere": a body sent without a JSON content-type (curl -d, fetch
 * with a string) is still read as JSON, and an empty body is `{}`, so a client
 * that forgets the header gets its real error instead of a confusing one.
 * Bodies must be valid UTF-8: bad bytes are refused, not replaced with U+FFFD.
 * The body is read once; a request with the right header is not rebuilt.
 */
export async function jsonBody(c: Context): Promise<void> {
  const method = c.req.method;
  if (method === "POST" || method === "PUT" || method === "PATCH") {
    let text: string;
    try {
      text = strictUtf8.decode(await c.req.raw.arrayBuffer());
    } catch {
      throw new ApiError("invalid_request", "request body is not valid UTF-8");
    }
    if (JSON_TYPE.test(c.req.header("content-type") ?? "")) {
      // Hono's body cache holds promises (its type says otherwise): the validator parses this text.
      (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
    } else {
      const headers = new Headers(c.req.raw.headers);
      headers.set("content-type", "application/json");
      headers.delete("content-length");
      // An empty body stands for `{}` only when the client did not claim to send JSON.
      c.req.raw = new Request(c.req.raw.url, { method, headers, body: text.trim() === "" ? "{}" : text });
    }
  }
}
