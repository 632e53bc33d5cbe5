/**
 * Pulls one opened conversation over HTTP: the newest entries first, so the
 * screen shows the present before history fills in, then forward from the
 * contiguous watermark until the head.
 */
import type { MessagePage } from "../protocol/types";
import type { ApiTransport } from "./api";
import type { Cursors } from "./cursors";
import type { Delivery } from "./delivery";
import type { Emitter } from "./emitter";
import { HttpError } from "./errors";
import type { ClientStore } from "./store";

/** Resets tolerated per pull before giving up (an epoch that keeps changing is a server bug). */
const MAX_RESETS = 3;

export interface HistoryParts {
  api: ApiTransport;
  store: ClientStore;
  delivery: Delivery;
  cursors: Cursors;
  events: Emitter;
  pageSize: number;
}

export class History {
  readonly #p: HistoryParts;

  constructor(parts: HistoryParts) {
    this.#p = parts;
  }

  /** Pulls one conversation; an epoch change resets its local state and pulls again. */
  async pull(id: string, signal: AbortSignal | undefined): Promise<void> {
    for (let resets = 0; ; resets++) {
      try {
        await this.#pullOnce(id, signal);
        await this.#p.cursors.ackReceived([id], signal);
        return;
      } catch (err) {
        if (err instanceof HttpError && err.code === "epoch_mismatch" && resets < MAX_RESETS) {
          await this.#p.delivery.reset(id, err.epoch);
          continue;
        }
        if (err instanceof HttpError && !err.retryable) {
          // Not a member (any more), unknown conversation: nothing to pull; tell the app.
          this.#p.events.emit("error", err);
          return;
        }
        throw err;
      }
    }
  }

  async #pullOnce(id: string, signal: AbortSignal | undefined): Promise<void> {
    const limit = this.#p.pageSize;
    let s = this.#p.store.state(id);
    const headKnown = s.epoch !== null;
    // Up to date by the last summary or page (the live socket's catch-up covers any race).
    if (headKnown && s.received >= s.head_seq && (s.server_epoch === null || s.server_epoch === s.epoch)) return;
    if (s.history_before !== null) {
      // A limited timeline drew the newest entries: the page just below it is the newest history missing.
      const before = s.history_before;
      const page = await this.#page(id, { before, limit }, s.epoch, signal);
      // Without has_more the page reaches down to seq 1; a page that names no boundary vouches for nothing.
      const from = page.has_more ? (page.next_before ?? before) : 1;
      await this.#p.delivery.deliver({ ...this.#entries(id, page), spans: [[from, before - 1]], source: "newest", historyBefore: null });
    } else if (s.above.length === 0 && (!headKnown || s.head_seq - s.received > limit)) {
      const page = await this.#page(id, { limit }, s.epoch, signal);
      const from = page.has_more ? (page.next_before ?? page.head_seq + 1) : 1;
      await this.#p.delivery.deliver({ ...this.#entries(id, page), spans: [[from, page.head_seq]], source: "newest" });
    }
    for (;;) {
      s = this.#p.store.state(id);
      const after = s.received;
      const page = await this.#page(id, { after, limit }, s.epoch, signal);
      const boundary = page.next_after ?? Math.max(page.head_seq, after);
      await this.#p.delivery.deliver({ ...this.#entries(id, page), spans: [[after + 1, boundary]], source: "backfill" });
      await this.#p.cursors.ackReceived([id], signal);
      // A page that moved nothing would repeat forever; the next pass asks again.
      if (!page.has_more || this.#p.store.state(id).received <= after) return;
    }
  }

  #page(id: string, query: { after?: number; before?: number; limit: number }, epoch: string | null, signal: AbortSignal | undefined): Promise<MessagePage> {
    const q = new URLSearchParams();
    if (query.after !== undefined) q.set("after", String(query.after));
    if (query.before !== undefined) q.set("before", String(query.before));
    q.set("limit", String(query.limit));
    if (epoch !== null) q.set("epoch", epoch);
    return this.#p.api.request<MessagePage>("GET", `/v1/conversations/${encodeURIComponent(id)}/messages?${q}`, undefined, signal);
  }

  #entries(id: string, page: MessagePage) {
    return { conversationId: id, epoch: page.epoch, messages: page.messages, gaps: page.gaps, head: page.head_seq, floor: page.floor_seq };
  }
}
