/**
 * ClientStorage in one JSON file, for Node (bots, CLIs, integration tests).
 * The only file of the SDK that uses Node APIs; import it from
 * `offline-delivery/client/node` (it is deliberately not exported from the
 * browser-safe `offline-delivery/client`).
 *
 * Every write replaces the whole file by writing a temporary file, fsyncing
 * it and renaming it over the old one, so a crash leaves either the old or the
 * new content: batches are atomic. Fine for the SDK's small state; not a
 * database for large message stores.
 */
import type { ClientStorage, JsonValue, StorageOp } from "./storage";

/** The part of `node:fs/promises` used here. */
interface FsPromises {
  readFile(path: string, encoding: "utf8"): Promise<string>;
  open(path: string, flags: string): Promise<{ writeFile(data: string, encoding: "utf8"): Promise<void>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
}

/**
 * Loaded at run time through a computed specifier so that browser bundlers and
 * the Workers typecheck (which has no Node typings) never see the import.
 */
async function loadFs(): Promise<FsPromises> {
  const specifier = ["node", "fs/promises"].join(":");
  return (await import(specifier)) as FsPromises;
}

/**
 * @example
 * import { FileStorage } from "offline-delivery/client/node";
 * const storage = new FileStorage("./bob-laptop.json");
 * const client = new OfflineClient({ baseUrl: "http://127.0.0.1:8787", token, storage });
 */
export class FileStorage implements ClientStorage {
  readonly #path: string;
  #data: Map<string, JsonValue> | null = null;
  #fs: FsPromises | null = null;
  /** Writes are chained so two batches never interleave their renames. */
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.#path = path;
  }

  async #load(): Promise<Map<string, JsonValue>> {
    if (this.#data) return this.#data;
    this.#fs ??= await loadFs();
    let parsed: Record<string, JsonValue> = {};
    try {
      parsed = JSON.parse(await this.#fs.readFile(this.#path, "utf8")) as Record<string, JsonValue>;
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    this.#data ??= new Map(Object.entries(parsed));
    return this.#data;
  }

  async get(key: string): Promise<JsonValue | undefined> {
    const value = (await this.#load()).get(key);
    return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as JsonValue);
  }

  set(key: string, value: JsonValue): Promise<void> {
    return this.batch([{ op: "set", key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ op: "delete", key }]);
  }

  batch(ops: readonly StorageOp[]): Promise<void> {
    const run = this.#queue.then(async () => {
      const current = await this.#load();
      const next = new Map(current);
      for (const o of ops) {
        if (o.op === "set") next.set(o.key, JSON.parse(JSON.stringify(o.value)) as JsonValue);
        else next.delete(o.key);
      }
      await this.#write(next);
      this.#data = next;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async keys(prefix: string): Promise<string[]> {
    return [...(await this.#load()).keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async #write(data: Map<string, JsonValue>): Promise<void> {
    const fs = this.#fs ?? (this.#fs = await loadFs());
    const tmp = `${this.#path}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
    const handle = await fs.open(tmp, "w");
    try {
      await handle.writeFile(JSON.stringify(Object.fromEntries(data)), "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, this.#path);
  }
}

function isMissing(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "ENOENT";
}
