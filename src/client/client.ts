/**
 * OfflineClient: one device's view of the service, offline-first.
 *
 * - Durable local state (ClientStorage): per-conversation coverage (the
 *   contiguous `received` watermark plus spans delivered above it), the sync
 *   checkpoint, the outbox and the to-device watermark.
 * - Sync pass: outbox → summaries (GET /v1/sync, checkpoint persisted per page)
 *   → for each shown conversation the newest page first, then forward backfill
 *   from the persisted watermark → read cursors → to-device queue → live sockets.
 * - Exactly-once hand-off: the app's `onEntries` only ever sees seqs not yet
 *   covered, and may return storage ops that commit in the same atomic batch as
 *   the new coverage, so a crash can neither lose nor repeat an entry.
 * - Sockets: one live socket per shown conversation and the inbox socket,
 *   reconnected with full-jitter backoff. Every failure falls back to the
 *   durable log: sockets are an optimisation.
 */
import { ERROR_STATUS, type ErrorCode } from "../protocol/errors";
import { CLOSE_NOT_MEMBER, type InboxServerFrame, type LiveServerFrame, type PokeFrame } from "../protocol/frames";
import { isId } from "../protocol/ids";
import { LIMITS } from "../protocol/limits";
import type {
  ConversationSummary,
  CursorsResponse,
  DeviceInfo,
  Gap,
  Membership,
  Message,
  MessagePage,
  PushTarget,
  RetentionPolicy,
  SendResult,
  SyncConversation,
  SyncResponse,
  ToDeviceEntry,
  ToDevicePage,
} from "../protocol/types";
import { backoffDelay, sleep, type BackoffOptions } from "./backoff";
import { addSpans, covers, spansOf, type Span } from "./coverage";
import { HttpError, isRetryable, NetworkError, StoppedError } from "./errors";
import { webSocketFactory, type ClientSocket, type SocketFactory } from "./socket";
import type { ClientStorage, JsonValue, StorageOp } from "./storage";

// ---------------------------------------------------------------- public types

/** What the SDK remembers about one conversation (persisted). */
export type ConversationState = {
  id: string;
  /** The epoch the local data belongs to; null until the first page or frame. */
  epoch: string | null;
  /** Contiguous watermark: every seq at or below it was handed to the app (or is a gap). */
  received: number;
  /** Spans handed to the app above `received` (newest-first pages). */
  above: Span[];
  head_seq: number;
  floor_seq: number;
  /** The user's read cursor (shared by their devices). */
  read: number;
  /** Unread count from the last summary. */
  unread: number;
  membership: Membership | null;
  /** This device's `received` as the server last reported it. */
  server_received: number;
  last_activity_at: string | null;
  /** The most recent gaps the server reported (at most 20). */
  gaps: { from: number; to: number; reason: Gap["reason"] }[];
  /** A read cursor waiting to be sent (set while offline). */
  read_pending: number | null;
  /** The epoch the last summary reported; differs from `epoch` until a pull resets. */
  server_epoch: string | null;
};

/** A message waiting to be confirmed by the server (persisted). */
export type OutboxItem = {
  conversation_id: string;
  client_msg_id: string;
  body: JsonValue;
  created_at: string;
};

/** Where a batch of entries came from. */
export type EntrySource = "newest" | "backfill" | "catch_up" | "live";

/** Entries the app has not seen before, ascending by seq. */
export interface EntryBatch {
  conversationId: string;
  epoch: string;
  messages: Message[];
  /** Gaps (retention / not_member) the server reported with these entries. */
  gaps: Gap[];
  source: EntrySource;
}

/** A handler may return storage ops; they commit atomically with the cursor that covers the batch. */
export type HandlerResult = void | readonly StorageOp[] | Promise<void | readonly StorageOp[]>;

export interface ResetInfo {
  conversationId: string;
  oldEpoch: string | null;
  newEpoch: string | null;
}

export interface SentInfo {
  conversationId: string;
  clientMsgId: string;
  seq: number;
  duplicate: boolean;
  via: "http" | "socket";
}

export interface SendFailedInfo {
  item: OutboxItem;
  error: HttpError;
}

export type ClientStatus = "offline" | "connecting" | "online";

/** Events for UIs and logs; handlers that must be awaited are options instead. */
export interface ClientEvents {
  status: ClientStatus;
  /** A conversation's state changed (summary, delivery, read cursor, reset). */
  conversation: ConversationState;
  /** Entries were committed (after `onEntries` and the storage batch). */
  delivered: EntryBatch;
  outbox: OutboxItem[];
  sent: SentInfo;
  sendFailed: SendFailedInfo;
  reset: ResetInfo;
  poke: PokeFrame;
  /** A sync pass finished without error. */
  synced: { checkpoint: string | null };
  /** The sync loop will retry after `delayMs`. */
  retry: { delayMs: number; attempt: number; error: unknown };
  /** A live socket reached `live` (true) or dropped (false); also the inbox (conversationId null). */
  socket: { conversationId: string | null; open: boolean };
  error: unknown;
}

export interface ClientOptions {
  /** Origin of the service, e.g. "https://chat.example" (no trailing slash needed). */
  baseUrl: string;
  /** A device JWT, or a function that returns a fresh one per request. */
  token: string | (() => string | Promise<string>);
  storage: ClientStorage;
  /** Key prefix inside `storage` (default "od:"), so an app can share the store. */
  storagePrefix?: string;
  /** Injectable fetch (tests inject faults here). Default: global fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** Injectable socket factory; null disables sockets (HTTP sync only). Default: the global WebSocket. */
  socketFactory?: SocketFactory | null;
  /** Entries per page for history and sync requests (default 100, max 500). */
  pageSize?: number;
  backoff?: BackoffOptions;
  /** Random source for jitter (tests). */
  random?: () => number;
  /** Open the inbox socket while online (default true). */
  inbox?: boolean;
  /** A safety-net sync every N ms while online (default 60 000; 0 disables). */
  syncIntervalMs?: number;
  /** How long a socket `send` waits for its `sent` frame before falling back to HTTP (default 10 000). */
  sendTimeoutMs?: number;
  /** Called with entries the app has never seen; awaited before the cursor is persisted and acked. */
  onEntries?: (batch: EntryBatch) => HandlerResult;
  /** The conversation's epoch changed: drop what the app stored for it. Awaited before local state resets. */
  onReset?: (info: ResetInfo) => HandlerResult;
  /** Device-addressed entries, oldest first, each exactly once; awaited before the server ack. */
  onToDevice?: (entries: ToDeviceEntry[]) => HandlerResult;
}

