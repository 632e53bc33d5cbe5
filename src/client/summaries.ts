/**
 * Conversation summaries (GET /v1/sync), page by page from the checkpoint.
 * With `timeline_limit` each summary carries the newest entries this device
 * has not received, delivered here through the same exactly-once path, so the
 * inbox draws from one round trip.
 */
import type { SyncConversation, SyncResponse, SyncTimeline } from "../protocol/types";
import type { ApiTransport } from "./api";
import type { Cursors } from "./cursors";
import type { Delivery } from "./delivery";
import { HttpError } from "./errors";
import type { ClientStore } from "./store";
import type { ConversationState } from "./types";

export interface SummaryParts {
  api: ApiTransport;
  store: ClientStore;
  delivery: Delivery;
  cursors: Cursors;
  pageSize: number;
  /** 0: summaries only. */
  timelineLimit: number;
}

export class Summaries {
  readonly #p: SummaryParts;

  constructor(parts: SummaryParts) {
    this.#p = parts;
  }

  async sync(signal: AbortSignal | undefined): Promise<void> {
    const { api, store, cursors } = this.#p;
    for (;;) {
      const q = new URLSearchParams({ limit: String(this.#p.pageSize) });
      if (this.#p.timelineLimit > 0) q.set("timeline_limit", String(this.#p.timelineLimit));
      const since = store.checkpoint;
      if (since !== null) q.set("since", since);
      let res: SyncResponse;
      try {
        res = await api.request<SyncResponse>("GET", `/v1/sync?${q}`, undefined, signal);
      } catch (err) {
        // A checkpoint the server no longer understands: fall back to a full sync.
        if (err instanceof HttpError && err.status === 400 && since !== null) {
          await store.transact((tx) => tx.setCheckpoint(null));
          continue;
        }
        throw err;
      }
      // Timelines commit before the checkpoint that covers them: a crash in between repeats the page, and dedupe absorbs it.
      const withTimeline: string[] = [];
      for (const c of res.conversations) {
        if (c.timeline === undefined) continue;
        await this.#deliverTimeline(c, c.timeline);
        withTimeline.push(c.id);
      }
      await store.transact((tx) => {
        for (const c of res.conversations) tx.put(applySummary(tx.state(c.id), c));
        tx.setCheckpoint(res.checkpoint);
      });
      // Reading a timeline moves no cursor on the server: this device says what it now has.
      await cursors.ackReceived(withTimeline, signal);
      if (!res.has_more) return;
    }
  }

  /**
   * Not limited: the timeline is complete over (received, head]. Limited: only
   * over [next_before, head]; what lies below stays uncovered, and opening the
   * conversation fetches the page before `next_before` first.
   */
  async #deliverTimeline(c: SyncConversation, t: SyncTimeline): Promise<void> {
    const local = this.#p.store.state(c.id);
    if (local.epoch !== null && local.epoch !== c.epoch) await this.#p.delivery.reset(c.id, c.epoch);
    // A limited timeline without its boundary vouches only for the entries it carries.
    const from = t.limited ? (t.next_before ?? c.head_seq + 1) : c.received + 1;
    await this.#p.delivery.deliver({
      conversationId: c.id,
      epoch: c.epoch,
      messages: t.messages,
      gaps: t.gaps,
      spans: [[from, c.head_seq]],
      source: "timeline",
      head: c.head_seq,
      floor: c.floor_seq,
      historyBefore: from,
    });
  }
}

function applySummary(s: ConversationState, c: SyncConversation): ConversationState {
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
