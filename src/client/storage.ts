/**
 * Where the SDK keeps what must survive a reload: per-conversation cursors and
 * dedupe watermarks, the sync checkpoint, the pending outbox and the to-device
 * watermark. Three implementations: MemoryStorage (tests, ephemeral apps),
 * IndexedDBStorage (browsers) and FileStorage (Node, `./node-file-storage`).
 */

/** Any JSON value. Stored values are plain data: no Dates, Maps or class instances. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/** One write of an atomic batch. */
export type StorageOp = { op: "set"; key: string; value: JsonValue } | { op: "delete"; key: string };

/**
 * A small key/value store of JSON values. `batch` must be atomic: after a crash
 * either every op of the batch is visible or none is. The SDK relies on this to
 * commit an app's writes together with the cursor that covers them.
 */
export interface ClientStorage {
  get(key: string): Promise<JsonValue | undefined>;
  set(key: string, value: JsonValue): Promise<void>;
  delete(key: string): Promise<void>;
  /** Applies every op, in order, all or nothing. */
  batch(ops: readonly StorageOp[]): Promise<void>;
  /** Keys that start with `prefix`, in ascending order. */
  keys(prefix: string): Promise<string[]>;
}

/** Deep copy through JSON, so callers never share mutable state with the store. */
export function cloneJson<T extends JsonValue>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * An in-memory ClientStorage. Survives a new client instance over the same
 * object (which is how tests simulate a crash), not a process restart.
 *
 * @example
 * const storage = new MemoryStorage();
 * const client = new OfflineClient({ baseUrl, token, storage });
 */
export class MemoryStorage implements ClientStorage {
  readonly #data = new Map<string, string>();

  async get(key: string): Promise<JsonValue | undefined> {
    const raw = this.#data.get(key);
    return raw === undefined ? undefined : (JSON.parse(raw) as JsonValue);
  }

  async set(key: string, value: JsonValue): Promise<void> {
    this.#data.set(key, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    this.#data.delete(key);
  }

  async batch(ops: readonly StorageOp[]): Promise<void> {
    // Serialize everything first: a value that cannot be serialized fails the whole batch.
    const prepared = ops.map((o) => (o.op === "set" ? { key: o.key, raw: JSON.stringify(o.value) } : { key: o.key, raw: null }));
    for (const p of prepared) {
      if (p.raw === null) this.#data.delete(p.key);
      else this.#data.set(p.key, p.raw);
    }
  }

  async keys(prefix: string): Promise<string[]> {
    return [...this.#data.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Number of stored keys (tests). */
  get size(): number {
    return this.#data.size;
  }
}
