/**
 * The SDK's durable state over a ClientStorage: per-conversation state, the
 * sync checkpoint, the outbox and the to-device watermark. Memory mirrors
 * storage and changes only after a write succeeded, so what the SDK acts on is
 * always what a reload would find.
 */
import type { Span } from "./coverage";
import { Mutex } from "./mutex";
import type { ClientStorage, JsonValue, StorageOp } from "./storage";
import type { ConversationState, OutboxItem } from "./types";

/** One unit of work: reads see the committed state, writes land in one atomic batch. */
export interface Transaction {
  state(id: string): ConversationState;
  put(state: ConversationState): void;
  setCheckpoint(checkpoint: string | null): void;
  setToDeviceDone(id: number): void;
  /** The app's own writes, committed in the same batch (before the SDK's). */
  include(ops: readonly StorageOp[]): void;
}

export function emptyState(id: string): ConversationState {
  return {
    id,
    epoch: null,
    received: 0,
    above: [],
    head_seq: 0,
    floor_seq: 0,
    read: 0,
    unread: 0,
    membership: null,
    server_received: 0,
    last_activity_at: null,
    gaps: [],
    read_pending: null,
    server_epoch: null,
    history_before: null,
  };
}

export class ClientStore {
  readonly #storage: ClientStorage;
  readonly #prefix: string;
  readonly #changed: (state: ConversationState) => void;
  /** Conversation state, checkpoint and to-device watermark: app handlers run inside it. */
  readonly #lock = new Mutex();
  /** The outbox has its own lock, so queueing a message never waits for a delivery handler. */
  readonly #outboxLock = new Mutex();

  #loaded: Promise<void> | null = null;
  #convs = new Map<string, ConversationState>();
  #checkpoint: string | null = null;
  #outbox: OutboxItem[] = [];
  #toDeviceDone = 0;

  constructor(storage: ClientStorage, prefix: string, changed: (state: ConversationState) => void) {
    this.#storage = storage;
    this.#prefix = prefix;
    this.#changed = changed;
  }

  /** Loads persisted state once; a failed load is retried by the next call. */
  ready(): Promise<void> {
    this.#loaded ??= this.#load().catch((err: unknown) => {
      this.#loaded = null;
      throw err;
    });
    return this.#loaded;
  }

  async #load(): Promise<void> {
    const p = this.#prefix;
    const [checkpoint, outbox, toDevice, keys] = await Promise.all([
      this.#storage.get(`${p}checkpoint`),
      this.#storage.get(`${p}outbox`),
      this.#storage.get(`${p}todevice`),
      this.#storage.keys(`${p}conv:`),
    ]);
    this.#checkpoint = typeof checkpoint === "string" ? checkpoint : null;
    this.#outbox = readOutbox(outbox);
    this.#toDeviceDone = typeof toDevice === "number" ? toDevice : 0;
    for (const key of keys) {
      const id = key.slice(`${p}conv:`.length);
      this.#convs.set(id, readState(id, await this.#storage.get(key)));
    }
  }

  /** The state of one conversation (an empty one when unknown). Not a copy: never mutate it. */
  state(id: string): ConversationState {
    return this.#convs.get(id) ?? emptyState(id);
  }

  known(id: string): boolean {
    return this.#convs.has(id);
  }

  states(): ConversationState[] {
    return [...this.#convs.values()];
  }

  get checkpoint(): string | null {
    return this.#checkpoint;
  }

  get toDeviceDone(): number {
    return this.#toDeviceDone;
  }

  get outbox(): readonly OutboxItem[] {
    return this.#outbox;
  }

  /**
   * Runs `fn` under the state lock and commits what it wrote in one atomic
   * batch; nothing is committed when `fn` or the batch fails.
   */
  transact<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T> {
    return this.#lock.run(async () => {
      const puts = new Map<string, ConversationState>();
      const appOps: StorageOp[] = [];
      // undefined: not written by this transaction.
      const meta: { checkpoint?: string | null; toDevice?: number } = {};
      const tx: Transaction = {
        state: (id) => puts.get(id) ?? this.state(id),
        put: (s) => void puts.set(s.id, s),
        setCheckpoint: (value) => void (meta.checkpoint = value),
        setToDeviceDone: (id) => void (meta.toDevice = id),
        include: (ops) => void appOps.push(...ops),
      };
      const result = await fn(tx);
      const ops: StorageOp[] = [...appOps];
      for (const s of puts.values()) ops.push({ op: "set", key: this.#convKey(s.id), value: s });
      const { checkpoint, toDevice } = meta;
      const checkpointKey = `${this.#prefix}checkpoint`;
      if (checkpoint === null) ops.push({ op: "delete", key: checkpointKey });
      else if (checkpoint !== undefined) ops.push({ op: "set", key: checkpointKey, value: checkpoint });
      if (toDevice !== undefined) ops.push({ op: "set", key: `${this.#prefix}todevice`, value: toDevice });
      if (ops.length > 0) await this.#storage.batch(ops);
      if (checkpoint !== undefined) this.#checkpoint = checkpoint;
      if (toDevice !== undefined) this.#toDeviceDone = toDevice;
      for (const s of puts.values()) {
        this.#convs.set(s.id, s);
        this.#changed(s);
      }
      return result;
    });
  }

  /** Applies `change` to one conversation; returning the same object writes nothing. */
  update(id: string, change: (s: ConversationState) => ConversationState): Promise<void> {
    return this.transact((tx) => {
      const before = tx.state(id);
      const after = change(before);
      if (after !== before) tx.put(after);
    });
  }

  /** Queues an item unless one with the same ids is queued; returns the queued one. */
  enqueue(item: OutboxItem): Promise<OutboxItem> {
    return this.#outboxLock.run(async () => {
      const existing = this.#outbox.find((i) => sameItem(i, item));
      if (existing) return existing;
      await this.#saveOutbox([...this.#outbox, item]);
      return item;
    });
  }

  dequeue(item: OutboxItem): Promise<void> {
    return this.#outboxLock.run(() => this.#saveOutbox(this.#outbox.filter((i) => !sameItem(i, item))));
  }

  async #saveOutbox(next: OutboxItem[]): Promise<void> {
    await this.#storage.set(`${this.#prefix}outbox`, next);
    this.#outbox = next;
  }

  #convKey(id: string): string {
    return `${this.#prefix}conv:${id}`;
  }
}

