/**
 * Client SDK for the offline-delivery service (browser-safe: no Node APIs).
 * Node hosts that want file-backed state import `FileStorage` from
 * `./node-file-storage` separately.
 *
 * @example
 * import { OfflineClient, IndexedDBStorage } from "offline-delivery/client";
 * const client = new OfflineClient({ baseUrl: "https://chat.example", token: getToken, storage: new IndexedDBStorage("od:alice:phone") });
 * client.show("general");
 * await client.start();
 */
export { OfflineClient } from "./client";
export type {
  ClientEvents,
  ClientOptions,
  ClientStatus,
  ConversationState,
  EntryBatch,
  EntrySource,
  HandlerResult,
  OutboxItem,
  ReadFailedInfo,
  ReceiptInfo,
  RefusalReason,
  ResetInfo,
  SendFailedInfo,
  SentInfo,
  TokenProvider,
} from "./types";
export { formatReceipt } from "./receipts";
export { MemoryStorage, cloneJson } from "./storage";
export type { ClientStorage, JsonValue, StorageOp } from "./storage";
export { IndexedDBStorage } from "./indexeddb-storage";
export type { IdbFactoryLike } from "./indexeddb-storage";
export { AuthRequiredError, HttpError, NetworkError, ProtocolError, StoppedError, isRetryable, parseRetryAfter, refusalOf } from "./errors";
export type { Refusal } from "./errors";
export { backoffDelay, sleep } from "./backoff";
export type { BackoffOptions } from "./backoff";
export { fetchSocketFactory, webSocketFactory } from "./socket";
export type { ClientSocket, SocketFactory, SocketHandlers } from "./socket";
export { addSpans, covers, spansOf } from "./coverage";
export type { Coverage, Span } from "./coverage";
// Wire types, re-exported from the shared protocol module (never redefined here).
export type { Gap, Message, MessagePage, ReceiptCounts, SyncConversation, SyncResponse, SyncTimeline, ToDeviceEntry } from "../protocol/types";
export type { PokeFrame, ReceiptFrame } from "../protocol/frames";
