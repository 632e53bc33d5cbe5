/**
 * One alarm per Durable Object, shared by everything that needs a wake-up
 * (notification windows, retention, push decisions, sweeps): the earliest
 * request wins. The last known alarm time is kept in memory so a burst of
 * requests for the same wake-up costs one storage call, not one each. Calls
 * run one at a time, so clearing an alarm never races a request for one.
 */
export class AlarmScheduler {
  readonly #storage: DurableObjectStorage;
  /** The alarm known to be set, or null when none is; undefined until read. */
  #at: number | null | undefined = undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Makes sure the object wakes at `time` or earlier. */
  atOrBefore(time: number): Promise<void> {
    return this.#serial(async () => {
      if (this.#at === undefined) this.#at = await this.#storage.getAlarm();
      if (this.#at !== null && this.#at <= time) return;
      await this.#storage.setAlarm(time);
      this.#at = time;
    });
  }

  /** Nothing needs a wake-up: removes an alarm left by work that overlapped the last handler. */
  none(): Promise<void> {
    return this.#serial(async () => {
      if (this.#at === undefined) this.#at = await this.#storage.getAlarm();
      if (this.#at === null) return;
      await this.#storage.deleteAlarm();
      this.#at = null;
    });
  }

  /**
   * The alarm handler started: the platform cleared the alarm it ran for, but
   * work already running may set another before this handler's body runs, so
   * the next call reads the alarm again.
   */
  fired(): void {
    this.#at = undefined;
  }

  /** True when a wake-up at or before `time` is already known to be set (no storage call). */
  covers(time: number): boolean {
    return this.#at !== undefined && this.#at !== null && this.#at <= time;
  }

  #serial(op: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(op);
    this.#chain = run.catch(() => undefined);
    return run;
  }
}
