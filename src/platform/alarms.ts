/**
 * One alarm per Durable Object, shared by everything that needs a wake-up
 * (notification windows, retention, push decisions, sweeps): the earliest
 * request wins. The last known alarm time is kept in memory so a burst of
 * requests for the same wake-up costs one storage call, not one each.
 */
export class AlarmScheduler {
  readonly #storage: DurableObjectStorage;
  /** The alarm known to be set, or null when none is; undefined until read. */
  #at: number | null | undefined = undefined;

  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
  }

  /** Makes sure the object wakes at `time` or earlier. */
  async atOrBefore(time: number): Promise<void> {
    if (this.#at === undefined) this.#at = await this.#storage.getAlarm();
    if (this.#at !== null && this.#at <= time) return;
    await this.#storage.setAlarm(time);
    this.#at = time;
  }

  /** The alarm handler started: the platform cleared the alarm it ran for. */
  fired(): void {
    this.#at = null;
  }

  /** True when a wake-up at or before `time` is already known to be set (no storage call). */
  covers(time: number): boolean {
    return this.#at !== undefined && this.#at !== null && this.#at <= time;
  }
}
