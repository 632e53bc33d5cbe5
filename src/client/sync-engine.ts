/**
 * The sync pass and the loop that runs it. A pass is idempotent, so one that
 * dies half-way is simply run again: outbox → summaries (with timelines) →
 * pulls of the conversations on screen → read marks → to-device queue →
 * sockets. Failures retry with full-jitter backoff (honouring Retry-After);
 * while no token is accepted the loop keeps asking the provider at the
 * slowest pace, and a static token waits for `tokenChanged()`.
 */
import type { ApiTransport } from "./api";
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Cursors } from "./cursors";
import type { Emitter } from "./emitter";
import { AuthRequiredError, isRetryable, StoppedError } from "./errors";
import type { History } from "./history";
import { Mutex } from "./mutex";
import type { Outbox } from "./outbox";
import type { Summaries } from "./summaries";
import type { ClientStatus } from "./types";

export interface SyncParts {
  api: ApiTransport;
  events: Emitter;
  outbox: Outbox;
  summaries: Summaries;
  history: History;
  cursors: Cursors;
  /** Drains the to-device queue; null when the app takes no to-device entries. */
  toDevice: ((signal: AbortSignal | undefined) => Promise<void>) | null;
  backoff: BackoffOptions | undefined;
  random: () => number;
  shown(): Iterable<string>;
  openSockets(): void;
  setStatus(status: ClientStatus): void;
  checkpoint(): string | null;
}

export class SyncEngine {
  readonly #p: SyncParts;
  /** One pass at a time, and reconnect pulls never run beside a pass. */
  readonly #passLock = new Mutex();
  #online = false;
  #abort: AbortController | null = null;
  #interval: ReturnType<typeof setInterval> | null = null;
  #dirty = false;
  #runner: Promise<void> | null = null;
  #attempt = 0;
  #lastPassOk = false;
  #idleWaiters: Array<() => void> = [];
  /** Ends the current backoff pause early (a new token arrived). */
  #wake: (() => void) | null = null;

  constructor(parts: SyncParts) {
    this.#p = parts;
  }

  get online(): boolean {
    return this.#online;
  }

  /** The abort signal of the current online period. */
  get signal(): AbortSignal | undefined {
    return this.#abort?.signal;
  }

  start(intervalMs: number): void {
    if (this.#online) return;
    this.#online = true;
    this.#abort = new AbortController();
    if (intervalMs > 0) this.#interval = setInterval(() => this.request(), intervalMs);
    this.request();
  }

  stop(): void {
    if (!this.#online) return;
    this.#online = false;
    this.#abort?.abort();
    this.#abort = null;
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = null;
    this.#dirty = false;
    this.#lastPassOk = false;
  }

  /** Asks for a pass soon (coalesced with any pass already asked for). */
  request(): void {
    if (!this.#online) return;
    this.#dirty = true;
    this.#runner ??= this.#runLoop().finally(() => {
      this.#runner = null;
      // A request that came in while the loop was winding down.
      if (this.#online && this.#dirty) this.request();
    });
  }

  /** A new token may work: retry now instead of after the backoff. */
  retryNow(): void {
    this.#attempt = 0;
    this.#wake?.();
    this.request();
  }

  /** One pass now, throwing on failure (progress made before it stays persisted). */
  runPass(): Promise<void> {
    return this.#passLock.run(() => this.#pass(this.signal));
  }

  /** Pulls one conversation outside a pass (before a live socket reconnects). */
  pull(id: string): Promise<void> {
    return this.#passLock.run(() => this.#p.history.pull(id, this.signal));
  }

  whenIdle(timeoutMs: number): Promise<void> {
    if (this.#online && this.#runner === null && this.#lastPassOk && !this.#dirty) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        reject(new Error(`client did not become idle within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#idleWaiters.push(done);
    });
  }

  async #pass(signal: AbortSignal | undefined): Promise<void> {
    const p = this.#p;
    await p.outbox.flush();
    await p.summaries.sync(signal);
    for (const id of [...p.shown()]) await p.history.pull(id, signal);
    await p.cursors.flushReads(signal);
    if (p.toDevice) await p.toDevice(signal);
    if (this.#online) p.openSockets();
  }

  async #runLoop(): Promise<void> {
    const p = this.#p;
    while (this.#online && this.#dirty) {
      this.#dirty = false;
      const signal = this.signal;
      try {
        await this.#passLock.run(() => this.#pass(signal));
        this.#attempt = 0;
        this.#lastPassOk = true;
        if (this.#online) p.setStatus("online");
        p.events.emit("synced", { checkpoint: p.checkpoint() });
        if (!this.#dirty) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      } catch (err) {
        this.#lastPassOk = false;
        if (!this.#online || err instanceof StoppedError) return;
        p.events.emit("error", err);
        if (err instanceof AuthRequiredError) {
          p.setStatus("auth_required");
          if (p.api.waitingForToken) return;
        } else {
          p.setStatus("connecting");
          // Other refusals do not heal by waiting; the next start/show/poke tries again.
          if (!isRetryable(err)) return;
        }
        const attempt = this.#attempt++;
        const delayMs = backoffDelay(attempt, err, p.backoff, p.random);
        p.events.emit("retry", { delayMs, attempt, error: err });
        try {
          await this.#pause(delayMs, signal);
        } catch {
          return;
        }
        this.#dirty = true;
      }
    }
  }

  /** Like sleep(), but `retryNow()` ends it early. */
  #pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new StoppedError());
      const finish = (fn: () => void) => () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#wake = null;
        fn();
      };
      const onAbort = finish(() => reject(new StoppedError()));
      const timer = setTimeout(finish(resolve), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#wake = finish(resolve);
    });
  }
}
