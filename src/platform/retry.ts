/**
 * The one backoff formula and the one Retry-After jitter of the server.
 * Full jitter (uniform in [0, min(cap, base·2^attempt))) spreads retries of
 * many callers that failed together; Retry-After gets whole seconds of jitter
 * for the same reason.
 */

/** Milliseconds to wait before retry number `attempt` (0-based). */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/** The same in whole seconds, at least 1 (the Queue's `delaySeconds` unit). */
export function backoffSeconds(attempt: number, capSeconds: number, random: () => number = Math.random): number {
  return Math.max(1, Math.ceil(backoffMs(attempt, 1000, capSeconds * 1000, random) / 1000));
}

/** Retry-After seconds: at least the wait, plus `spread` seconds of jitter, so refused clients do not return in lockstep. */
export function retryAfterSeconds(waitMs: number, spreadSeconds: number, random: () => number = Math.random): number {
  return Math.max(1, Math.ceil(waitMs / 1000)) + Math.floor(random() * spreadSeconds);
}
