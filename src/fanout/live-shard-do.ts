/**
 * LiveShardDO: holds some of a large conversation's live sockets. The
 * conversation checks membership, epoch and `after`, then hands the upgrade
 * here; this object says hello, catches the socket up to the last seq it has
 * forwarded (asking the conversation), queues entries that arrive meanwhile,
 * says `live` and flushes the queue: no gap and no duplicate across the
 * hand-over. Batches carry their first seq; a gap (a lost batch, a restart)
 * is fetched from the conversation before anything newer goes out.
 */
import type { LiveBatch } from "../conversation/live";
import { SHARD_HEADERS } from "../conversation/live";
import { handleFrame } from "../conversation/socket-frames";
import { remotePorts } from "../usecases/ports";
import type { Env } from "../env";
import { log } from "../platform/log";
import { PlatformObject } from "../platform/object";
import { call } from "../platform/rpc";
import type { Schema } from "../platform/schema";
import { acceptSocket, closeSocket, identityFrom, identityOf, openSockets, sendFrame } from "../platform/sockets";
import { CLOSE_NOT_MEMBER } from "../protocol/frames";
import v1 from "../../migrations/live_shard/0001_init.sql";

const SCHEMA: Schema = { migrations: [{ version: 1, sql: v1 }] };
/** Queued for a socket still catching up: it was removed from the conversation at this point. */
const REMOVED = Symbol("removed");
type Queued = string | typeof REMOVED;

export class LiveShardDO extends PlatformObject {
  /** The last seq sent to this shard's live sockets; null before the first socket or batch. */
  #last: number | null = null;
  /** Sockets still catching up, with the frames that arrived for them meanwhile. */
  readonly #catching = new Map<WebSocket, Queued[]>();
  readonly #ports = remotePorts(this.env);
  /** Batches apply one at a time, in seq order. */
  #chain: Promise<void> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, SCHEMA);
    void ctx.blockConcurrencyWhile(async () => {
      try {
        this.#last = this.sql.first<{ last_seq: number }>("SELECT last_seq FROM shard_state")?.last_seq ?? null;
      } catch {
        this.#last = null; // the schema gate reports the cause
      }
    });
  }

  protected override onRequest(request: Request): Response {
    const who = identityFrom(request);
    const conversation = request.headers.get(SHARD_HEADERS.conversation) ?? "";
    const after = Number(request.headers.get(SHARD_HEADERS.after) ?? "0");
    const hello = request.headers.get(SHARD_HEADERS.hello) ?? "{}";
    const head = (JSON.parse(hello) as { head_seq: number }).head_seq;
    if (this.#last === null) this.#setLast(head);
    const upTo = this.#last!;
    return acceptSocket(this.ctx, who, [`u:${who.user}`, `c:${conversation}`], (ws) => {
      sendFrame(ws, hello);
      this.#catching.set(ws, []);
      void this.#catchUp(ws, conversation, after, upTo);
    });
  }

  /** A socket held here sends and acks through the same use cases as the conversation's own sockets. */
  protected override async onMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const tag = this.ctx.getTags(ws).find((t) => t.startsWith("c:"));
    if (!tag) return void closeSocket(ws, 1011, "unknown socket");
    await handleFrame(ws, message, this.#ports, tag.slice(2));
  }

  async #catchUp(ws: WebSocket, conversation: string, after: number, upTo: number): Promise<void> {
    const who = identityOf(ws)!;
    try {
      const frames = await call(this.env.CONVERSATIONS, conversation, "shardCatchUp", who, after, upTo);
      if (!frames.ok) {
        sendFrame(ws, { type: "error", code: frames.code, message: frames.message });
        return closeSocket(ws, CLOSE_NOT_MEMBER, frames.message);
      }
      for (const f of frames.value) sendFrame(ws, f);
      sendFrame(ws, { type: "live" });
      for (const f of this.#catching.get(ws) ?? []) {
        if (f === REMOVED) return closeSocket(ws, CLOSE_NOT_MEMBER, "no longer a member");
        sendFrame(ws, f);
      }
    } catch (err) {
      log("shard_catch_up_failed", { conversation, user: who.user, error: String(err) });
      closeSocket(ws, 1011, "catch-up failed; reconnect");
    } finally {
      this.#catching.delete(ws);
    }
  }

  /** A batch of new entries from the conversation. Returns how many sockets this shard holds. */
  async deliver(batch: LiveBatch): Promise<{ sockets: number }> {
    this.ready();
    const run = this.#chain.then(() => this.#apply(batch));
    this.#chain = run.catch(() => undefined);
    await run;
    return { sockets: this.ctx.getWebSockets().length };
  }

  /** Receipt frames for the sockets of their users. */
  async receipts(frames: [user: string, frame: string][]): Promise<void> {
    this.ready();
    for (const [user, frame] of frames) {
      for (const ws of openSockets(this.ctx, `u:${user}`)) if (!this.#catching.has(ws)) sendFrame(ws, frame);
    }
  }

  async #apply(batch: LiveBatch): Promise<void> {
    if (this.#last === null) this.#setLast(batch.from_seq - 1);
    if (batch.from_seq > this.#last! + 1) {
      // Missed entries (a lost batch, or the conversation restarted): fetch them first.
      await this.#apply(await call(this.env.CONVERSATIONS, batch.conversation_id, "liveRange", this.#last!, batch.from_seq - 1));
      if (batch.from_seq > this.#last! + 1) return; // not there yet; the next batch retries the gap
    }
    const removed = new Map(batch.removed);
    const sockets = openSockets(this.ctx);
    let seq = batch.from_seq - 1;
    for (const json of batch.entries) {
      seq += 1;
      if (seq <= this.#last!) continue;
      const frame = `{"type":"message","message":${json}}`;
      for (const ws of sockets) {
        const queued = this.#catching.get(ws);
        if (queued) queued.push(frame);
        else sendFrame(ws, frame);
      }
      for (const user of removed.get(seq) ?? []) {
        for (const ws of this.ctx.getWebSockets(`u:${user}`)) {
          const queued = this.#catching.get(ws);
          if (queued) queued.push(REMOVED);
          else closeSocket(ws, CLOSE_NOT_MEMBER, "no longer a member");
        }
      }
    }
    if (seq > this.#last!) this.#setLast(seq);
  }

  #setLast(seq: number): void {
    this.#last = seq;
    this.sql.run("INSERT INTO shard_state (singleton, last_seq) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET last_seq = excluded.last_seq", seq);
  }
}