// ---------------------------------------------------------------- internals

type Listener<K extends keyof ClientEvents> = (value: ClientEvents[K]) => void;

class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

interface Waiter {
  resolve(frame: { seq: number; duplicate: boolean }): void;
  reject(err: unknown): void;
}

interface Channel {
  conversationId: string | null;
  socket: ClientSocket | null;
  /** Bumped per connection attempt; frames from an older one are ignored. */
  gen: number;
  connecting: boolean;
  live: boolean;
  attempt: number;
  timer: ReturnType<typeof setTimeout> | null;
  chain: Promise<void>;
  epoch: string | null;
  head: number;
  floor: number;
  waiters: Map<string, Waiter>;
  ackTimer: ReturnType<typeof setTimeout> | null;
  /** Not a member / unknown conversation: do not reconnect until shown again. */
  blocked: boolean;
}

const MAX_KEPT_GAPS = 20;

function emptyState(id: string): ConversationState {
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
  };
}

/** Stored shapes are plain JSON by construction (no classes, no undefined in arrays). */
function json(value: ConversationState | OutboxItem[] | string | number | null): JsonValue {
  return value as JsonValue;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readState(id: string, raw: JsonValue | undefined): ConversationState {
  if (!isObject(raw)) return emptyState(id);
  const base = emptyState(id);
  const num = (k: keyof ConversationState): number => (typeof raw[k] === "number" ? (raw[k] as number) : 0);
  const above = Array.isArray(raw.above)
    ? raw.above.filter((s): s is Span => Array.isArray(s) && s.length === 2 && typeof s[0] === "number" && typeof s[1] === "number")
    : [];
  return {
    ...base,
    epoch: typeof raw.epoch === "string" ? raw.epoch : null,
    received: num("received"),
    above,
    head_seq: num("head_seq"),
    floor_seq: num("floor_seq"),
    read: num("read"),
    unread: num("unread"),
    membership: raw.membership === "member" || raw.membership === "left" ? raw.membership : null,
    server_received: num("server_received"),
    last_activity_at: typeof raw.last_activity_at === "string" ? raw.last_activity_at : null,
    gaps: Array.isArray(raw.gaps) ? (raw.gaps as ConversationState["gaps"]) : [],
    read_pending: typeof raw.read_pending === "number" ? raw.read_pending : null,
    server_epoch: typeof raw.server_epoch === "string" ? raw.server_epoch : null,
  };
}

function readOutbox(raw: JsonValue | undefined): OutboxItem[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (x): x is OutboxItem =>
      isObject(x) && typeof x.conversation_id === "string" && typeof x.client_msg_id === "string" && "body" in x,
  );
}

function newClientMsgId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function bodyBytes(body: JsonValue): number {
  return new TextEncoder().encode(JSON.stringify(body)).byteLength;
}

// ---------------------------------------------------------------- the client

/**
 * An offline-first device client for the delivery service.
 *
 * @example
 * const client = new OfflineClient({
 *   baseUrl: "https://chat.example",
 *   token: () => auth.currentToken(),
 *   storage: new IndexedDBStorage("od:alice:phone"),
 *   onEntries: (batch) => batch.messages.map((m) => ({ op: "set", key: `msg:${batch.conversationId}:${m.seq}`, value: m as unknown as JsonValue })),
 * });
 * client.on("delivered", (batch) => render(batch));
 * client.show("general");
 * await client.start();
 * await client.send("general", { text: "hi" });
 */
export class OfflineClient {
  readonly #opts: ClientOptions;
  readonly #storage: ClientStorage;
  readonly #prefix: string;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #socketFactory: SocketFactory | null;
  readonly #pageSize: number;
  readonly #random: () => number;

  #loaded: Promise<void> | null = null;
  #convs = new Map<string, ConversationState>();
  #checkpoint: string | null = null;
  #outbox: OutboxItem[] = [];
  #toDeviceDone = 0;
  #acked = new Map<string, number>();

  readonly #stateLock = new Mutex();
  readonly #outboxLock = new Mutex();
  readonly #passLock = new Mutex();
  readonly #listeners = new Map<keyof ClientEvents, Set<(value: never) => void>>();

  #online = false;
  #abort: AbortController | null = null;
  #status: ClientStatus = "offline";
  #shown = new Set<string>();

  #syncDirty = false;
  #runner: Promise<void> | null = null;
  #syncAttempt = 0;
  #lastPassOk = false;
  #idleWaiters: Array<() => void> = [];
  #interval: ReturnType<typeof setInterval> | null = null;
  #flushing: Promise<void> | null = null;