function sameItem(a: OutboxItem, b: OutboxItem): boolean {
  return a.conversation_id === b.conversation_id && a.client_msg_id === b.client_msg_id;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isSpan(s: unknown): s is Span {
  return Array.isArray(s) && s.length === 2 && typeof s[0] === "number" && typeof s[1] === "number";
}

function isGap(g: unknown): g is ConversationState["gaps"][number] {
  return isObject(g) && typeof g.from === "number" && typeof g.to === "number" && (g.reason === "retention" || g.reason === "not_member");
}

/** Reads a persisted state defensively: older SDK versions wrote fewer fields. */
function readState(id: string, raw: JsonValue | undefined): ConversationState {
  const base = emptyState(id);
  if (!isObject(raw)) return base;
  const num = (k: keyof ConversationState): number => {
    const v = raw[k];
    return typeof v === "number" ? v : 0;
  };
  const numOrNull = (k: keyof ConversationState): number | null => {
    const v = raw[k];
    return typeof v === "number" ? v : null;
  };
  const strOrNull = (k: keyof ConversationState): string | null => {
    const v = raw[k];
    return typeof v === "string" ? v : null;
  };
  return {
    ...base,
    epoch: strOrNull("epoch"),
    received: num("received"),
    above: Array.isArray(raw.above) ? raw.above.filter(isSpan) : [],
    head_seq: num("head_seq"),
    floor_seq: num("floor_seq"),
    read: num("read"),
    unread: num("unread"),
    membership: raw.membership === "member" || raw.membership === "left" ? raw.membership : null,
    server_received: num("server_received"),
    last_activity_at: strOrNull("last_activity_at"),
    gaps: Array.isArray(raw.gaps) ? raw.gaps.filter(isGap) : [],
    read_pending: numOrNull("read_pending"),
    server_epoch: strOrNull("server_epoch"),
    history_before: numOrNull("history_before"),
  };
}

function readOutbox(raw: JsonValue | undefined): OutboxItem[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (x): x is OutboxItem => isObject(x) && typeof x.conversation_id === "string" && typeof x.client_msg_id === "string" && "body" in x,
  );
}
