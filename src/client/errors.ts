/**
 * Failures the SDK distinguishes: the server said no (HttpError), the network
 * did (NetworkError), or no accepted token can be had (AuthRequiredError).
 */
import type { ErrorCode } from "../protocol/errors";
import type { RefusalReason } from "./types";

/** The server answered with an error status and (usually) the contract's error body. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode | "unknown",
    message: string,
    /** Seconds from `Retry-After` (429/503), when the server sent one. */
    readonly retryAfter: number | null = null,
    /** The conversation's current epoch (409 `epoch_mismatch`). */
    readonly epoch: string | null = null,
  ) {
    super(`${status} ${code}: ${message}`);
  }

  /** 408, 429 and 5xx are worth retrying later; other 4xx never change on retry. */
  get retryable(): boolean {
    return this.status === 408 || this.status === 429 || this.status >= 500;
  }

  /** Reads the contract's error body and `Retry-After` header from a failed response. */
  static async from(res: Response): Promise<HttpError> {
    let code: ErrorCode | "unknown" = "unknown";
    let message = res.statusText || "request failed";
    let epoch: string | null = null;
    let bodyRetry: number | null = null;
    try {
      const body = (await res.json()) as { error?: { code?: unknown; message?: unknown; epoch?: unknown; retry_after?: unknown }; epoch?: unknown };
      if (typeof body.error?.code === "string") code = body.error.code as ErrorCode;
      if (typeof body.error?.message === "string") message = body.error.message;
      const e = body.error?.epoch ?? body.epoch;
      if (typeof e === "string") epoch = e;
      if (typeof body.error?.retry_after === "number") bodyRetry = body.error.retry_after;
    } catch {
      // Not JSON (a proxy's error page): status alone decides.
    }
    return new HttpError(res.status, code, message, parseRetryAfter(res.headers.get("retry-after")) ?? bodyRetry, epoch);
  }
}

/** The request never got an answer: offline, connection reset, DNS, aborted. */
export class NetworkError extends Error {
  override readonly name = "NetworkError";
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/** The server sent something the contract does not allow (a malformed socket frame); it was dropped. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** The client was stopped (went offline) while the operation ran. */
export class StoppedError extends Error {
  override readonly name = "StoppedError";
  constructor() {
    super("the client is offline");
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * No token the server accepts can be had right now: the token provider threw,
 * or a freshly requested token was refused (401) as well. Nothing is dropped
 * for it; work resumes once a token works again.
 */
export class AuthRequiredError extends Error {
  override readonly name = "AuthRequiredError";
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

const REFUSALS: Readonly<Record<number, RefusalReason>> = {
  400: "invalid_request",
  403: "forbidden",
  404: "not_found",
  413: "payload_too_large",
};

/** The service refused a request's content for good: repeating it cannot succeed. */
export interface Refusal {
  error: HttpError;
  reason: RefusalReason;
}

/**
 * The refusal in `err`, or null when waiting or a new token could still help.
 * The contract's error code must match the status: a proxy's bare 404 or 413
 * says nothing about the request, and must not cost a user their message.
 */
export function refusalOf(err: unknown): Refusal | null {
  if (!(err instanceof HttpError)) return null;
  const reason = REFUSALS[err.status];
  return reason !== undefined && err.code === reason ? { error: err, reason } : null;
}

/** Whether waiting and trying again could help. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpError) return err.retryable;
  return err instanceof NetworkError;
}
