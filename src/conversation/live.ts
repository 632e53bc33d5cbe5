/**
 * Live sockets of one conversation. The conversation keeps the first
 * `liveRootSockets` itself (frames leave in the same turn as the append); the
 * rest live in LiveShardDOs, each far below the platform's 32,768 hibernatable
 * sockets per object, and the conversation sends one batch per shard.
 *
 * The contract is the same either way: hello → catch-up → live, then each new
 * entry once, in order. Here the catch-up runs in one synchronous turn, so no
 * append can fall between the last page and `live`; a shard catches up to the
 * last seq it was sent and queues what arrives meanwhile (src/fanout/live-shard-do.ts).
 */
import { settings } from "../config/settings";
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import type { RowBudget } from "../platform/admission";
import { failureResponse } from "../platform/errors";
import { log } from "../platform/log";
import { backoffMs } from "../platform/retry";
import { call } from "../platform/rpc";
import { acceptSocket, closeSocket, IDENTITY_HEADERS, openSockets, sendFrame, type SocketIdentity } from "../platform/sockets";
import { fail, ok, type Result } from "../protocol/errors";
import { CLOSE_NOT_MEMBER, type HelloFrame } from "../protocol/frames";
import { LIMITS } from "../protocol/limits";
import type { Gap } from "../protocol/types";
import type { Log } from "./log";
import type { Members } from "./members";
import { planForward, visibleRanges, type Range } from "./paging";
import type { ConversationStore, Meta } from "./store";
import { catchUpFrames, messageJson } from "./wire";

/** Headers the conversation adds when it hands an upgrade to a live shard. */
export const SHARD_HEADERS = { conversation: "x-od-conversation", after: "x-od-after", hello: "x-od-hello" } as const;

export interface LiveBatch {
  conversation_id: string;
  /** Seq of the first entry in `entries`; when `entries` is empty, the conversation's head + 1. */
  from_seq: number;
  entries: string[];
  /** Per member entry: the users it removed (their sockets get it, then close). */
  removed: [seq: number, users: string[]][];
}

export interface LiveDeps {
  ctx: DurableObjectState;
  env: Env;
  store: ConversationStore;
  meta: () => Meta;
  log: Log;
  members: Members;
  budget: RowBudget;
  /** Sets an alarm no later than `at` (a shard to reconcile). */
  wake: (at: number) => Promise<void>;
  /** Counts retention gaps a device was told about (the "unavailable" signal). */
  countUnavailable: (who: SocketIdentity, gaps: readonly Gap[], intervals: readonly Range[]) => void;
}

interface Pending {
  seq: number;
  json: string;
  removed: string[];
}

export class LiveHub {
  /** Shard → sockets it holds (approximate, for placement); null until read. */
  #shards: Map<number, number> | null = null;
  readonly #pending = new Map<number, Pending[]>();
  readonly #inflight = new Set<number>();
  readonly #lastForward = new Map<number, number>();
  /** Shards told about the head since this object started (the others are reconciled by the alarm). */
  readonly #reconciled = new Set<number>();
  /** Shards whose batch was given up: reconciled by the alarm until one attempt gets through. */
  readonly #gaveUp = new Set<number>();

  constructor(private readonly d: LiveDeps) {}

