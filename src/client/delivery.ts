/**
 * Exactly-once hand-off to the app. The only place coverage grows: entries not
 * yet covered go to `onEntries`, and the app's writes commit in one atomic
 * batch with the new coverage, so a crash can neither lose nor repeat an entry.
 */
import type { Gap, Message } from "../protocol/types";
import { addSpans, covers, spansOf, type Span } from "./coverage";
import type { Emitter } from "./emitter";
import { HttpError } from "./errors";
import { emptyState, type ClientStore } from "./store";
import type { ClientOptions, ConversationState, EntryBatch, EntrySource, ResetInfo } from "./types";

const MAX_KEPT_GAPS = 20;

export interface DeliveryInput {
  conversationId: string;
  epoch: string;
  messages: readonly Message[];
  gaps: readonly Gap[];
  /** Seq ranges the source vouches it delivered completely (beyond the messages and gaps themselves). */
  spans: readonly Span[];
  source: EntrySource;
  head: number;
  floor: number;
  /** Sets `history_before` (a limited timeline's first seq) or clears it (null); undefined keeps it. */
  historyBefore?: number | null;
}

export class Delivery {
  readonly #store: ClientStore;
  readonly #events: Emitter;
  readonly #handlers: Pick<ClientOptions, "onEntries" | "onReset">;
  /** Lets sockets and ack bookkeeping drop what belonged to the old epoch. */
  readonly #onReset: (id: string) => void;

  constructor(store: ClientStore, events: Emitter, handlers: Pick<ClientOptions, "onEntries" | "onReset">, onReset: (id: string) => void) {
    this.#store = store;
    this.#events = events;
    this.#handlers = handlers;
    this.#onReset = onReset;
  }

  async deliver(input: DeliveryInput): Promise<void> {
    const { conversationId: id, epoch, messages, gaps, source } = input;
    const batch = await this.#store.transact(async (tx) => {
      const s = tx.state(id);
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
      const next = addSpans(coverage, [...input.spans, ...spansOf(messages.map((m) => m.seq)), ...gaps.map((g): Span => [g.from, g.to])]);
      const historyBefore = input.historyBefore === undefined ? s.history_before : input.historyBefore;
      const state: ConversationState = {
        ...s,
        epoch,
        received: next.upTo,
        above: next.above,
        head_seq: Math.max(input.head, next.upTo),
        floor_seq: Math.max(s.floor_seq, input.floor),
        gaps: [...s.gaps, ...newGaps.map((g) => ({ from: g.from, to: g.to, reason: g.reason }))].slice(-MAX_KEPT_GAPS),
        // Once the watermark reaches it, there is no hole left below the timeline.
        history_before: historyBefore !== null && historyBefore > next.upTo + 1 ? historyBefore : null,
      };
      const out: EntryBatch = { conversationId: id, epoch, messages: fresh, gaps: newGaps, source };
      const news = fresh.length > 0 || newGaps.length > 0;
      if (news && this.#handlers.onEntries) tx.include((await this.#handlers.onEntries(out)) ?? []);
      tx.put(state);
      return news ? out : null;
    });
    if (batch) this.#events.emit("delivered", batch);
  }

  /** Clean reset after an epoch change: the app drops its copy, coverage starts over. */
  async reset(id: string, newEpoch: string | null): Promise<void> {
    this.#onReset(id);
    const info = await this.#store.transact(async (tx) => {
      const old = tx.state(id);
      const info: ResetInfo = { conversationId: id, oldEpoch: old.epoch, newEpoch };
      tx.include((await this.#handlers.onReset?.(info)) ?? []);
      // Epoch null: the next pull starts over (newest page first) and adopts the server's epoch.
      tx.put({ ...emptyState(id), server_epoch: newEpoch, membership: old.membership });
      return info;
    });
    this.#events.emit("reset", info);
  }
}
