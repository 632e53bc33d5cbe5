/**
 * Cursors this device reports (POST /v1/cursors): the `received` watermark
 * after delivery, and read marks, which are durable (`read_pending`) until
 * the server took them or refused them for good.
 */
import { LIMITS } from "../protocol/limits";
import type { CursorsResponse } from "../protocol/types";
import type { ApiTransport } from "./api";
import type { Emitter } from "./emitter";
import { refusalOf, type Refusal } from "./errors";
import type { ClientStore } from "./store";

type Field = "received" | "read";
type Outcome = { id: string; seq: number } & ({ effective: number | undefined } | Refusal);

export class Cursors {
  readonly #api: ApiTransport;
  readonly #store: ClientStore;
  readonly #events: Emitter;
  /** The highest `received` sent per conversation (over HTTP or a socket) since the last reset. */
  readonly #acked = new Map<string, number>();

  constructor(api: ApiTransport, store: ClientStore, events: Emitter) {
    this.#api = api;
    this.#store = store;
    this.#events = events;
  }

  ackedUpTo(id: string): number {
    return this.#acked.get(id) ?? 0;
  }

  noteAcked(id: string, seq: number): void {
    if (seq > this.ackedUpTo(id)) this.#acked.set(id, seq);
  }

  /** The conversation's epoch changed: what was acked belonged to the old log. */
  forget(id: string): void {
    this.#acked.delete(id);
  }

  /** Reports the contiguous watermark of each conversation that moved since its last ack. */
  async ackReceived(ids: Iterable<string>, signal: AbortSignal | undefined): Promise<void> {
    const due = new Map<string, number>();
    for (const id of ids) {
      const received = this.#store.state(id).received;
      if (received > this.ackedUpTo(id)) due.set(id, received);
    }
    for (const outcome of await this.#post("received", due, signal)) {
      // A refused ack is not retried until the watermark moves again: the server's answer would not change.
      this.noteAcked(outcome.id, outcome.seq);
      if ("error" in outcome) {
        this.#events.emit("error", outcome.error);
        continue;
      }
      const { effective } = outcome;
      if (effective !== undefined) await this.#store.update(outcome.id, (s) => (s.server_received === effective ? s : { ...s, server_received: effective }));
    }
  }

  /** Records a read mark durably; `flushReads` sends it. */
  markRead(id: string, seq: number): Promise<void> {
    return this.#store.update(id, (s) => (seq > s.read ? { ...s, read: seq, read_pending: Math.max(seq, s.read_pending ?? 0) } : s));
  }

  /**
   * Sends pending read marks. A mark leaves `read_pending` only once the server
   * took it or refused it for good (then `readFailed`); auth and transient
   * failures throw and keep it for the next pass.
   */
  async flushReads(signal: AbortSignal | undefined): Promise<void> {
    const pending = new Map<string, number>();
    for (const s of this.#store.states()) if (s.read_pending !== null) pending.set(s.id, s.read_pending);
    for (const outcome of await this.#post("read", pending, signal)) {
      if ("error" in outcome) this.#events.emit("readFailed", { conversationId: outcome.id, seq: outcome.seq, error: outcome.error, reason: outcome.reason });
      // A newer mark set meanwhile stays pending.
      await this.#store.update(outcome.id, (s) => (s.read_pending === outcome.seq ? { ...s, read_pending: null } : s));
    }
  }

  async #post(field: Field, values: ReadonlyMap<string, number>, signal: AbortSignal | undefined): Promise<Outcome[]> {
    const entries = [...values];
    const out: Outcome[] = [];
    for (let i = 0; i < entries.length; i += LIMITS.maxCursorConversations) {
      out.push(...(await this.#postChunk(field, entries.slice(i, i + LIMITS.maxCursorConversations), signal)));
    }
    return out;
  }

  /**
   * The server validates every conversation of a request before changing any,
   * so one refused conversation fails the whole chunk: then each is sent alone,
   * and only the ones refused on their own count as refused.
   */
  async #postChunk(field: Field, chunk: readonly [string, number][], signal: AbortSignal | undefined): Promise<Outcome[]> {
    try {
      const res = await this.#api.request<CursorsResponse>("POST", "/v1/cursors", { [field]: Object.fromEntries(chunk) }, signal);
      return chunk.map(([id, seq]) => ({ id, seq, effective: res[field][id] }));
    } catch (err) {
      const refusal = refusalOf(err);
      if (refusal === null) throw err;
      const [only] = chunk;
      if (chunk.length === 1 && only) return [{ id: only[0], seq: only[1], ...refusal }];
      const out: Outcome[] = [];
      for (const entry of chunk) out.push(...(await this.#postChunk(field, [entry], signal)));
      return out;
    }
  }
}
