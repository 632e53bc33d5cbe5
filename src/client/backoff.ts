/** Reconnect pacing: full-jitter exponential backoff that never undercuts a server's Retry-After. */
import { HttpError, StoppedError } from "./errors";

export interface BackoffOptions {
  /** First ceiling, in ms (default 500). */
  baseMs?: number;
  /** Largest ceiling, in ms (default 30 000). */
  maxMs?: number;
}

/**
 * Delay before retry number `attempt` (0-based): uniform in [0, min(max, base·2^attempt)]
 * ("full jitter", so a crowd of clients spreads out), and at least the server's
 * Retry-After when the failure carried one.
 *
 * @example
 * const ms = backoffDelay(3, err, { baseMs: 500, maxMs: 30_000 });
 */
export function backoffDelay(attempt: number, err: unknown, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  const jitter = Math.floor(random() * ceiling);
  const retryAfter = err instanceof HttpError && err.retryAfter !== null ? err.retryAfter * 1000 : 0;
  return Math.max(jitter, retryAfter);
}

/** Resolves after `ms`, or rejects with StoppedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new StoppedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new StoppedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
