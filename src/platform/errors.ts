/**
 * The contract's error body as a Response, for everything that answers HTTP:
 * the Worker's error handler and the Durable Objects' socket upgrades.
 */
import { TUNING } from "../config/tuning";
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type Failure } from "../protocol/errors";
import { retryAfterSeconds } from "./retry";

export interface ErrorExtra {
  epoch?: string;
  retryAfter?: number;
  /** Overrides the code's usual status (426 for a socket path without an upgrade). */
  status?: number;
  /** Headers the error needs beside its body (a 416 says the size in Content-Range). */
  headers?: Record<string, string>;
}

export function errorResponse(code: ErrorCode, message: string, extra: ErrorExtra = {}): Response {
  const body: ErrorBody = { error: { code, message } };
  const headers = new Headers({ ...extra.headers, "content-type": "application/json" });
  if (extra.epoch !== undefined) {
    body.error.epoch = extra.epoch;
    body.epoch = extra.epoch;
  }
  if (code === "rate_limited" || code === "overloaded") {
    const retryAfter = extra.retryAfter ?? retryAfterSeconds(1000, TUNING.shedRetrySpreadSeconds + 1);
    body.error.retry_after = retryAfter;
    headers.set("retry-after", String(retryAfter));
  }
  return new Response(JSON.stringify(body), { status: extra.status ?? ERROR_STATUS[code], headers });
}

export function failureResponse(f: Failure): Response {
  return errorResponse(f.code, f.message, {
    ...(f.epoch !== undefined ? { epoch: f.epoch } : {}),
    ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}),
  });
}

/** A bug: logged by the caller, answered without detail. */
export function internalErrorResponse(): Response {
  return new Response(JSON.stringify({ error: { code: "internal", message: "internal error" } }), {
    status: 500,
    headers: { "content-type": "application/json" },
  });
}
