/**
 * ClientStorage over IndexedDB (browsers). One object store of JSON values;
 * a batch is one readwrite transaction, which IndexedDB commits atomically.
 *
 * The minimal IndexedDB shapes below are declared here because the project
 * typechecks against the Workers types (no DOM lib); a browser's real objects
 * satisfy them structurally.
 */
import type { ClientStorage, JsonValue, StorageOp } from "./storage";

interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: ((this: unknown, ev: unknown) => void) | null;
  onerror: ((this: unknown, ev: unknown) => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: ((this: unknown, ev: unknown) => void) | null;
  onblocked: ((this: unknown, ev: unknown) => void) | null;
}
interface IdbObjectStore {
  get(key: string): IdbRequest<unknown>;
  put(value: unknown, key: string): IdbRequest<unknown>;
  delete(key: string): IdbRequest<unknown>;
  getAllKeys(): IdbRequest<unknown[]>;
}
interface IdbTransaction {
  objectStore(name: string): IdbObjectStore;
  error: unknown;
  oncomplete: ((this: unknown, ev: unknown) => void) | null;
  onerror: ((this: unknown, ev: unknown) => void) | null;
  onabort: ((this: unknown, ev: unknown) => void) | null;
}
interface IdbDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: "readonly" | "readwrite"): IdbTransaction;
  close(): void;
}
/** The part of `indexedDB` this class uses. */
export interface IdbFactoryLike {
  open(name: string, version?: number): IdbOpenRequest;
}

const STORE = "kv";

/**
 * Browser storage for the SDK, one IndexedDB database per name (use one per
 * user/device so two signed-in accounts never share cursors).
 *
 * @example
 * const storage = new IndexedDBStorage("offline-delivery:alice:phone");
 * const client = new OfflineClient({ baseUrl: location.origin, token, storage });
 */
export class IndexedDBStorage implements ClientStorage {
  readonly #name: string;
  readonly #factory: IdbFactoryLike;
  #db: Promise<IdbDatabase> | null = null;

  constructor(name: string, factory?: IdbFactoryLike) {
    const found = factory ?? (globalThis as { indexedDB?: IdbFactoryLike }).indexedDB;
    if (!found) throw new Error("IndexedDB is not available in this environment");
    this.#name = name;
    this.#factory = found;
  }

  #open(): Promise<IdbDatabase> {
    this.#db ??= new Promise<IdbDatabase>((resolve, reject) => {
      const req = this.#factory.open(this.#name, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(asError(req.error, "IndexedDB open failed"));
      req.onblocked = () => reject(new Error("IndexedDB open blocked by another tab"));
    }).catch((err: unknown) => {
      this.#db = null;
      throw err;
    });
    return this.#db;
  }

  async #tx<T>(mode: "readonly" | "readwrite", run: (store: IdbObjectStore) => IdbRequest<T> | null): Promise<T | undefined> {
    const db = await this.#open();
    return new Promise<T | undefined>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = run(tx.objectStore(STORE));
      // Resolve on `complete`, not on the request's success: only then is a write durable.
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(asError(tx.error, "IndexedDB transaction failed"));
      tx.onabort = () => reject(asError(tx.error, "IndexedDB transaction aborted"));
    });
  }

  async get(key: string): Promise<JsonValue | undefined> {
    const raw = await this.#tx<unknown>("readonly", (s) => s.get(key));
    return typeof raw === "string" ? (JSON.parse(raw) as JsonValue) : undefined;
  }

  set(key: string, value: JsonValue): Promise<void> {
    return this.batch([{ op: "set", key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ op: "delete", key }]);
  }

  async batch(ops: readonly StorageOp[]): Promise<void> {
    if (ops.length === 0) return;
    // Values are stored as JSON text so what comes back is exactly what JSON can carry.
    const prepared = ops.map((o) => (o.op === "set" ? { key: o.key, raw: JSON.stringify(o.value) } : { key: o.key, raw: null }));
    await this.#tx<unknown>("readwrite", (s) => {
      for (const p of prepared) {
        if (p.raw === null) s.delete(p.key);
        else s.put(p.raw, p.key);
      }
      return null;
    });
  }

  async keys(prefix: string): Promise<string[]> {
    const all = (await this.#tx<unknown[]>("readonly", (s) => s.getAllKeys())) ?? [];
    return all.filter((k): k is string => typeof k === "string" && k.startsWith(prefix)).sort();
  }

  /** Closes the database connection (a later call reopens it). */
  async close(): Promise<void> {
    const db = this.#db;
    this.#db = null;
    if (db) (await db).close();
  }
}

function asError(err: unknown, fallback: string): Error {
  return err instanceof Error ? err : new Error(fallback);
}
