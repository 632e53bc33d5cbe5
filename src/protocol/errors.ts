/** Error codes of the wire contract (PROTOCOL.md). Shared by server and client. */
export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  epoch_mismatch: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  range_not_satisfiable: 416,
  rate_limited: 429,
  overloaded: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** The error body every failing response carries. Extra fields (e.g. `epoch`) ride alongside. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; epoch?: string; retry_after?: number };
  epoch?: string;
}

/**
 * A failure as a value: Durable Object methods return these instead of throwing,
 * because RPC exceptions lose their custom fields on the way back.
 */
export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
  epoch?: string;
  retryAfter?: number;
}
export type Result<T> = { ok: true; value: T } | Failure;

export function fail(code: ErrorCode, message: string, extra: Partial<Pick<Failure, "epoch" | "retryAfter">> = {}): Failure {
  return { ok: false, code, message, ...extra };
}

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}
