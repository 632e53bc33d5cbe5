/**
 * Client SDK for the offline-delivery service (browser-safe: no Node APIs).
 * Node hosts that want file-backed state import `FileStorage` from
 * `./node-file-storage` separately.
 *
 * @example
 * import { OfflineClient, IndexedDBStorage } from "./src/client";
 * const client = new OfflineClient({ baseUrl: location.origin, token, storage: new IndexedDBStorage("od:alice:phone") });
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
  ResetInfo,
  SendFailedInfo,
  SentInfo,
} from "./client";
export { MemoryStorage, cloneJson } from "./storage";
export type { ClientStorage, JsonValue, StorageOp } from "./storage";
export { IndexedDBStorage } from "./indexeddb-storage";
export type { IdbFactoryLike } from "./indexeddb-storage";
export { HttpError, NetworkError, StoppedError, isRetryable, parseRetryAfter } from "./errors";
export { backoffDelay, sleep } from "./backoff";
export type { BackoffOptions } from "./backoff";
export { fetchSocketFactory, webSocketFactory } from "./socket";
export type { ClientSocket, SocketFactory, SocketHandlers } from "./socket";
export { addSpans, covers, spansOf } from "./coverage";
export type { Coverage, Span } from "./coverage";
// Wire types, re-exported from the shared protocol module (never redefined here).
export type { Gap, Message, MessagePage, SyncConversation, SyncResponse, ToDeviceEntry } from "../protocol/types";
export type { PokeFrame } from "../protocol/frames";
