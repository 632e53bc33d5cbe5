/**
 * One place that turns failures into the contract's error body. Routes throw
 * `ApiError` (or return a DO `Failure` through `unwrap`); anything else is a bug
 * and is logged as one.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type Failure, type Result } from "../protocol/errors";
import { log } from "../observability/log";
import { isOverloaded } from "./stubs";

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { epoch?: string; retryAfter?: number; status?: number } = {},
  ) {
    super(message);
  }
}

export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw fromFailure(result);
}

export function fromFailure(f: Failure): ApiError {
  return new ApiError(f.code, f.message, {
    ...(f.epoch !== undefined ? { epoch: f.epoch } : {}),
    ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}),
  });
}

/** Jittered seconds so shed clients do not return in lockstep. */
export function jitteredRetryAfter(base = 1, spread = 4): number {
  return base + Math.floor(Math.random() * spread);
}

export function errorResponse(code: ErrorCode, message: string, extra: ApiError["extra"] = {}): Response {
  const body: ErrorBody = { error: { code, message } };
  const headers = new Headers({ "content-type": "application/json" });
  if (extra.epoch !== undefined) {
    body.error.epoch = extra.epoch;
    body.epoch = extra.epoch;
  }
  if (code === "rate_limited" || code === "overloaded") {
    const retryAfter = extra.retryAfter ?? jitteredRetryAfter();
    body.error.retry_after = retryAfter;
    headers.set("retry-after", String(retryAfter));
  }
  return new Response(JSON.stringify(body), { status: extra.status ?? ERROR_STATUS[code], headers });
}

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  429: "rate_limited",
  503: "overloaded",
};

export function handleError(err: unknown, c: Context): Response {
  if (err instanceof ApiError) return errorResponse(err.code, err.message, err.extra);
  if (err instanceof HTTPException) {
    const code = STATUS_CODES[err.status] ?? (err.status < 500 ? "invalid_request" : undefined);
    if (code) return errorResponse(code, err.message || code);
  }
  if (isOverloaded(err)) return errorResponse("overloaded", "a Durable Object is overloaded; retry later");
  log("unhandled_error", { method: c.req.method, path: c.req.path, error: String(err), stack: err instanceof Error ? err.stack : undefined });
  return new Response(JSON.stringify({ error: { code: "internal", message: "internal error" } }), {
    status: 500,
    headers: { "content-type": "application/json" },
  });
}