  #live = new Map<string, Channel>();
  #inbox: Channel | null = null;

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError("baseUrl must be an http(s) URL");
    const pageSize = options.pageSize ?? LIMITS.defaultPageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > LIMITS.maxPageSize) {
      throw new RangeError(`pageSize must be an integer in 1..${LIMITS.maxPageSize}`);
    }
    this.#opts = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, "") };
    this.#storage = options.storage;
    this.#prefix = options.storagePrefix ?? "od:";
    const globalFetch = (req: Request) => fetch(req);
    this.#fetch = options.fetch ?? globalFetch;
    this.#socketFactory = options.socketFactory === undefined ? webSocketFactory() : options.socketFactory;
    this.#pageSize = pageSize;
    this.#random = options.random ?? Math.random;
  }

  // ------------------------------------------------------------ events

  /**
   * Subscribes to an event; returns the unsubscribe function.
   *
   * @example
   * const off = client.on("outbox", (items) => badge(items.length));
   */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (value: never) => void);
    return () => set.delete(listener as (value: never) => void);
  }

  #emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(value);
      } catch (err) {
        if (event !== "error") this.#emit("error", err);
      }
    }
  }

  // ------------------------------------------------------------ state access

  /**
   * Loads persisted state (idempotent). Called by every method that needs it.
   *
   * @example
   * await client.ready();
   * console.log(client.outbox().length, "messages waiting");
   */
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

  #convKey(id: string): string {
    return `${this.#prefix}conv:${id}`;
  }

  #state(id: string): ConversationState {
    return this.#convs.get(id) ?? emptyState(id);
  }

  /**
   * The local state of one conversation (a copy), or undefined if unknown.
   *
   * @example
   * const s = client.conversation("general"); // { received, read, unread, gaps, ... }
   */
  conversation(id: string): ConversationState | undefined {
    const s = this.#convs.get(id);
    return s ? structuredClone(s) : undefined;
  }

  /**
   * Every conversation the device knows, from summaries and deliveries.
   *
   * @example
   * for (const c of client.conversations()) console.log(c.id, c.unread);
   */
  conversations(): ConversationState[] {
    return [...this.#convs.values()].map((s) => structuredClone(s));
  }

  /**
   * Messages waiting for the server's confirmation, oldest first (a copy).
   *
   * @example
   * const pending = client.outbox().filter((i) => i.conversation_id === "general");
   */
  outbox(): OutboxItem[] {
    return structuredClone(this.#outbox);
  }

  /** The last fully processed sync checkpoint (null before the first sync). */
  get checkpoint(): string | null {
    return this.#checkpoint;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** True between start() and stop(). */
  get online(): boolean {
    return this.#online;
  }

  #setStatus(status: ClientStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#emit("status", status);
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Goes online: syncs, opens the inbox and the live sockets of shown
   * conversations, and sends the outbox. Failures retry in the background with
   * full-jitter backoff (honouring Retry-After).
   *
   * @example
   * window.addEventListener("online", () => void client.start());
   */
  async start(): Promise<void> {
    if (this.#online) return;
    await this.ready();
    this.#online = true;
    this.#abort = new AbortController();
    this.#setStatus("connecting");
    this.#openInbox();
    const every = this.#opts.syncIntervalMs ?? 60_000;
    if (every > 0) this.#interval = setInterval(() => this.#requestSync(), every);
    this.#requestSync();
  }

  /**
   * Goes offline: aborts requests in flight, closes sockets, stops retries.
   * `send()` keeps working and queues durably.
   *
   * @example
   * window.addEventListener("offline", () => client.stop());
   */
  stop(): void {
    if (!this.#online) return;
    this.#online = false;
    this.#abort?.abort();
    this.#abort = null;
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#interval = null;
    this.#syncDirty = false;
    this.#lastPassOk = false;
    for (const ch of this.#live.values()) this.#closeChannel(ch);
    if (this.#inbox) this.#closeChannel(this.#inbox);
    this.#inbox = null;
    this.#setStatus("offline");
  }

  /**
   * Marks a conversation as on screen: it is pulled (newest page first, then
   * backfill) and gets a live socket while online.
   *
   * @example
   * client.show("general");
   */
  show(conversationId: string): void {
    if (!isId(conversationId)) throw new TypeError(`invalid conversation id ${JSON.stringify(conversationId)}`);
    this.#shown.add(conversationId);
    const ch = this.#live.get(conversationId);
    if (ch) ch.blocked = false;
    this.#requestSync();
  }

  /**
   * The conversation left the screen: its live socket closes; summaries still update it.
   *
   * @example
   * client.hide("general");
   */
  hide(conversationId: string): void {
    this.#shown.delete(conversationId);
    const ch = this.#live.get(conversationId);
    if (ch) this.#closeChannel(ch);
    this.#live.delete(conversationId);
  }

  /**
   * Runs one sync pass now and throws on failure (progress made before the
   * failure stays persisted). The background loop started by start() uses the
   * same pass with retries; this is for tests and "pull to refresh".
   *
   * @example
   * await client.sync();
   */
  async sync(): Promise<void> {
    await this.ready();
    await this.#passLock.run(() => this.#pass(this.#abort?.signal));
  }

  /**
   * Resolves once the background loop has finished a successful pass with no
   * further work requested; rejects after `timeoutMs`.
   *
   * @example
   * await client.start();
   * await client.whenIdle();
   */
  whenIdle(timeoutMs = 30_000): Promise<void> {
    if (this.#online && this.#runner === null && this.#lastPassOk && !this.#syncDirty) return Promise.resolve();
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

  // ------------------------------------------------------------ sending

  /**
   * Queues a message durably and sends it when online (live socket if open,
   * else HTTP). It leaves the outbox only after the server confirmed it
   * (201, 200 duplicate, or a `sent` frame); retries reuse the client_msg_id,
   * so the conversation gets it once.
   *
   * @example
   * const item = await client.send("general", { text: "hi" });
   * client.on("sent", (s) => s.clientMsgId === item.client_msg_id && markDelivered(s.seq));
   */
  async send(conversationId: string, body: JsonValue, clientMsgId: string = newClientMsgId()): Promise<OutboxItem> {
    if (!isId(conversationId)) throw new TypeError(`invalid conversation id ${JSON.stringify(conversationId)}`);
    if (!isId(clientMsgId)) throw new TypeError(`invalid client_msg_id ${JSON.stringify(clientMsgId)}`);
    if (bodyBytes(body) > LIMITS.maxBodyBytes) throw new RangeError(`body is over ${LIMITS.maxBodyBytes} bytes serialized`);
    await this.ready();
    const item = await this.#outboxLock.run(async () => {
      const existing = this.#outbox.find((i) => i.conversation_id === conversationId && i.client_msg_id === clientMsgId);
      if (existing) return existing;
      const added: OutboxItem = { conversation_id: conversationId, client_msg_id: clientMsgId, body, created_at: new Date().toISOString() };
      const next = [...this.#outbox, added];
      await this.#storage.set(`${this.#prefix}outbox`, json(next));
      this.#outbox = next;
      return added;
    });
    this.#emit("outbox", this.outbox());
    if (this.#online) this.#flushOutbox().catch(() => this.#requestSync());
    return structuredClone(item);
  }

  /**
   * Moves the user's read cursor (shared by their devices). Offline, it is kept
   * and sent on the next sync.
   *
   * @example
   * await client.markRead("general", lastVisibleSeq);
   */
  async markRead(conversationId: string, seq: number): Promise<void> {
    await this.ready();
    await this.#updateState(conversationId, (s) => (seq > s.read ? { ...s, read: seq, read_pending: Math.max(seq, s.read_pending ?? 0) } : s));
    if (this.#online) this.#flushReads(this.#abort?.signal).catch(() => this.#requestSync());
  }

  /**
   * Sends a device-addressed entry (POST /v1/to-device). Online only: it throws
   * NetworkError/HttpError instead of queueing.
   *
   * @example
   * await client.sendToDevice({ user: "bob", body: { kind: "key", key } });
   */
  async sendToDevice(req: { user: string; device?: string; body: JsonValue; client_msg_id?: string }): Promise<{ queued: number }> {
    return this.#request<{ queued: number }>("POST", "/v1/to-device", {
      user: req.user,
      ...(req.device !== undefined ? { device: req.device } : {}),
      client_msg_id: req.client_msg_id ?? newClientMsgId(),
      body: req.body,
    });
  }

  /**
   * Creates a conversation (POST /v1/conversations). An id that is taken throws HttpError 409 `conflict`.
   *
   * @example
   * await client.createConversation({ id: "general", members: ["bob"] });
   */
  createConversation(req: { id?: string; members: string[]; retention?: RetentionPolicy }): Promise<ConversationSummary> {
    return this.#request<ConversationSummary>("POST", "/v1/conversations", req);
  }

  /**
   * Registers this device (POST /v1/devices), optionally with a push target.
   *
   * @example
   * await client.registerDevice({ provider: "webpush", token: subscription.endpoint, keys: subscription.toJSON().keys });
   */
  registerDevice(push?: PushTarget | null): Promise<DeviceInfo> {
    return this.#request<DeviceInfo>("POST", "/v1/devices", push ? { push } : {});
  }

  // ------------------------------------------------------------ HTTP

  async #token(): Promise<string> {
    const t = this.#opts.token;
    return typeof t === "string" ? t : await t();
  }

  async #request<T>(method: "GET" | "POST", path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new StoppedError();
    const headers = new Headers({ authorization: `Bearer ${await this.#token()}` });
    if (body !== undefined) headers.set("content-type", "application/json");
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    if (signal) init.signal = signal;
    let res: Response;
    try {
      res = await this.#fetch(new Request(this.#opts.baseUrl + path, init));
    } catch (err) {
      if (signal?.aborted) throw new StoppedError();
      throw new NetworkError(`${method} ${path} failed`, err);
    }
    if (!res.ok) throw await HttpError.from(res);
    try {
      return (await res.json()) as T;
    } catch (err) {
      // A connection that drops mid-body is a network failure, not a server bug.
      if (signal?.aborted) throw new StoppedError();
      throw new NetworkError(`${method} ${path}: body did not arrive`, err);
    }
  }

  // ------------------------------------------------------------ sync loop

  #requestSync(): void {
    if (!this.#online) return;
    this.#syncDirty = true;
    this.#runner ??= this.#runLoop().finally(() => {
      this.#runner = null;
      // A request that came in while the loop was winding down.
      if (this.#online && this.#syncDirty) this.#requestSync();
    });
  }

  async #runLoop(): Promise<void> {
    while (this.#online && this.#syncDirty) {
      this.#syncDirty = false;
      const signal = this.#abort?.signal;
      try {
        await this.#passLock.run(() => this.#pass(signal));
        this.#syncAttempt = 0;
        this.#lastPassOk = true;
        if (this.#online) this.#setStatus("online");
        this.#emit("synced", { checkpoint: this.#checkpoint });
        if (!this.#syncDirty) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      } catch (err) {
        this.#lastPassOk = false;
        if (!this.#online || err instanceof StoppedError) return;
        this.#emit("error", err);
        if (!isRetryable(err)) {
          // 401 and friends do not heal by waiting; the next start/show/poke tries again.
          this.#setStatus("connecting");
          return;
        }
        this.#setStatus("connecting");
        const attempt = this.#syncAttempt++;
        const delayMs = backoffDelay(attempt, err, this.#opts.backoff, this.#random);
        this.#emit("retry", { delayMs, attempt, error: err });
        try {
          await sleep(delayMs, signal);
        } catch {
          return;
        }
        this.#syncDirty = true;
      }
    }
  }

  /** One pass; idempotent, so a pass that dies half-way is simply run again. */
  async #pass(signal: AbortSignal | undefined): Promise<void> {
    await this.#flushOutbox();
    await this.#syncSummaries(signal);
    for (const id of [...this.#shown]) await this.#pull(id, signal);
    await this.#flushReads(signal);
    if (this.#opts.onToDevice) await this.#drainToDevice(signal);
    if (this.#online) for (const id of this.#shown) this.#openLive(id);
  }

  async #syncSummaries(signal: AbortSignal | undefined): Promise<void> {
    const limit = Math.min(this.#pageSize, LIMITS.maxPageSize);
    for (let guard = 0; guard < 100_000; guard++) {
      const q = new URLSearchParams({ limit: String(limit) });
      if (this.#checkpoint !== null) q.set("since", this.#checkpoint);
      let res: SyncResponse;
      try {
        res = await this.#request<SyncResponse>("GET", `/v1/sync?${q}`, undefined, signal);
      } catch (err) {
        // A checkpoint the server no longer understands: fall back to a full sync.
        if (err instanceof HttpError && err.status === 400 && this.#checkpoint !== null) {
          await this.#storage.delete(`${this.#prefix}checkpoint`);
          this.#checkpoint = null;
          continue;
        }
        throw err;
      }
      await this.#stateLock.run(async () => {
        const next = res.conversations.map((c) => this.#applySummary(this.#state(c.id), c));
        const ops: StorageOp[] = next.map((s) => ({ op: "set", key: this.#convKey(s.id), value: json(s) }));
        // The checkpoint moves in the same batch as the summaries it covers.
        ops.push({ op: "set", key: `${this.#prefix}checkpoint`, value: json(res.checkpoint) });
        await this.#storage.batch(ops);
        for (const s of next) this.#convs.set(s.id, s);
        this.#checkpoint = res.checkpoint;
        for (const s of next) this.#emit("conversation", structuredClone(s));
      });
      if (!res.has_more) return;
    }
  }

  #applySummary(s: ConversationState, c: SyncConversation): ConversationState {
    return {
      ...s,
      head_seq: c.head_seq,
      server_epoch: c.epoch,
      floor_seq: c.floor_seq,
      read: Math.max(s.read, c.read),
      unread: c.unread,
      membership: c.membership,
      server_received: c.received,
      last_activity_at: c.last_activity_at,
    };
  }

  /** Pulls one conversation; an epoch change resets its local state and pulls again. */
  async #pull(id: string, signal: AbortSignal | undefined): Promise<void> {
    for (let resets = 0; ; resets++) {
      try {
        await this.#pullOnce(id, signal);
        await this.#ack(id, signal);
        return;
      } catch (err) {
        if (err instanceof HttpError && err.code === "epoch_mismatch" && resets < 3) {
          await this.#reset(id, err.epoch);
          continue;
        }
        if (err instanceof HttpError && !err.retryable) {
          // Not a member (any more), unknown conversation: nothing to pull; tell the app.
          this.#emit("error", err);
          return;
        }
        throw err;
      }
    }
  }

  async #pullOnce(id: string, signal: AbortSignal | undefined): Promise<void> {
    const limit = this.#pageSize;
    let s = this.#state(id);
    const headKnown = s.epoch !== null;
    // Up to date by the last summary or page (the live socket's catch-up covers any race).
    if (headKnown && s.received >= s.head_seq && (s.server_epoch === null || s.server_epoch === s.epoch)) return;
    if (s.above.length === 0 && (!headKnown || s.head_seq - s.received > limit)) {
      // Newest page first, so the screen shows the present before history fills in.
      const q = new URLSearchParams({ limit: String(limit) });
      if (s.epoch !== null) q.set("epoch", s.epoch);
      const page = await this.#request<MessagePage>("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?${q}`, undefined, signal);
      const first = page.next_before ?? 1;
      const spans: Span[] = [[page.has_more ? first : 1, page.head_seq]];
      await this.#deliver(id, page.epoch, page.messages, page.gaps, spans, "newest", page.head_seq, page.floor_seq);
    }
    for (let guard = 0; guard < 1_000_000; guard++) {
      s = this.#state(id);
      const after = s.received;
      const q = new URLSearchParams({ after: String(after), limit: String(limit) });
      if (s.epoch !== null) q.set("epoch", s.epoch);
      const page = await this.#request<MessagePage>("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?${q}`, undefined, signal);
      const boundary = page.next_after ?? Math.max(page.head_seq, after);
      await this.#deliver(id, page.epoch, page.messages, page.gaps, [[after + 1, boundary]], "backfill", page.head_seq, page.floor_seq);
      await this.#ack(id, signal);
      if (!page.has_more) return;
    }
  }

  /**
   * Hands not-yet-seen entries to the app and records the coverage, atomically
   * with the app's own writes. The only place coverage grows.
   */
  async #deliver(
    id: string,
    epoch: string,
    messages: readonly Message[],
    gaps: readonly Gap[],
    spans: readonly Span[],
    source: EntrySource,
    head: number,
    floor: number,
  ): Promise<void> {
    await this.#stateLock.run(async () => {
      const s = this.#state(id);
      if (s.epoch !== null && s.epoch !== epoch) {
        // Entries of another epoch must not be mixed in; the pull path resets first.
        throw new HttpError(409, "epoch_mismatch", "entries of a different epoch", null, epoch);
      }
      const coverage = { upTo: s.received, above: s.above };
      const seen = new Set<number>();
      const fresh = messages
        .filter((m) => !covers(coverage, m.seq) && !seen.has(m.seq) && (seen.add(m.seq), true))
        .sort((a, b) => a.seq - b.seq);
      const newGaps = gaps.filter((g) => g.to > coverage.upTo && !(covers(coverage, g.from) && covers(coverage, g.to)));
      const next = addSpans(coverage, [...spans, ...spansOf(messages.map((m) => m.seq)), ...gaps.map((g): Span => [g.from, g.to])]);
      const state: ConversationState = {
        ...s,
        epoch,
        received: next.upTo,
        above: next.above,
        head_seq: Math.max(head, next.upTo),
        floor_seq: Math.max(s.floor_seq, floor),
        gaps: [...s.gaps, ...newGaps.map((g) => ({ from: g.from, to: g.to, reason: g.reason }))].slice(-MAX_KEPT_GAPS),
      };
      const batch: EntryBatch = { conversationId: id, epoch, messages: fresh, gaps: newGaps, source };
      let appOps: readonly StorageOp[] = [];
      if ((fresh.length > 0 || newGaps.length > 0) && this.#opts.onEntries) appOps = (await this.#opts.onEntries(batch)) ?? [];
      await this.#storage.batch([...appOps, { op: "set", key: this.#convKey(id), value: json(state) }]);
      this.#convs.set(id, state);
      if (fresh.length > 0 || newGaps.length > 0) this.#emit("delivered", batch);
      this.#emit("conversation", structuredClone(state));
    });
  }

  /** Clean reset after an epoch change: the app drops its copy, coverage starts over. */
  async #reset(id: string, newEpoch: string | null): Promise<void> {
    const ch = this.#live.get(id);
    if (ch) this.#closeChannel(ch);
    await this.#stateLock.run(async () => {
      const old = this.#state(id);
      const info: ResetInfo = { conversationId: id, oldEpoch: old.epoch, newEpoch };
      const appOps = (await this.#opts.onReset?.(info)) ?? [];
      // Epoch null: the next pull starts over (newest page first) and adopts the server's epoch.
      const state: ConversationState = { ...emptyState(id), server_epoch: newEpoch, membership: old.membership };
      await this.#storage.batch([...appOps, { op: "set", key: this.#convKey(id), value: json(state) }]);
      this.#convs.set(id, state);
      this.#acked.delete(id);
      this.#emit("reset", info);
      this.#emit("conversation", structuredClone(state));
    });
  }

  async #updateState(id: string, change: (s: ConversationState) => ConversationState): Promise<void> {
    await this.#stateLock.run(async () => {
      const before = this.#state(id);
      const after = change(before);
      if (after === before) return;
      await this.#storage.set(this.#convKey(id), json(after));
      this.#convs.set(id, after);
      this.#emit("conversation", structuredClone(after));
    });
  }

  /** Reports this device's contiguous watermark (POST /v1/cursors `received`). */
  async #ack(id: string, signal: AbortSignal | undefined): Promise<void> {
    const received = this.#state(id).received;
    if (received <= 0 || received <= (this.#acked.get(id) ?? 0)) return;
    const res = await this.#request<CursorsResponse>("POST", "/v1/cursors", { received: { [id]: received } }, signal);
    this.#acked.set(id, received);
    const effective = res.received[id];
    if (typeof effective === "number") await this.#updateState(id, (s) => ({ ...s, server_received: effective }));
  }

  async #flushReads(signal: AbortSignal | undefined): Promise<void> {
    const pending = [...this.#convs.values()].filter((s) => s.read_pending !== null);
    for (let i = 0; i < pending.length; i += LIMITS.maxCursorConversations) {
      const chunk = pending.slice(i, i + LIMITS.maxCursorConversations);
      const read = Object.fromEntries(chunk.map((s) => [s.id, s.read_pending ?? 0]));
      try {
        await this.#request<CursorsResponse>("POST", "/v1/cursors", { read }, signal);
      } catch (err) {
        if (!(err instanceof HttpError) || err.retryable) throw err;
        this.#emit("error", err); // e.g. no longer a member: drop the pending value
      }
      for (const s of chunk) {
        const sent = s.read_pending;
        await this.#updateState(s.id, (cur) => (cur.read_pending === sent ? { ...cur, read_pending: null } : cur));
      }
    }
  }

  async #drainToDevice(signal: AbortSignal | undefined): Promise<void> {
    const handler = this.#opts.onToDevice;
    if (!handler) return;
    for (let guard = 0; guard < 100_000; guard++) {
      const page = await this.#request<ToDevicePage>("GET", `/v1/to-device?limit=${Math.min(this.#pageSize, LIMITS.maxPageSize)}`, undefined, signal);
      const last = page.entries[page.entries.length - 1];
      if (!last) return;
      await this.#stateLock.run(async () => {
        const fresh = page.entries.filter((e) => e.id > this.#toDeviceDone);
        const appOps = fresh.length > 0 ? ((await handler(fresh)) ?? []) : [];
        const done = Math.max(this.#toDeviceDone, last.id);
        await this.#storage.batch([...appOps, { op: "set", key: `${this.#prefix}todevice`, value: json(done) }]);
        this.#toDeviceDone = done;
      });
      // Ack only after the app's writes are durable: the server deletes on ack.
      await this.#request<{ remaining: number }>("POST", "/v1/to-device/ack", { up_to: last.id }, signal);
      if (!page.has_more) return;
    }
  }

  // ------------------------------------------------------------ outbox

  #flushOutbox(): Promise<void> {
    this.#flushing ??= this.#flushLoop().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    const signal = this.#abort?.signal;
    // One at a time, oldest first: the server sees this device's sends in order.
    for (let item = this.#outbox[0]; item && this.#online; item = this.#outbox[0]) {
      let result: { seq: number; duplicate: boolean; via: "http" | "socket" } | null = null;
      const ch = this.#live.get(item.conversation_id);
      if (ch?.live && ch.socket) {
        try {
          result = { ...(await this.#sendOnSocket(ch, item)), via: "socket" };
        } catch (err) {
          if (err instanceof HttpError && !err.retryable) {
            await this.#dropFromOutbox(item, err);
            continue;
          }
          // Socket trouble: the same client_msg_id over HTTP is safe (idempotent).
        }
      }
      if (!result) {
        try {
          const res = await this.#request<SendResult>(
            "POST",
            `/v1/conversations/${encodeURIComponent(item.conversation_id)}/messages`,
            { client_msg_id: item.client_msg_id, body: item.body },
            signal,
          );
          result = { seq: res.seq, duplicate: res.duplicate, via: "http" };
        } catch (err) {
          if (err instanceof HttpError && !err.retryable) {
            await this.#dropFromOutbox(item, err);
            continue;
          }
          throw err;
        }
      }
      await this.#removeFromOutbox(item);
      this.#emit("sent", { conversationId: item.conversation_id, clientMsgId: item.client_msg_id, seq: result.seq, duplicate: result.duplicate, via: result.via });
    }
  }

  async #removeFromOutbox(item: OutboxItem): Promise<void> {
    await this.#outboxLock.run(async () => {
      const next = this.#outbox.filter((i) => !(i.conversation_id === item.conversation_id && i.client_msg_id === item.client_msg_id));
      await this.#storage.set(`${this.#prefix}outbox`, json(next));
      this.#outbox = next;
    });
    this.#emit("outbox", this.outbox());
  }

  async #dropFromOutbox(item: OutboxItem, error: HttpError): Promise<void> {
    await this.#removeFromOutbox(item);
    this.#emit("sendFailed", { item: structuredClone(item), error });
  }

  #sendOnSocket(ch: Channel, item: OutboxItem): Promise<{ seq: number; duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = ch.socket;
      if (!socket) return reject(new NetworkError("socket closed"));
      const timer = setTimeout(() => {
        ch.waiters.delete(item.client_msg_id);
        reject(new NetworkError("no `sent` frame in time"));
      }, this.#opts.sendTimeoutMs ?? 10_000);
      ch.waiters.set(item.client_msg_id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      try {
        socket.send(JSON.stringify({ type: "send", client_msg_id: item.client_msg_id, body: item.body }));
      } catch (err) {
        ch.waiters.delete(item.client_msg_id);
        clearTimeout(timer);
        reject(new NetworkError("socket send failed", err));
      }
    });
  }

  // ------------------------------------------------------------ sockets

  #newChannel(conversationId: string | null): Channel {
    return {
      conversationId,
      socket: null,
      gen: 0,
      connecting: false,
      live: false,
      attempt: 0,
      timer: null,
      chain: Promise.resolve(),
      epoch: null,
      head: 0,
      floor: 0,
      waiters: new Map(),
      ackTimer: null,
      blocked: false,
    };
  }

  #closeChannel(ch: Channel): void {
    ch.gen++;
    if (ch.timer !== null) clearTimeout(ch.timer);
    if (ch.ackTimer !== null) clearTimeout(ch.ackTimer);
    ch.timer = null;
    ch.ackTimer = null;
    ch.connecting = false;
    const wasOpen = ch.socket !== null;
    try {
      ch.socket?.close(1000, "client closing");
    } catch {
      // already closed
    }
    ch.socket = null;
    ch.live = false;
    for (const w of ch.waiters.values()) w.reject(new NetworkError("socket closed"));
    ch.waiters.clear();
    if (wasOpen) this.#emit("socket", { conversationId: ch.conversationId, open: false });
  }

  #wsUrl(path: string, params: URLSearchParams): string {
    return `${this.#opts.baseUrl.replace(/^http/, "ws")}${path}?${params}`;
  }

  #openLive(id: string): void {
    const factory = this.#socketFactory;
    if (!factory || !this.#online || !this.#shown.has(id)) return;
    let ch = this.#live.get(id);
    if (!ch) this.#live.set(id, (ch = this.#newChannel(id)));
    if (ch.socket || ch.connecting || ch.timer !== null || ch.blocked) return;
    const channel = ch;
    const gen = ++channel.gen;
    channel.connecting = true;
    void (async () => {
      const s = this.#state(id);
      const params = new URLSearchParams({ after: String(s.received) });
      if (s.epoch !== null) params.set("epoch", s.epoch);
      params.set("access_token", await this.#token());
      const socket = await factory(this.#wsUrl(`/v1/conversations/${encodeURIComponent(id)}/live`, params), {
        message: (data) => this.#onFrame(channel, gen, data),
        close: (code, reason) => this.#onClose(channel, gen, code, reason),
      });
      if (gen !== channel.gen || !this.#online) {
        socket.close(1000, "client closing");
        return;
      }
      channel.socket = socket;
      channel.connecting = false;
    })().catch((err: unknown) => {
      if (gen !== channel.gen) return;
      channel.connecting = false;
      this.#onOpenFailed(channel, err);
    });
  }

  #openInbox(): void {
    const factory = this.#socketFactory;
    if (!factory || !this.#online || this.#opts.inbox === false) return;
    this.#inbox ??= this.#newChannel(null);
    const channel = this.#inbox;
    if (channel.socket || channel.connecting || channel.timer !== null) return;
    const gen = ++channel.gen;
    channel.connecting = true;
    void (async () => {
      const params = new URLSearchParams({ access_token: await this.#token() });
      const socket = await factory(this.#wsUrl("/v1/inbox", params), {
        message: (data) => this.#onFrame(channel, gen, data),
        close: (code, reason) => this.#onClose(channel, gen, code, reason),
      });
      if (gen !== channel.gen || !this.#online) {
        socket.close(1000, "client closing");
        return;
      }
      channel.socket = socket;
      channel.connecting = false;
      channel.attempt = 0;
      this.#emit("socket", { conversationId: null, open: true });
    })().catch((err: unknown) => {
      if (gen !== channel.gen) return;
      channel.connecting = false;
      this.#onOpenFailed(channel, err);
    });
  }

  #onOpenFailed(ch: Channel, err: unknown): void {
    if (!this.#online) return;
    const id = ch.conversationId;
    if (id !== null && err instanceof HttpError) {
      if (err.code === "epoch_mismatch") {
        this.#reset(id, err.epoch).then(
          () => this.#requestSync(),
          (e: unknown) => this.#emit("error", e),
        );
        return;
      }
      if (!err.retryable) {
        ch.blocked = true;
        this.#emit("error", err);
        return;
      }
    }
    this.#scheduleReconnect(ch, err);
  }

  #onClose(ch: Channel, gen: number, code: number, reason: string): void {
    if (gen !== ch.gen) return;
    const wasLive = ch.live;
    ch.socket = null;
    ch.live = false;
    ch.connecting = false;
    for (const w of ch.waiters.values()) w.reject(new NetworkError(`socket closed (${code})`));
    ch.waiters.clear();
    this.#emit("socket", { conversationId: ch.conversationId, open: false });
    if (!this.#online) return;
    if (ch.conversationId !== null && code === CLOSE_NOT_MEMBER) {
      // Removed from the conversation: the summary will say so; no reconnect.
      ch.blocked = true;
      this.#requestSync();
      return;
    }
    if (wasLive || ch.conversationId === null) ch.attempt = Math.min(ch.attempt, 1);
    this.#scheduleReconnect(ch, new NetworkError(`socket closed (${code} ${reason})`));
  }

  /**
   * Reconnects after a full-jitter delay. A conversation first pulls over HTTP,
   * which is where a browser learns what a refused upgrade cannot tell it
   * (epoch change, 403, Retry-After).
   */
  #scheduleReconnect(ch: Channel, err: unknown): void {
    if (ch.timer !== null || !this.#online) return;
    const delay = backoffDelay(ch.attempt++, err, this.#opts.backoff, this.#random);
    ch.timer = setTimeout(() => {
      ch.timer = null;
      if (!this.#online) return;
      const id = ch.conversationId;
      if (id === null) {
        this.#openInbox();
        this.#requestSync(); // pokes may have been missed while the inbox was down
        return;
      }
      if (!this.#shown.has(id)) return;
      this.#passLock
        .run(() => this.#pull(id, this.#abort?.signal))
        .then(
          () => this.#openLive(id),
          (e: unknown) => {
            if (this.#online && !(e instanceof StoppedError)) this.#scheduleReconnect(ch, e);
          },
        );
    }, delay);
  }

  #onFrame(ch: Channel, gen: number, data: string): void {
    if (gen !== ch.gen || data === "pong") return;
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!isObject(frame) || typeof frame.type !== "string") return;
    // A JSON boundary: the server speaks PROTOCOL.md, and unknown types fall through the switches.
    const wire: unknown = frame;
    ch.chain = ch.chain
      .then(() => (ch.conversationId === null ? this.#onInboxFrame(wire as InboxServerFrame) : this.#onLiveFrame(ch, gen, wire as LiveServerFrame)))
      .catch((err: unknown) => {
        if (gen !== ch.gen) return;
        // The app's handler or storage failed: drop the socket, the durable path retries.
        this.#emit("error", err);
        const socket = ch.socket;
        this.#onClose(ch, gen, 1011, "client error");
        try {
          socket?.close(1011, "client error");
        } catch {
          // already closed
        }
      });
  }

  async #onLiveFrame(ch: Channel, gen: number, frame: LiveServerFrame): Promise<void> {
    const id = ch.conversationId!;
    if (gen !== ch.gen) return;
    switch (frame.type) {
      case "hello":
        ch.epoch = frame.epoch;
        ch.head = frame.head_seq;
        ch.floor = frame.floor_seq;
        return;
      case "messages":
        if (ch.epoch === null) return;
        await this.#deliver(id, ch.epoch, frame.messages, frame.gaps, [], "catch_up", ch.head, ch.floor);
        this.#scheduleAck(ch);
        return;
      case "live":
        ch.live = true;
        ch.attempt = 0;
        this.#emit("socket", { conversationId: id, open: true });
        if (this.#outbox.some((i) => i.conversation_id === id)) this.#flushOutbox().catch(() => this.#requestSync());
        return;
      case "message":
        if (ch.epoch === null) return;
        ch.head = Math.max(ch.head, frame.message.seq);
        await this.#deliver(id, ch.epoch, [frame.message], [], [], "live", ch.head, ch.floor);
        this.#scheduleAck(ch);
        return;
      case "sent": {
        const w = ch.waiters.get(frame.client_msg_id);
        ch.waiters.delete(frame.client_msg_id);
        w?.resolve({ seq: frame.seq, duplicate: frame.duplicate });
        return;
      }
      case "acked":
        return;
      case "error": {
        const status = ERROR_STATUS[frame.code as ErrorCode] ?? 400;
        const err = new HttpError(status, frame.code, frame.message);
        const w = frame.client_msg_id !== undefined ? ch.waiters.get(frame.client_msg_id) : undefined;
        if (w && frame.client_msg_id !== undefined) {
          ch.waiters.delete(frame.client_msg_id);
          w.reject(err);
        } else this.#emit("error", err);
        return;
      }
    }
  }

  /** Coalesces socket acks: one `ack` frame per burst, with the contiguous watermark. */
  #scheduleAck(ch: Channel): void {
    if (ch.ackTimer !== null) return;
    ch.ackTimer = setTimeout(() => {
      ch.ackTimer = null;
      const id = ch.conversationId;
      if (id === null || !ch.socket) return;
      const received = this.#state(id).received;
      if (received <= (this.#acked.get(id) ?? 0)) return;
      try {
        ch.socket.send(JSON.stringify({ type: "ack", seq: received }));
        this.#acked.set(id, received);
      } catch {
        // The next pull acks over HTTP.
      }
    }, 50);
  }

  async #onInboxFrame(frame: InboxServerFrame | { type: string }): Promise<void> {
    switch (frame.type) {
      case "hello":
        if ("checkpoint" in frame && frame.checkpoint !== this.#checkpoint) this.#requestSync();
        return;
      case "poke":
        this.#emit("poke", frame as PokeFrame);
        this.#requestSync();
        return;
      case "read": {
        const f = frame as { conversation_id: string; read: number };
        await this.#updateState(f.conversation_id, (s) => (f.read > s.read ? { ...s, read: f.read } : s));
        return;
      }
      case "membership":
        this.#requestSync();
        return;
      default:
        // Unknown frames (a future `to_device` nudge, say) are a hint to sync.
        if (frame.type !== "error") this.#requestSync();
    }
  }
}
