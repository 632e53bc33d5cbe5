/**
 * Sending: messages are queued durably and leave the queue only when the
 * server accepted them (201, 200 duplicate, a `sent` frame) or refused their
 * content for good (400, 403, 404, 413: then `sendFailed`). Everything else
 * (401, 429, 503, 5xx, network) keeps the message for the next attempt, and
 * retries reuse its client_msg_id, so the conversation gets it once.
 */
import type { SendResult } from "../protocol/types";
import type { ApiTransport } from "./api";
import type { Emitter } from "./emitter";
import { refusalOf } from "./errors";
import type { LiveConversation } from "./live";
import type { ClientStore } from "./store";
import type { OutboxItem, SentInfo } from "./types";

export interface OutboxParts {
  api: ApiTransport;
  store: ClientStore;
  events: Emitter;
  online(): boolean;
  signal(): AbortSignal | undefined;
  /** The conversation's live socket, when one exists. */
  live(id: string): LiveConversation | undefined;
}

export class Outbox {
  readonly #p: OutboxParts;
  #flushing: Promise<void> | null = null;

  constructor(parts: OutboxParts) {
    this.#p = parts;
  }

  /** Queues durably (an item with the same ids is not queued twice); returns the queued item. */
  async add(item: OutboxItem): Promise<OutboxItem> {
    const queued = await this.#p.store.enqueue(item);
    this.#changed();
    return queued;
  }

  /** Sends the queue, oldest first; concurrent callers share one flush. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushLoop().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    // One at a time, oldest first: the server sees this device's sends in order.
    for (let item = this.#p.store.outbox[0]; item && this.#p.online(); item = this.#p.store.outbox[0]) {
      const sent = await this.#sendOne(item);
      if (sent === null) continue;
      await this.#p.store.dequeue(item);
      this.#changed();
      this.#p.events.emit("sent", sent);
    }
  }

  /** The server's confirmation, or null when it refused the item for good (then it is gone). */
  async #sendOne(item: OutboxItem): Promise<SentInfo | null> {
    const ids = { conversationId: item.conversation_id, clientMsgId: item.client_msg_id };
    const live = this.#p.live(item.conversation_id);
    if (live?.live) {
      try {
        return { ...ids, ...(await live.send(item)), via: "socket" };
      } catch (err) {
        if (await this.#refused(item, err)) return null;
        // Socket trouble: the same client_msg_id over HTTP is safe (idempotent).
      }
    }
    try {
      const path = `/v1/conversations/${encodeURIComponent(item.conversation_id)}/messages`;
      const res = await this.#p.api.request<SendResult>("POST", path, { client_msg_id: item.client_msg_id, body: item.body }, this.#p.signal());
      return { ...ids, seq: res.seq, duplicate: res.duplicate, via: "http" };
    } catch (err) {
      if (await this.#refused(item, err)) return null;
      throw err;
    }
  }

  async #refused(item: OutboxItem, err: unknown): Promise<boolean> {
    const refusal = refusalOf(err);
    if (refusal === null) return false;
    await this.#p.store.dequeue(item);
    this.#changed();
    this.#p.events.emit("sendFailed", { item: structuredClone(item), ...refusal });
    return true;
  }

  #changed(): void {
    this.#p.events.emit("outbox", structuredClone([...this.#p.store.outbox]));
  }
}
