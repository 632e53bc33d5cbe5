/**
 * Live sockets of the conversations on screen: catch-up and live entries go
 * through the exactly-once delivery path; sends wait for their `sent` frame;
 * acks are coalesced; receipt frames feed the receipts.
 */
import { ERROR_STATUS } from "../protocol/errors";
import { liveFrameSchemas } from "../protocol/frame-schemas";
import { CLOSE_NOT_MEMBER, type LiveServerFrame } from "../protocol/frames";
import type { Cursors } from "./cursors";
import type { Delivery } from "./delivery";
import type { Emitter } from "./emitter";
import { HttpError, NetworkError } from "./errors";
import type { Receipts } from "./receipts";
import { SocketChannel, worthRetrying, type ChannelHost, type Verdict } from "./socket-channel";
import type { ClientStore } from "./store";
import type { OutboxItem } from "./types";

/** Coalescing window for socket acks: one `ack` frame per burst of entries. */
const ACK_DELAY_MS = 50;

export interface LiveParts {
  host: ChannelHost;
  store: ClientStore;
  delivery: Delivery;
  cursors: Cursors;
  receipts: Receipts;
  events: Emitter;
  sendTimeoutMs: number;
  /** Online and on screen. */
  wanted(id: string): boolean;
  requestSync(): void;
  /** Pulls over HTTP before a reconnect: where a browser learns what a refused upgrade cannot tell it (epoch, 403, Retry-After). */
  pull(id: string): Promise<void>;
  /** The socket reached `live`: queued sends for the conversation can use it. */
  wentLive(id: string): void;
}

interface Waiter {
  resolve(result: { seq: number; duplicate: boolean }): void;
  reject(err: unknown): void;
}

export class LiveConversation {
  readonly id: string;
  readonly #p: LiveParts;
  readonly #channel: SocketChannel<LiveServerFrame>;
  /** From the connection's `hello`: the epoch its entries belong to. */
  #epoch: string | null = null;
  #head = 0;
  #floor = 0;
  #live = false;
  readonly #waiters = new Map<string, Waiter>();
  #ackTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(id: string, parts: LiveParts) {
    this.id = id;
    this.#p = parts;
    this.#channel = new SocketChannel(parts.host, {
      conversationId: id,
      schemas: liveFrameSchemas,
      target: () => {
        const s = parts.store.state(id);
        const params = new URLSearchParams({ after: String(s.received) });
        if (s.epoch !== null) params.set("epoch", s.epoch);
        return { path: `/v1/conversations/${encodeURIComponent(id)}/live`, params };
      },
      wanted: () => parts.wanted(id),
      opened: () => undefined,
      frame: (f) => this.#frame(f),
      // Newer servers may add frame types; nothing here depends on them.
      unknown: () => undefined,
      // The HTTP pull fills whatever the dropped frame carried.
      dropped: () => parts.requestSync(),
      lost: (reason) => this.#lost(reason),
      connectFailed: (err) => this.#connectFailed(err),
      closed: (code) => this.#closed(code),
      beforeReconnect: () => parts.pull(id),
    });
  }

  /** Up and past catch-up: sends go over it. */
  get live(): boolean {
    return this.#live && this.#channel.connected;
  }

  open(): void {
    this.#channel.open();
  }

  close(): void {
    this.#channel.close();
  }

  /** Shown again: a conversation refused before may be open to us now. */
  allow(): void {
    this.#channel.allow();
  }

  /** Sends over the socket and waits for its `sent` frame (or an error frame naming it). */
  send(item: OutboxItem): Promise<{ seq: number; duplicate: boolean }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(item.client_msg_id);
        reject(new NetworkError("no `sent` frame in time"));
      }, this.#p.sendTimeoutMs);
      const settle = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A) => {
        clearTimeout(timer);
        this.#waiters.delete(item.client_msg_id);
        fn(...args);
      };
      const waiter: Waiter = { resolve: settle(resolve), reject: settle(reject) };
      this.#waiters.set(item.client_msg_id, waiter);
      try {
        this.#channel.send({ type: "send", client_msg_id: item.client_msg_id, body: item.body });
      } catch (err) {
        waiter.reject(err);
      }
    });
  }

  async #frame(frame: LiveServerFrame): Promise<void> {
    const { delivery, events } = this.#p;
    switch (frame.type) {
      case "hello":
        this.#epoch = frame.epoch;
        this.#head = frame.head_seq;
        this.#floor = frame.floor_seq;
        return;
      case "messages":
        if (this.#epoch === null) return;
        await delivery.deliver({ conversationId: this.id, epoch: this.#epoch, messages: frame.messages, gaps: frame.gaps, spans: [], source: "catch_up", head: this.#head, floor: this.#floor });
        this.#scheduleAck();
        return;
      case "live":
        this.#live = true;
        this.#channel.healthy();
        events.emit("socket", { conversationId: this.id, open: true });
        this.#p.wentLive(this.id);
        return;
      case "message":
        if (this.#epoch === null) return;
        this.#head = Math.max(this.#head, frame.message.seq);
        await delivery.deliver({ conversationId: this.id, epoch: this.#epoch, messages: [frame.message], gaps: [], spans: [], source: "live", head: this.#head, floor: this.#floor });
        this.#scheduleAck();
        return;
      case "sent":
        this.#waiters.get(frame.client_msg_id)?.resolve({ seq: frame.seq, duplicate: frame.duplicate });
        return;
      case "acked":
        this.#p.cursors.noteAcked(this.id, frame.seq);
        return;
      case "receipt": {
        const info = { conversationId: this.id, seq: frame.seq, members: frame.members, delivered: frame.delivered, read: frame.read };
        this.#p.receipts.record(info);
        events.emit("receipt", info);
        return;
      }
      case "error": {
        const err = new HttpError(ERROR_STATUS[frame.code], frame.code, frame.message);
        const waiter = frame.client_msg_id !== undefined ? this.#waiters.get(frame.client_msg_id) : undefined;
        if (waiter) waiter.reject(err);
        else events.emit("error", err);
        return;
      }
    }
  }

  #scheduleAck(): void {
    if (this.#ackTimer !== null) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = null;
      const received = this.#p.store.state(this.id).received;
      if (received <= this.#p.cursors.ackedUpTo(this.id)) return;
      try {
        this.#channel.send({ type: "ack", seq: received });
        this.#p.cursors.noteAcked(this.id, received);
      } catch {
        // The next pull acks over HTTP.
      }
    }, ACK_DELAY_MS);
  }

  #lost(reason: string): void {
    this.#live = false;
    this.#epoch = null;
    if (this.#ackTimer !== null) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
    for (const w of [...this.#waiters.values()]) w.reject(new NetworkError(reason));
  }

  #connectFailed(err: unknown): Verdict {
    if (err instanceof HttpError && err.code === "epoch_mismatch") {
      // The log was replaced: start over; the pass that follows opens the socket again.
      this.#p.delivery.reset(this.id, err.epoch).then(
        () => this.#p.requestSync(),
        (e: unknown) => this.#p.events.emit("error", e),
      );
      return "wait";
    }
    if (worthRetrying(err)) return "reconnect";
    this.#p.events.emit("error", err);
    return "stop";
  }

  #closed(code: number): Verdict {
    if (code !== CLOSE_NOT_MEMBER) return "reconnect";
    // Removed from the conversation: the summary will say so.
    this.#p.requestSync();
    return "stop";
  }
}
