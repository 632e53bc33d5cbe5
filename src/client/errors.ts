/** Failures the SDK distinguishes: the server said no (HttpError) or the network did (NetworkError). */
import type { ErrorCode } from "../protocol/errors";

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

/** Whether waiting and trying again could help. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof HttpError) return err.retryable;
  return err instanceof NetworkError;
}
