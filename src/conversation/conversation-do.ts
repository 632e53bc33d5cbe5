/**
 * ConversationDO: one per conversation. It owns the seq counter and the SQLite
 * log, membership history, the cursor mirror (receipts, retention receipts),
 * and the notification of members' UserDOs. This file is the shell: RPC
 * methods and platform hooks; the rules live in the modules beside it.
 */
import { IttyRouter } from "itty-router";
import { settings } from "../config/settings";
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import { RowBudget } from "../platform/admission";
import { errorResponse, failureResponse } from "../platform/errors";
import { PlatformObject } from "../platform/object";
import { identityFrom, type SocketIdentity } from "../platform/sockets";
import { fail, ok, type Result } from "../protocol/errors";
import type { CursorCheck, Json, MemberView, PageParams } from "../protocol/internal";
import { LIMITS } from "../protocol/limits";
import type {
  Attachment,
  ConversationSummary,
  MemberPage,
  MessagePage,
  ReceiptCounts,
  SendResult,
  SenderRef,
  SyncTimeline,
} from "../protocol/types";
import { remotePorts, type Ports } from "../usecases/ports";
import { LiveHub, type LiveBatch } from "./live";
import { Log } from "./log";
import { Members } from "./members";
import { isPaced, Notifier } from "./notify";
import { visibleRanges } from "./paging";
import { Receipts } from "./receipts";
import { notMember, Reads } from "./reads";
import { handleFrame } from "./socket-frames";
import { Retention } from "./retention";
import { CONVERSATION_SCHEMA } from "./schema";
import { DeliverySignals } from "./signals";
import type { ConversationStats, CreateInput, ExpiredReceipts } from "./results";
import { ConversationStore, type Meta } from "./store";
import { Views } from "./views";
import { iso, messageJson } from "./wire";

export type { ConversationStats, CreateInput, ExpiredReceipts } from "./results";

