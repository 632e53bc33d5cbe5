/**
 * How the Worker turns failures into the contract's error body. Routes throw
 * `ApiError` or return an object's `Failure` through `unwrap`; anything else is
 * a bug and is logged as one.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { errorResponse, internalErrorResponse, type ErrorExtra } from "../platform/errors";
import { log } from "../platform/log";
import { isOverloaded, isStorageOutOfMemory } from "../platform/rpc";
import type { ErrorCode, Failure, Result } from "../protocol/errors";

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: ErrorExtra = {},
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

const STATUS_CODES: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  412: "precondition_failed",
  413: "payload_too_large",
  416: "range_not_satisfiable",
  429: "rate_limited",
  503: "overloaded",
};

export function handleError(err: unknown, c: Context): Response {
  if (err instanceof ApiError) return errorResponse(err.code, err.message, err.extra);
  if (err instanceof HTTPException) {
    const code = STATUS_CODES[err.status] ?? (err.status < 500 ? "invalid_request" : undefined);
    if (code) return errorResponse(code, err.message || code);
  }
  if (isOverloaded(err)) {
    if (isStorageOutOfMemory(err)) log("storage_out_of_memory", { method: c.req.method, path: c.req.path }, "error");
    return errorResponse("overloaded", "a Durable Object is overloaded; retry later");
  }
  log("unhandled_error", { method: c.req.method, path: c.req.path, error: String(err), stack: err instanceof Error ? err.stack : undefined }, "error");
  return internalErrorResponse();
}
