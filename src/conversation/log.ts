/**
 * The conversation's log: gapless seqs from 1, each entry appended in one
 * statement that checks its idempotency key and computes its running counts, so
 * a send writes the same 3 rows (the entry and its two index entries) in a chat
 * of two and in a channel of 100,000. Reads return wire JSON
 * (src/conversation/wire.ts).
 */
import type { Json } from "../protocol/internal";
import type { Attachment, Message, SenderRef } from "../protocol/types";
import type { Range } from "./paging";
import type { ConversationStore, EntryRow, Meta } from "./store";
import { messageJson } from "./wire";

/** Wire JSON of recent entries kept in memory: a reconnect storm reads the same tail of the log. */
const CACHE_ENTRIES = 2000;
const CACHE_BYTES = 4 * 1024 * 1024;

export class Log {
  /** seq → wire JSON, oldest first (Map order), bounded by CACHE_ENTRIES and CACHE_BYTES. */
  readonly #cache = new Map<number, Json<Message>>();
  #cacheBytes = 0;

  constructor(
    private readonly store: ConversationStore,
    private readonly meta: () => Meta,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /**
   * Appends an entry, atomically: one statement, or a transaction when
   * attachments add their references. Moves the in-memory head and counts. Null,
   * and nothing written, when `clientMsgId` was already used by this device.
   */
  append(type: EntryRow["type"], sender: SenderRef, clientMsgId: string | null, bodyJson: string, now: number, attachments: readonly Attachment[] = []): EntryRow | null {
    const m = this.meta();
    const row: EntryRow = {
      seq: m.head_seq + 1,
      msg_id: crypto.randomUUID(),
      type,
      sender_user: sender.user,
      sender_device: sender.device,
      client_msg_id: clientMsgId,
      body: bodyJson,
      created_at: now,
      attachments: attachments.length > 0 ? JSON.stringify(attachments) : null,
      mcount: m.msg_count + (type === "message" ? 1 : 0),
      scount: null,
    };
    const insert = () => {
      const scount = this.store.insertEntry(row);
      if (scount !== undefined) for (const a of attachments) this.store.insertMediaRef(a.media_id, row.seq);
      return scount;
    };
    const scount = attachments.length > 0 ? this.transaction(insert) : insert();
    if (scount === undefined) return null;
    row.scount = scount;
    m.head_seq = row.seq;
    m.msg_count = row.mcount;
    return row;
  }

  /** The wire JSON of a row just appended, kept for the readers that will ask for it. */
  remember(row: EntryRow): Json<Message> {
    const json = messageJson(row);
    this.#keep(row.seq, json);
    return json;
  }

  /** The entries of `pieces` (ascending seq ranges) as wire JSON; from memory when the whole piece is there. */
  read(pieces: readonly Range[]): Json<Message>[] {
    const out: Json<Message>[] = [];
    for (const p of pieces) {
      const cached: Json<Message>[] = [];
      for (let seq = p.from; seq <= p.to; seq++) {
        const hit = this.#cache.get(seq);
        if (hit === undefined) break;
        cached.push(hit);
      }
      if (cached.length === p.to - p.from + 1) {
        out.push(...cached);
        continue;
      }
      for (const row of this.store.entries(p.from, p.to)) {
        const json = messageJson(row);
        this.#keep(row.seq, json);
        out.push(json);
      }
    }
    return out;
  }

  /** Retention removed everything up to `floor`. */
  forget(floor: number): void {
    for (const seq of [...this.#cache.keys()]) if (seq <= floor) this.#drop(seq);
  }

  #keep(seq: number, json: Json<Message>): void {
    if (this.#cache.has(seq)) return;
    this.#cache.set(seq, json);
    this.#cacheBytes += json.length;
    while (this.#cache.size > CACHE_ENTRIES || this.#cacheBytes > CACHE_BYTES) this.#drop(this.#cache.keys().next().value!);
  }

  #drop(seq: number): void {
    this.#cacheBytes -= this.#cache.get(seq)?.length ?? 0;
    this.#cache.delete(seq);
  }
}
