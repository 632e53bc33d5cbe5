/** The SDK's typed event emitter: listeners can never break the SDK's own flow. */
import type { ClientEvents } from "./types";

export type Listener<K extends keyof ClientEvents> = (value: ClientEvents[K]) => void;

export class Emitter {
  readonly #listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>();

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Calls every listener; one that throws is reported as `error`, never re-thrown into SDK code. */
  emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(value);
      } catch (err) {
        if (event !== "error") this.emit("error", err);
      }
    }
  }
}
