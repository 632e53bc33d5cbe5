/**
 * OfflineClient: one device's view of the service, offline-first. This file
 * is the public API; the work is done by the parts it wires together:
 * store (durable state), api (HTTP and the token policy), sync-engine (the
 * pass and its retries), summaries and history (what a pass pulls), delivery
 * (exactly-once hand-off), cursors, outbox, live and inbox sockets, receipts.
 */
import { isId } from "../protocol/ids";
import { LIMITS } from "../protocol/limits";
import { jsonDepth, MAX_BODY_DEPTH } from "../protocol/schemas";
import type { ConversationSummary, DeviceInfo, PushTarget, ReceiptCounts, RetentionPolicy } from "../protocol/types";
import { ApiTransport } from "./api";
import { Cursors } from "./cursors";
import { Delivery } from "./delivery";
import { Emitter, type Listener } from "./emitter";
import { History } from "./history";
import { inboxChannel } from "./inbox";
import { LiveConversation, type LiveParts } from "./live";
import { Outbox } from "./outbox";
import { Receipts } from "./receipts";
import type { ChannelHost } from "./socket-channel";
import { webSocketFactory } from "./socket";
import { ClientStore } from "./store";
import { Summaries } from "./summaries";
import { SyncEngine } from "./sync-engine";
import { drainToDevice } from "./to-device";
import type { JsonValue } from "./storage";
import type { ClientEvents, ClientOptions, ClientStatus, ConversationState, OutboxItem, ReceiptInfo } from "./types";

const DEFAULT_TIMELINE_LIMIT = 20;

function checkedInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in ${min}..${max}`);
  return value;
}

function checkedId(kind: string, value: string): string {
  if (!isId(value)) throw new TypeError(`invalid ${kind} ${JSON.stringify(value)}`);
  return value;
}

function newClientMsgId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/**
 * An offline-first device client for the delivery service.
 *
 * @example
 * const client = new OfflineClient({
 *   baseUrl: "https://chat.example",
 *   token: ({ forceRefresh }) => auth.deviceToken({ forceRefresh }),
 *   storage: new IndexedDBStorage("od:alice:phone"),
 *   onEntries: (batch) => batch.messages.map((m) => ({ op: "set", key: `msg:${batch.conversationId}:${m.seq}`, value: m as unknown as JsonValue })),
 * });
 * client.on("delivered", (batch) => render(batch));
 * client.show("general");
 * await client.start();
 * await client.send("general", { text: "hi" });
 */
export class OfflineClient {
  readonly #syncIntervalMs: number;
  readonly #events = new Emitter();
  readonly #store: ClientStore;
  readonly #api: ApiTransport;
  readonly #cursors: Cursors;
  readonly #receipts = new Receipts();
  readonly #outbox: Outbox;
  readonly #engine: SyncEngine;
  readonly #live = new Map<string, LiveConversation>();
  readonly #liveParts: LiveParts | null;
  readonly #inbox: ReturnType<typeof inboxChannel> | null;
  readonly #shown = new Set<string>();
  #status: ClientStatus = "offline";

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError("baseUrl must be an http(s) URL");
    const pageSize = checkedInt("pageSize", options.pageSize ?? LIMITS.defaultPageSize, 1, LIMITS.maxPageSize);
    const timelineLimit = checkedInt("timelineLimit", options.timelineLimit ?? DEFAULT_TIMELINE_LIMIT, 0, LIMITS.maxTimelineLimit);
    const baseUrl = options.baseUrl.replace(/\/+$/, "");
    const random = options.random ?? Math.random;
    this.#syncIntervalMs = options.syncIntervalMs ?? 60_000;
    const events = this.#events;
    const store = (this.#store = new ClientStore(options.storage, options.storagePrefix ?? "od:", (s) => events.emit("conversation", structuredClone(s))));
    const api = (this.#api = new ApiTransport({
      baseUrl,
      token: options.token,
      fetch: options.fetch ?? ((req) => fetch(req)),
      onAuthChange: (failure) => this.#authChanged(failure),
    }));
    const cursors = (this.#cursors = new Cursors(api, store, events));
    const delivery = new Delivery(store, events, options, (id) => {
      this.#live.get(id)?.close();
      cursors.forget(id);
      this.#receipts.forget(id);
    });
    const history = new History({ api, store, delivery, cursors, events, pageSize });
    const online = () => this.#engine.online;
    const signal = () => this.#engine.signal;
    this.#outbox = new Outbox({ api, store, events, online, signal, live: (id) => this.#live.get(id) });
    const onToDevice = options.onToDevice;
    this.#engine = new SyncEngine({
      api,
      events,
      outbox: this.#outbox,
      summaries: new Summaries({ api, store, delivery, cursors, pageSize, timelineLimit }),
      history,
      cursors,
      toDevice: onToDevice ? (s) => drainToDevice(api, store, onToDevice, pageSize, s) : null,
      backoff: options.backoff,
      random,
      shown: () => this.#shown,
      openSockets: () => this.#openSockets(),
      setStatus: (s) => this.#setStatus(s),
      checkpoint: () => store.checkpoint,
    });
    const factory = options.socketFactory === undefined ? webSocketFactory() : options.socketFactory;
    const host: ChannelHost | null = factory && { api, factory, wsBase: baseUrl.replace(/^http/, "ws"), events, backoff: options.backoff, random, signal };
    const requestSync = () => this.#engine.request();
    this.#liveParts = host && {
      host,
      store,
      delivery,
      cursors,
      events,
      receipts: this.#receipts,
      sendTimeoutMs: options.sendTimeoutMs ?? 10_000,
      wanted: (id) => online() && this.#shown.has(id),
      requestSync,
      pull: (id) => this.#engine.pull(id),
      wentLive: (id) => {
        if (store.outbox.some((i) => i.conversation_id === id)) this.#flushOutbox();
      },
    };
    this.#inbox = host && options.inbox !== false ? inboxChannel({ host, store, events, wanted: online, requestSync }) : null;
  }

  /**
   * Subscribes to an event; returns the unsubscribe function.
   *
   * @example
   * const off = client.on("outbox", (items) => badge(items.length));
   */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Loads persisted state (idempotent). Called by every method that needs it.
   *
   * @example
   * await client.ready();
   * console.log(client.outbox().length, "messages waiting");
   */
  ready(): Promise<void> {
    return this.#store.ready();
  }

  /** The local state of one conversation (a copy), or undefined if unknown. */
  conversation(id: string): ConversationState | undefined {
    return this.#store.known(id) ? structuredClone(this.#store.state(id)) : undefined;
  }

  /** Every conversation the device knows, from summaries and deliveries (copies). */
  conversations(): ConversationState[] {
    return this.#store.states().map((s) => structuredClone(s));
  }

  /** Messages waiting for the server's confirmation, oldest first (a copy). */
  outbox(): OutboxItem[] {
    return structuredClone([...this.#store.outbox]);
  }

  /** The last fully processed sync checkpoint (null before the first sync). */
  get checkpoint(): string | null {
    return this.#store.checkpoint;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** True between start() and stop(). */
  get online(): boolean {
    return this.#engine.online;
  }

  /** True while no token is accepted (see `auth_required`); cleared by the next accepted request. */
  get authRequired(): boolean {
    return this.#api.authRequired;
  }

  /**
   * Goes online: syncs, opens the inbox and the live sockets of shown
   * conversations, and sends the outbox. Failures retry in the background.
   *
   * @example
   * window.addEventListener("online", () => void client.start());
   */
  async start(): Promise<void> {
    if (this.#engine.online) return;
    await this.ready();
    this.#setStatus("connecting");
    this.#engine.start(this.#syncIntervalMs);
    this.#inbox?.open();
  }

  /**
   * Goes offline: aborts requests in flight, closes sockets, stops retries.
   * `send()` and `markRead()` keep working and queue durably.
   */
  stop(): void {
    if (!this.#engine.online) return;
    this.#engine.stop();
    for (const live of this.#live.values()) live.close();
    this.#inbox?.close();
    this.#setStatus("offline");
  }

  /**
   * Tells the SDK that a token works again (after `auth_required`), or hands
   * it a new static token. Everything queued is retried right away.
   *
   * @example
   * client.on("auth_required", () => signIn().then(() => client.tokenChanged()));
   */
  tokenChanged(token?: string): void {
    this.#api.tokenChanged(token);
    this.#engine.retryNow();
  }

  /**
   * Marks a conversation as on screen: it is pulled (newest entries first,
   * then backfill) and gets a live socket while online.
   */
  show(conversationId: string): void {
    this.#shown.add(checkedId("conversation id", conversationId));
    this.#live.get(conversationId)?.allow();
    this.#engine.request();
  }

  /** The conversation left the screen: its live socket closes; summaries still update it. */
  hide(conversationId: string): void {
    this.#shown.delete(conversationId);
    this.#live.get(conversationId)?.close();
    this.#live.delete(conversationId);
  }

  /**
   * Runs one sync pass now and throws on failure (progress made before the
   * failure stays persisted). For tests and "pull to refresh".
   */
  async sync(): Promise<void> {
    await this.ready();
    await this.#engine.runPass();
  }

  /** Resolves once the background loop finished a successful pass with nothing left to do; rejects after `timeoutMs`. */
  whenIdle(timeoutMs = 30_000): Promise<void> {
    return this.#engine.whenIdle(timeoutMs);
  }

  /**
   * Queues a message durably and sends it when online (live socket if open,
   * else HTTP). It leaves the outbox only when the server confirmed it
   * (`sent`) or refused it for good (`sendFailed`); retries reuse the
   * client_msg_id, so the conversation gets it once.
   *
   * @example
   * const item = await client.send("general", { text: "hi" });
   * client.on("sent", (s) => s.clientMsgId === item.client_msg_id && markDelivered(s.seq));
   */
  async send(conversationId: string, body: JsonValue, clientMsgId: string = newClientMsgId()): Promise<OutboxItem> {
    checkedId("conversation id", conversationId);
    checkedId("client_msg_id", clientMsgId);
    // Refused here rather than queued: the server would refuse it for good.
    if (new TextEncoder().encode(JSON.stringify(body)).byteLength > LIMITS.maxBodyBytes) throw new RangeError(`body is over ${LIMITS.maxBodyBytes} bytes serialized`);
    if (jsonDepth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) throw new RangeError(`body nests deeper than ${MAX_BODY_DEPTH} levels`);
    await this.ready();
    const item = await this.#outbox.add({ conversation_id: conversationId, client_msg_id: clientMsgId, body, created_at: new Date().toISOString() });
    this.#flushOutbox();
    return structuredClone(item);
  }

  /**
   * Moves the user's read cursor (shared by their devices). The mark is kept
   * durably until the server took it, and sent on the next sync when offline.
   */
  async markRead(conversationId: string, seq: number): Promise<void> {
    checkedId("conversation id", conversationId);
    await this.ready();
    await this.#cursors.markRead(conversationId, seq);
    if (this.#engine.online) this.#cursors.flushReads(this.#engine.signal).catch(() => this.#engine.request());
  }

  /**
   * Fetches how far one of the user's own messages got, emits `receipt`, and
   * remembers it for `receiptFor`. Online only: throws instead of queueing.
   *
   * @example
   * const r = await client.receipts("general", seq);
   * label.textContent = formatReceipt(r);
   */
  async receipts(conversationId: string, seq: number): Promise<ReceiptInfo> {
    checkedInt("seq", seq, 1, Number.MAX_SAFE_INTEGER);
    const path = `/v1/conversations/${encodeURIComponent(checkedId("conversation id", conversationId))}/receipts?seq=${seq}`;
    const r = await this.#api.request<ReceiptCounts>("GET", path);
    const info: ReceiptInfo = { conversationId, seq: r.seq, members: r.members, delivered: r.delivered, read: r.read };
    this.#receipts.record(info);
    this.#events.emit("receipt", info);
    return info;
  }

  /**
   * The best known figures for one of the user's own messages: the latest
   * receipt for it, raised by receipts for their newer messages (cursors only
   * move forward). Undefined until a receipt at or after `seq` arrived.
   */
  receiptFor(conversationId: string, seq: number): ReceiptInfo | undefined {
    return this.#receipts.lowerBound(conversationId, seq);
  }

  /** Sends a device-addressed entry (POST /v1/to-device). Online only: throws instead of queueing. */
  sendToDevice(req: { user: string; device?: string; body: JsonValue; client_msg_id?: string }): Promise<{ queued: number }> {
    return this.#api.request<{ queued: number }>("POST", "/v1/to-device", {
      user: req.user,
      ...(req.device !== undefined ? { device: req.device } : {}),
      client_msg_id: req.client_msg_id ?? newClientMsgId(),
      body: req.body,
    });
  }

  /** Creates a conversation (POST /v1/conversations). An id that is taken throws HttpError 409 `conflict`. */
  createConversation(req: { id?: string; members: string[]; retention?: RetentionPolicy }): Promise<ConversationSummary> {
    return this.#api.request<ConversationSummary>("POST", "/v1/conversations", req);
  }

  /** Registers this device (POST /v1/devices), optionally with a push target. */
  registerDevice(push?: PushTarget | null): Promise<DeviceInfo> {
    return this.#api.request<DeviceInfo>("POST", "/v1/devices", push ? { push } : {});
  }

  #flushOutbox(): void {
    if (this.#engine.online) this.#outbox.flush().catch(() => this.#engine.request());
  }

  #openSockets(): void {
    const parts = this.#liveParts;
    this.#inbox?.open();
    if (!parts) return;
    for (const id of this.#shown) {
      let live = this.#live.get(id);
      if (!live) this.#live.set(id, (live = new LiveConversation(id, parts)));
      live.open();
    }
  }

  #authChanged(failure: unknown): void {
    if (failure !== null) {
      if (this.#engine.online) this.#setStatus("auth_required");
      this.#events.emit("auth_required", { error: failure });
    } else if (this.#status === "auth_required") {
      this.#setStatus("connecting");
    }
  }

  #setStatus(status: ClientStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.#events.emit("status", status);
  }
}