export class ConversationDO extends PlatformObject {
  /** Cached `conversation` row; storage is the truth and rebuilds it on wake. */
  #meta: Meta | null = null;
  readonly #store: ConversationStore;
  readonly #log: Log;
  readonly #members: Members;
  readonly #views: Views;
  readonly #notifier: Notifier;
  readonly #retention: Retention;
  readonly #live: LiveHub;
  readonly #receipts: Receipts;
  readonly #signals: DeliverySignals;
  readonly #reads: Reads;
  readonly #budget: RowBudget;
  readonly #ports: Ports;
  /** Alarm work and ticks run one at a time; exact views have their own line, so a long paced round never holds back a join. */
  #serial: Promise<void> = Promise.resolve();
  #viewsSerial: Promise<void> = Promise.resolve();
  readonly #router = IttyRouter().get("/live", (req) => this.#openLive(req));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, CONVERSATION_SCHEMA);
    const meta = () => this.#meta!;
    const transaction = <T>(fn: () => T): T => ctx.storage.transactionSync(fn);
    const { notifyFanout: fanout, notifyPokesPerSecond: pokesPerSecond } = settings(env);
    this.#store = new ConversationStore(this.sql);
    this.#log = new Log(this.#store, meta, transaction);
    this.#members = new Members(this.#store, meta, this.#log, fanout);
    const paced = () => isPaced(meta().member_count, pokesPerSecond);
    this.#views = new Views(this.#store, meta, paced);
    this.#notifier = new Notifier({ env, store: this.#store, members: this.#members, views: this.#views, alarms: this.alarms, meta, fanout, pokesPerSecond, paced, transaction });
    this.#retention = new Retention(env, this.#store, meta, transaction);
    this.#signals = new DeliverySignals(env, this.#store, meta, transaction);
    this.#budget = new RowBudget(settings(env).admission.pageRowsPerSecond);
    this.#live = new LiveHub({
      ctx, env, store: this.#store, meta, log: this.#log, members: this.#members, budget: this.#budget,
      wake: (at) => this.alarms.atOrBefore(at),
      countUnavailable: (who, gaps, intervals) => this.#signals.unavailable(who, gaps, intervals),
    });
    this.#receipts = new Receipts(this.#store, meta, (frames) => this.#live.receipts(frames));
    this.#reads = new Reads(this.#log, this.#members, this.#budget, this.#signals, meta);
    const remote = remotePorts(env);
    this.#ports = { user: remote.user, conversation: (id) => (id === this.#meta?.id ? this : remote.conversation(id)) };
    // After the schema (queued first); a failed schema surfaces through ready() instead.
    void ctx.blockConcurrencyWhile(async () => {
      try {
        this.#meta = this.#store.loadMeta();
      } catch {
        this.#meta = null;
      }
    });
  }

  // ---- conversation and membership ----

  async create(input: CreateInput): Promise<Result<ConversationSummary>> {
    if (this.#ready().ok) return fail("conflict", `conversation ${input.id} already exists`);
    const members = [...new Set([input.creator.user, ...input.members])];
    // A conversation starts with at most one request's worth of members, the creator included; more join through POST …/members.
    if (members.length > LIMITS.maxMembersPerRequest) return fail("invalid_request", `at most ${LIMITS.maxMembersPerRequest} members at creation`);
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      const meta: Meta = {
        id: input.id, epoch: crypto.randomUUID().replaceAll("-", ""), created_at: now, created_by: input.creator.user,
        head_seq: 0, floor_seq: 0, msg_count: 0, floor_mcount: 0, member_count: 0, next_slot: 0,
        tick: 0, tick_head: 0, tick_floor: 0, floor_senders: [], expired_total: 0, unavailable_total: 0,
        max_age_seconds: input.retention?.max_age_seconds ?? null, max_messages: input.retention?.max_messages ?? null,
        sends_total: 0, send_rows_total: 0,
      };
      this.#store.insertMeta(meta);
      this.#meta = meta;
      this.#members.change(input.creator, { added: members, removed: [], by: input.creator.user, created: true }, now);
    });
    await this.#drain(true);
    return ok(this.#members.summary(this.#retention.policy()));
  }

  async summary(user: string): Promise<Result<ConversationSummary>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    if (!this.#members.isActive(user)) return notMember(user);
    return ok(this.#members.summary(this.#retention.policy()));
  }

  async memberPage(user: string, after: string, limit: number): Promise<Result<MemberPage>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    if (!this.#members.isActive(user)) return notMember(user);
    return ok(this.#members.page(after, limit));
  }

  async changeMembers(actor: SenderRef, add: string[], remove: string[]): Promise<Result<ConversationSummary>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    if (!this.#members.isActive(actor.user)) return notMember(actor.user);
    const { added, removed } = this.#members.effective(add, remove);
    const m = ready.value;
    if (m.member_count - removed.length + added.length > LIMITS.maxMembers) return fail("invalid_request", `at most ${LIMITS.maxMembers} members`);
    if (added.length > 0 || removed.length > 0) {
      const now = Date.now();
      const row = this.ctx.storage.transactionSync(() => this.#members.change(actor, { added, removed, by: actor.user }, now));
      this.#live.publish(row.seq, messageJson(row), removed);
      // Membership is rare and the changed members' indexes must reflect it before the caller acts on it.
      await this.#drain(this.#notifier.flat);
    }
    return ok(this.#members.summary(this.#retention.policy()));
  }

  // ---- the log ----

  async send(sender: SenderRef, clientMsgId: string, bodyJson: string, attachments: Attachment[] = []): Promise<Result<SendResult>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const m = ready.value;
    // A retry is answered with the original even after its sender left: check the key before membership.
    if (!this.#members.isActive(sender.user)) return this.#duplicate(sender, clientMsgId) ?? notMember(sender.user);
    const now = Date.now();
    const before = this.sql.written;
    const row = this.#log.append("message", sender, clientMsgId, bodyJson, now, attachments);
    if (!row) return this.#duplicate(sender, clientMsgId)!;
    m.sends_total += 1;
    m.send_rows_total += this.sql.written - before;
    // Replies and socket frames leave only after the write above is durable (output gate).
    this.#live.publish(row.seq, this.#log.remember(row), []);
    await this.#notifier.scheduleTick(now);
    return ok({ seq: row.seq, msg_id: row.msg_id, created_at: iso(now), duplicate: false });
  }

  #duplicate(sender: SenderRef, clientMsgId: string): Result<SendResult> | null {
    const existing = this.#store.idempotent(sender.user, sender.device, clientMsgId);
    if (!existing) return null;
    metrics.count(this.env, "duplicate_sends_total");
    this.#flushMetrics();
    return ok({ seq: existing.seq, msg_id: existing.msg_id, created_at: iso(existing.created_at), duplicate: true });
  }

  async page(who: SenderRef, params: PageParams): Promise<Result<Json<MessagePage>>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const res = this.#reads.page(who, params);
    this.#flushMetrics();
    return res;
  }

  /** The v1.1 sync timeline for one device: the newest ≤ `limit` visible entries above its `received`. Moves no cursor. */
  async timeline(who: SenderRef, received: number, limit: number): Promise<Result<Json<SyncTimeline>>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const res = this.#reads.timeline(who, received, limit);
    this.#flushMetrics();
    return res;
  }

  // ---- cursors and receipts ----

  /**
   * Validates (and, with `apply`, records) a user's cursors here: `received` is
   * mirrored per device (receipts, retention receipts), `read` per user
   * (derived unread, receipts). Both only move forward; both are clamped to
   * what the user may see. Returns the member's exact view for its UserDO.
   */
  async cursor(who: SenderRef, received: number | null, read: number | null, apply: boolean): Promise<Result<CursorCheck>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const intervals = this.#members.intervals(who.user);
    if (intervals.length === 0) return notMember(who.user);
    const visibleHead = this.#members.visibleHead(intervals);
    const member = this.#store.member(who.user)!;
    const clamped = received === null ? null : Math.min(received, visibleHead);
    if (apply) {
      const now = Date.now();
      let moved = false;
      this.ctx.storage.transactionSync(() => {
        if (read !== null && Math.min(read, visibleHead) > member.read_seq) {
          this.#store.setRead(who.user, Math.min(read, visibleHead));
          // Belt and braces: the Worker relays the view below, and the member is re-told if that relay is lost.
          this.#store.addTargets([who.user], now);
          moved = true;
        }
        if (clamped !== null && this.#store.raiseReceived(who.user, who.device, clamped, member.active === 1, now)) moved = true;
      });
      if (moved) {
        this.#receipts.changed();
        await this.alarms.atOrBefore(now + TUNING.notifyMaxWindowMs);
      }
    }
    return ok({ view: this.#views.view(who.user, this.#meta!.tick)!, received: clamped });
  }

  async receipts(user: string, seq: number): Promise<Result<ReceiptCounts>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    return this.#receipts.query(user, seq, this.#members.intervals(user));
  }

  /**
   * The sender's undelivered-expiry receipt: for each recipient device, how many
   * of the caller's messages retention removed before that device received them.
   */
  async expiredReceipts(user: string): Promise<Result<ExpiredReceipts>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    if (this.#members.intervals(user).length === 0) return notMember(user);
    return ok({
      conversation_id: ready.value.id,
      floor_seq: ready.value.floor_seq,
      expired: this.#store.expiredFor(user).map((r) => ({
        user: r.recipient_user,
        device: r.recipient_device === "*" ? null : r.recipient_device,
        entries: r.entries,
        last_seq: r.last_seq,
        updated_at: iso(r.updated_at),
      })),
    });
  }

  /** A device was deleted or expired: its cursor leaves the mirror (receipts stop counting it). */
  async forgetDevice(user: string, device: string, deletedAt: number, keep: number | null = null): Promise<Result<null>> {
    this.#ready();
    if (!this.#meta) return ok(null);
    this.ctx.storage.transactionSync(() => this.#store.forgetDevice(user, device, deletedAt, keep, Date.now()));
    this.#receipts.changed();
    return ok(null);
  }

  /** True when `user` may see an entry of this conversation that references the media. */
  async canSeeMedia(user: string, mediaId: string): Promise<boolean> {
    this.#ready();
    if (!this.#meta) return false;
    const ranges = visibleRanges(this.#members.intervals(user), this.#meta.floor_seq, this.#meta.head_seq);
    return this.#store.mediaRefSeqs(mediaId).some((seq) => ranges.some((r) => seq >= r.from && seq <= r.to));
  }

  // ---- shard callbacks ----

  /** A notification leaf's member list. */
  async leafMembers(leaf: number): Promise<{ version: number; users: string[] }> {
    this.#ready();
    return this.#members.leafMembers(leaf);
  }

  /** A live shard's socket catching up to what the shard was last sent. */
  async shardCatchUp(who: SocketIdentity, after: number, upTo: number): Promise<Result<string[]>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    return this.#live.shardCatchUp(who, after, upTo);
  }

  /** Entries a live shard missed. */
  async liveRange(from: number, to: number): Promise<LiveBatch> {
    this.#ready();
    return this.#live.range(from, to);
  }

  /** Operator view of this conversation (admin API). */
  async stats(): Promise<Result<ConversationStats>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const m = ready.value;
    const now = Date.now();
    return ok({
      id: m.id,
      head_seq: m.head_seq,
      floor_seq: m.floor_seq,
      members: m.member_count,
      live_sockets: this.#live.count(),
      outbox_pending: this.#store.targetsSummary().n + (this.#notifier.dirty ? 1 : 0),
      oldest_undelivered_ms: this.#signals.oldestUndeliveredMs(now),
      notify_lag_ms: this.#notifier.oldestUnconfirmedMs(now),
      expired_total: m.expired_total,
      unavailable_total: m.unavailable_total,
      retention: this.#retention.policy(),
      sends_total: m.sends_total,
      rows_written_sends_total: m.send_rows_total,
      notify: { tick: m.tick, leaves: this.#notifier.leaves, fanout: settings(this.env).notifyFanout },
    });
  }

  /** When the first entry after `received` was written: how long a device at that cursor has been missing something. */
  async undeliveredSince(received: number): Promise<number | null> {
    this.#ready();
    if (!this.#meta) return null;
    return this.#store.entryTimeAfter(Math.max(received, this.#meta.floor_seq));
  }

  /** Exact view of one member (tests and the admin API's user lookups). */
  async memberView(user: string): Promise<MemberView | null> {
    this.#ready();
    return this.#meta ? this.#views.view(user, this.#meta.tick) : null;
  }

  // ---- platform hooks ----

  protected override async onRequest(request: Request): Promise<Response> {
    const res = (await this.#router.fetch(request)) as Response | undefined;
    return res ?? errorResponse("not_found", "no such route");
  }

  async #openLive(request: Request): Promise<Response> {
    const ready = this.#ready();
    if (!ready.ok) return failureResponse(ready);
    const res = await this.#live.open(request, identityFrom(request));
    this.#flushMetrics();
    return res;
  }

  protected override async onMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await handleFrame(ws, message, this.#ports, this.#meta!.id);
  }

  protected override onClose(): void {
    this.#live.closed();
  }

  /** Notification, retention and media releases, one bounded step each, then the next wake-up. */
  protected override async onAlarm(): Promise<void> {
    await this.#serialize(async () => {
      if (!this.#meta) return;
      await this.#exactViews();
      await this.#notifier.tick();
      let more = false;
      for (let i = 0; i < TUNING.retentionBatchesPerAlarm; i++) {
        more = this.#retention.enforce(Date.now());
        if (!more) break;
      }
      this.#log.forget(this.#meta.floor_seq);
      await this.#retention.releaseMedia();
      await this.#live.reconcile();
      await this.#reschedule(more);
    });
  }

  // ---- internals ----

  /** Delivers what is due now (views; the tick too when `tick`), then sets the next wake-up. */
  async #drain(tick: boolean): Promise<void> {
    await this.#exactViews();
    if (tick) await this.#serialize(() => this.#notifier.tick());
    await this.#reschedule(false);
  }

  #exactViews(): Promise<void> {
    const run = this.#viewsSerial.then(() => this.#notifier.views());
    this.#viewsSerial = run.catch(() => undefined);
    return run;
  }

  #serialize(job: () => Promise<void>): Promise<void> {
    const run = this.#serial.then(job);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #reschedule(retentionBacklog: boolean): Promise<void> {
    const now = Date.now();
    const m = this.#meta!;
    metrics.gauge(this.env, "oldest_undelivered_seconds", m.id, this.#signals.oldestUndeliveredMs(now) / 1000);
    this.#flushMetrics();
    const due = Math.min(
      this.#notifier.dueAt(now) ?? Infinity,
      retentionBacklog ? now : (this.#retention.dueAt(now) ?? Infinity),
      this.#store.nextMediaRelease() ?? Infinity,
      this.#live.reconcileDueAt(now) ?? Infinity,
    );
    if (due !== Infinity) await this.alarms.atOrBefore(Math.max(due, now));
    else await this.alarms.none();
  }

  #ready(): Result<Meta> {
    this.ready();
    // Null after a start whose schema step failed (and healed since), or for a conversation not created yet.
    this.#meta ??= this.#store.loadMeta();
    return this.#meta ? ok(this.#meta) : fail("not_found", "no such conversation");
  }

  #flushMetrics(): void {
    const pending = metrics.flush(this.env);
    if (pending) this.ctx.waitUntil(pending);
  }
}