  get #shardMap(): Map<number, number> {
    this.#shards ??= this.d.store.liveShards();
    return this.#shards;
  }

  /** Sockets held here: counted once after a wake, then kept (listing every socket per upgrade is O(sockets)). */
  #here: number | null = null;

  get #local(): number {
    this.#here ??= this.d.ctx.getWebSockets().length;
    return this.#here;
  }

  /** A socket held here closed. */
  closed(): void {
    if (this.#here !== null) this.#here = Math.max(0, this.#here - 1);
  }

  /** Sockets held here and (approximately) in shards. */
  count(): number {
    return this.#local + [...this.#shardMap.values()].reduce((a, b) => a + b, 0);
  }

  /** Checks and accepts a live socket, here or in a shard. */
  async open(request: Request, who: SocketIdentity): Promise<Response> {
    const m = this.d.meta();
    if (!this.d.members.isActive(who.user)) return failureResponse(fail("forbidden", `${who.user} is not a member of this conversation`));
    const url = new URL(request.url);
    const epoch = url.searchParams.get("epoch");
    if (epoch !== null && epoch !== m.epoch) {
      return failureResponse(fail("epoch_mismatch", "the conversation's epoch changed; reset local state", { epoch: m.epoch }));
    }
    const afterParam = url.searchParams.get("after");
    const after = afterParam === null ? m.head_seq : Number(afterParam);
    if (after > m.head_seq) return failureResponse(fail("invalid_request", `after=${after} is beyond head_seq ${m.head_seq}`));
    const rootLimit = settings(this.d.env).liveRootSockets;
    // The kept count is a hint (a socket's error and close may both report): confirm it before going to a shard.
    if (this.#local >= rootLimit) this.#here = this.d.ctx.getWebSockets().length;
    const shard = this.#local < rootLimit ? null : this.#placeShard();
    if (shard === undefined || this.count() >= LIMITS.maxSocketsPerConversation) {
      return failureResponse(fail("overloaded", "too many live sockets on this conversation", { retryAfter: TUNING.socketCapRetrySeconds }));
    }
    // Catch-up is history read: it takes from the same row budget as pages.
    const shed = this.d.budget.admit(Math.min(m.head_seq - after, TUNING.catchUpPage * 5), "catch-up");
    if (shed) return failureResponse(shed);
    const hello: HelloFrame = { type: "hello", conversation_id: m.id, epoch: m.epoch, head_seq: m.head_seq, floor_seq: m.floor_seq };
    metrics.count(this.d.env, "socket_connects_total", 1, { socket: "live" });
    if (shard === null) {
      this.#here = this.#local + 1;
      return acceptSocket(this.d.ctx, who, [`u:${who.user}`], (ws) => {
        sendFrame(ws, hello);
        for (const frame of this.catchUp(who, after, m.head_seq)) sendFrame(ws, frame);
        sendFrame(ws, { type: "live" });
      });
    }
    return this.#forward(shard, who, after, hello);
  }

  /** Catch-up frames for `who` of every visible entry in (after, upTo]. Synchronous: one turn. */
  catchUp(who: SocketIdentity, after: number, upTo: number): string[] {
    const m = this.d.meta();
    const intervals = this.d.members.intervals(who.user);
    const ranges = visibleRanges(intervals, m.floor_seq, upTo);
    const frames: string[] = [];
    for (let pos = after; ; ) {
      const plan = planForward(ranges, m.floor_seq, upTo, pos, TUNING.catchUpPage);
      this.d.countUnavailable(who, plan.gaps, intervals);
      frames.push(...catchUpFrames(this.d.log.read(plan.pieces), plan.gaps, !plan.hasMore));
      if (!plan.hasMore) return frames;
      pos = plan.boundary;
    }
  }

  /** For a shard's socket: its catch-up, if the user is still a member. */
  shardCatchUp(who: SocketIdentity, after: number, upTo: number): Result<string[]> {
    if (!this.d.members.isActive(who.user)) return fail("forbidden", `${who.user} is not a member of this conversation`);
    return ok(this.catchUp(who, after, Math.min(upTo, this.d.meta().head_seq)));
  }

  /** Entries (from, to] for a shard that missed a batch. */
  range(from: number, to: number): LiveBatch {
    const m = this.d.meta();
    const entries: string[] = [];
    const removed: [number, string[]][] = [];
    const rows = this.d.store.entries(from + 1, Math.min(to, m.head_seq));
    for (const row of rows) {
      entries.push(messageJson(row));
      if (row.type === "member") removed.push([row.seq, (JSON.parse(row.body) as { removed: string[] }).removed]);
    }
    return { conversation_id: m.id, from_seq: rows[0]?.seq ?? m.head_seq + 1, entries, removed };
  }

  /**
   * Sends a committed entry once to every live socket. Users it removes get it
   * (it is their leave seq), then their sockets close. Every socket accepted here
   * is live: open() accepts, catches up and says `live` in one turn.
   */
  publish(seq: number, json: string, removed: readonly string[]): void {
    const frame = `{"type":"message","message":${json}}`;
    for (const ws of openSockets(this.d.ctx)) sendFrame(ws, frame);
    for (const user of removed) {
      for (const ws of this.d.ctx.getWebSockets(`u:${user}`)) closeSocket(ws, CLOSE_NOT_MEMBER, "no longer a member");
    }
    for (const shard of this.#shardMap.keys()) {
      const queue = this.#pending.get(shard) ?? [];
      queue.push({ seq, json, removed: [...removed] });
      this.#pending.set(shard, queue);
      this.#pump(shard);
    }
  }

  /** Receipt frames for the sockets of their users, here and in every shard. */
  receipts(frames: [user: string, frame: string][]): void {
    for (const [user, frame] of frames) for (const ws of openSockets(this.d.ctx, `u:${user}`)) sendFrame(ws, frame);
    for (const shard of this.#shardMap.keys()) {
      call(this.d.env.LIVE, this.#shardName(shard), "receipts", frames).catch((err: unknown) => log("live_receipts_failed", { shard, error: String(err) }));
    }
  }

  /** After a restart: tell every shard the head, so one that missed a batch fetches it. */
  async reconcile(): Promise<void> {
    const head = this.d.meta().head_seq;
    await Promise.all(
      [...this.#shardMap.keys()].filter((s) => !this.#reconciled.has(s)).map(async (shard) => {
        try {
          await call(this.d.env.LIVE, this.#shardName(shard), "deliver", { conversation_id: this.d.meta().id, from_seq: head + 1, entries: [], removed: [] });
          this.#reconciled.add(shard);
          this.#gaveUp.delete(shard);
        } catch (err) {
          log("live_reconcile_failed", { shard, error: String(err) });
        }
      }),
    );
  }

  /** When the alarm must reconcile shards whose batch was given up, or null. */
  reconcileDueAt(now: number): number | null {
    return this.#gaveUp.size > 0 ? now + TUNING.liveReconcileRetryMs : null;
  }

  #shardName(shard: number): string {
    return `${this.d.meta().id}/live/${shard}`;
  }

  /** The shard with room for one more socket (lowest index first); undefined when all are full. */
  #placeShard(): number | undefined {
    for (let i = 0; i < TUNING.liveShards; i++) {
      if ((this.#shardMap.get(i) ?? 0) < TUNING.liveShardSockets) return i;
    }
    return undefined;
  }

  async #forward(shard: number, who: SocketIdentity, after: number, hello: HelloFrame): Promise<Response> {
    const count = (this.#shardMap.get(shard) ?? 0) + 1;
    this.#shardMap.set(shard, count);
    this.#lastForward.set(shard, Date.now());
    this.#reconciled.add(shard);
    this.d.store.saveLiveShard(shard, count);
    const headers = new Headers({ upgrade: "websocket" });
    headers.set(IDENTITY_HEADERS.user, who.user);
    headers.set(IDENTITY_HEADERS.device, who.device);
    headers.set(SHARD_HEADERS.conversation, hello.conversation_id);
    headers.set(SHARD_HEADERS.after, String(after));
    headers.set(SHARD_HEADERS.hello, JSON.stringify(hello));
    const stub = this.d.env.LIVE.get(this.d.env.LIVE.idFromName(this.#shardName(shard)));
    return stub.fetch(new Request("https://live.internal/live", { headers }));
  }

  /** One batch in flight per shard; what queues meanwhile goes in the next batch. */
  #pump(shard: number): void {
    if (this.#inflight.has(shard)) return;
    const queue = this.#pending.get(shard);
    if (!queue || queue.length === 0) return;
    this.#pending.set(shard, []);
    this.#inflight.add(shard);
    const batch: LiveBatch = {
      conversation_id: this.d.meta().id,
      from_seq: queue[0]!.seq,
      entries: queue.map((p) => p.json),
      removed: queue.filter((p) => p.removed.length > 0).map((p) => [p.seq, p.removed]),
    };
    void this.#deliver(shard, batch, 0).finally(() => {
      this.#inflight.delete(shard);
      this.#pump(shard);
    });
  }

  async #deliver(shard: number, batch: LiveBatch, attempt: number): Promise<void> {
    try {
      const { sockets } = await call(this.d.env.LIVE, this.#shardName(shard), "deliver", batch);
      this.#shardMap.set(shard, sockets);
      // A shard that emptied out leaves the active set (unless a socket was just handed to it).
      if (sockets === 0 && Date.now() - (this.#lastForward.get(shard) ?? 0) > 30_000) {
        this.#shardMap.delete(shard);
        this.#pending.delete(shard);
        this.d.store.saveLiveShard(shard, 0);
      }
    } catch (err) {
      log("live_deliver_failed", { shard, attempt, error: String(err) });
      if (attempt >= 5) {
        // Given up: the alarm reconciles the shard (it fetches what it missed) until that gets through.
        this.#gaveUp.add(shard);
        this.#reconciled.delete(shard);
        await this.d.wake(Date.now() + TUNING.liveReconcileRetryMs);
        return;
      }
      await new Promise((r) => setTimeout(r, backoffMs(attempt, 50, 2000)));
      await this.#deliver(shard, batch, attempt + 1);
    }
  }
}
