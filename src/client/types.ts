/** Public types of the client SDK: options, persisted state, events. */
import type { PokeFrame } from "../protocol/frames";
import type { Gap, Membership, Message, ReceiptCounts, ToDeviceEntry } from "../protocol/types";
import type { BackoffOptions } from "./backoff";
import type { Span } from "./coverage";
import type { HttpError } from "./errors";
import type { SocketFactory } from "./socket";
import type { ClientStorage, JsonValue, StorageOp } from "./storage";

/** What the SDK remembers about one conversation (persisted). */
export type ConversationState = {
  id: string;
  /** The epoch the local data belongs to; null until the first page or frame. */
  epoch: string | null;
  /** Contiguous watermark: every seq at or below it was handed to the app (or is a gap). */
  received: number;
  /** Spans handed to the app above `received` (newest-first pages, limited timelines). */
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
  /** A read cursor waiting to be sent (set while offline or while the token is refused). */
  read_pending: number | null;
  /** The epoch the last summary reported; differs from `epoch` until a pull resets. */
  server_epoch: string | null;
  /**
   * A limited sync timeline started here and left a hole below it: opening the
   * conversation fetches the page `before` this seq first (newest history first).
   */
  history_before: number | null;
};

/** A message waiting to be confirmed by the server (persisted). */
export type OutboxItem = {
  conversation_id: string;
  client_msg_id: string;
  body: JsonValue;
  created_at: string;
};

/**
 * Where a batch of entries came from: "timeline" (a sync summary), "newest"
 * (the newest history not yet delivered, when a conversation opens),
 * "backfill" (forward from the watermark), "catch_up" and "live" (a live socket).
 */
export type EntrySource = "timeline" | "newest" | "backfill" | "catch_up" | "live";

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

/** Why the server refused something for good (retrying the same request cannot succeed). */
export type RefusalReason = "invalid_request" | "payload_too_large" | "forbidden" | "not_found";

/** An outbox entry the server refused for good; it has left the outbox. */
export interface SendFailedInfo {
  item: OutboxItem;
  error: HttpError;
  reason: RefusalReason;
}

/** A read mark the server refused for good (e.g. no longer a member); it was dropped. */
export interface ReadFailedInfo {
  conversationId: string;
  seq: number;
  error: HttpError;
  reason: RefusalReason;
}

/**
 * "auth_required": no accepted token can be had (the provider failed, or a
 * fresh token was refused too). Everything stays queued; the SDK resumes on
 * its own once the provider yields a working token, or at `tokenChanged()`.
 */
export type ClientStatus = "offline" | "connecting" | "online" | "auth_required";

/** How far one of the user's own messages got (receipts are derived from cursors). */
export type ReceiptInfo = Omit<ReceiptCounts, "conversation_id"> & { conversationId: string };

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
  readFailed: ReadFailedInfo;
  /** No accepted token can be had; `error` is the provider's failure or the final 401. */
  auth_required: { error: unknown };
  /** New figures for one of the user's own messages (receipt frame or `receipts()`). */
  receipt: ReceiptInfo;
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

/**
 * Asked for a device JWT before requests and socket connects. `forceRefresh`
 * is true after the server refused the last one (401): return a new token,
 * not a cached one. Throwing means "no token now" (e.g. signed out); the SDK
 * then reports `auth_required` and asks again later.
 */
export type TokenProvider = (request: { forceRefresh: boolean }) => string | Promise<string>;

export interface ClientOptions {
  /** Origin of the service, e.g. "https://chat.example" (no trailing slash needed). */
  baseUrl: string;
  /** A device JWT, or a provider (a zero-argument function works too). */
  token: string | TokenProvider;
  storage: ClientStorage;
  /** Key prefix inside `storage` (default "od:"), so an app can share the store. */
  storagePrefix?: string;
  /** Injectable fetch (tests inject faults here). Default: global fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** Injectable socket factory; null disables sockets (HTTP sync only). Default: the global WebSocket. */
  socketFactory?: SocketFactory | null;
  /** Entries per page for history and sync requests (default 100, max 500). */
  pageSize?: number;
  /** Newest entries per conversation in each sync summary, for a first paint without history requests (default 20, max 50; 0 disables). */
  timelineLimit?: number;
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
