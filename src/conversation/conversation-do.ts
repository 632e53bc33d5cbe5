/**
 * ConversationDO: one per conversation. Owns the seq counter, the SQLite log,
 * membership history, the read mirror with exact unread counts, and the outbox
 * that tells each member's UserDO about new entries.
 */
import { IttyRouter } from "itty-router";
import type { Env } from "../env";
import { fail, ok, type Failure, type Result } from "../protocol/errors";
import { CLOSE_NOT_MEMBER, type ErrorFrame, type HelloFrame, type MessageFrame } from "../protocol/frames";
import { ackFrameSchema, sendMessageSchema } from "../protocol/schemas";
import type { CursorCheck, IndexUpdate, PageParams } from "../protocol/internal";
import { LIMITS } from "../protocol/limits";
import { mediaOwner } from "../protocol/ids";
import type {
  Attachment,
  ConversationSummary,
  Gap,
  MemberChangeBody,
  Message,
  MessagePage,
  RetentionPolicy,
  SendResult,
  SenderRef,
} from "../protocol/types";
import { envNumber, RowBudget, shedRetryAfter } from "../storage/admission";
import { SqlDurableObject } from "../storage/sql-object";
import { log } from "../observability/log";
import { metrics } from "../observability/metrics";
import { callUser } from "../worker/stubs";
import { errorResponse } from "../worker/errors";
import {
  closeSocket,
  IDENTITY_HEADERS,
  identityOf,
  openSockets,
  parseFrame,
  reciprocateClose,
  sendFrame,
  type SocketIdentity,
} from "../realtime/sockets";
import { CATCH_UP_PAGE, catchUpFrames } from "./live";
import { planBackward, planForward, visibleRanges, type Range } from "./paging";
import { CONVERSATION_MIGRATIONS } from "./schema";

interface Meta {
  expired_total: number;
  unavailable_total: number;
  id: string;
  epoch: string;
  created_at: number;
  created_by: string;
  head_seq: number;
  floor_seq: number;
  version: number;
  max_age_seconds: number | null;
  max_messages: number | null;
}

type EntryRow = {
  seq: number;
  msg_id: string;
  type: "message" | "member";
  sender_user: string;
  sender_device: string;
  client_msg_id: string | null;
  body: string;
  created_at: number;
  attachments: string | null;
};

type MemberRow = { user_id: string; active: number; read_seq: number; unread: number };

/** Entries removed per retention batch, and batches per alarm run: bounded work per wake. */
const RETENTION_BATCH = 500;
const RETENTION_BATCHES_PER_ALARM = 4;
/** How long an idempotency key outlives the entry retention removed. */
const IDEMPOTENCY_KEEP_MS = 7 * 24 * 3600 * 1000;

export interface ExpiredReceipts {
  conversation_id: string;
  floor_seq: number;
  expired: { user: string; device: string | null; entries: number; last_seq: number; updated_at: string }[];
}

export interface ConversationStats {
  id: string;
  head_seq: number;
  floor_seq: number;
  members: number;
  live_sockets: number;
  outbox_pending: number;
  oldest_undelivered_ms: number;
  expired_total: number;
  unavailable_total: number;
  retention: RetentionPolicy;
}

export interface CreateInput {
  id: string;
  creator: SenderRef;
  members: string[];
  retention?: RetentionPolicy;
}

export class ConversationDO extends SqlDurableObject {
  /** Cached copy of the `conversation` row; storage is the truth and rebuilds it on wake. */
  #meta: Meta | null = null;
  #draining: Promise<void> = Promise.resolve();
  readonly #budget: RowBudget;
  /** When the alarm is known to be set (a hint only; storage is the truth). */
  #alarmAt: number | null = null;
  readonly #router = IttyRouter().get("/live", (req) => this.#openLive(req));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, CONVERSATION_MIGRATIONS);
    // After the schema (queued first); a failed schema surfaces through ready() instead.
    void ctx.blockConcurrencyWhile(async () => {
      try {
        this.#meta = this.sql.first<Meta & Record<string, SqlStorageValue>>("SELECT * FROM conversation") ?? null;
      } catch {
        this.#meta = null;
      }
    });
    // Answered by the runtime without waking a hibernating object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    this.#budget = new RowBudget(envNumber(env.ADMISSION_PAGE_ROWS_PER_SECOND, 50_000));
  }

  // ---- RPC surface (called by the Worker) ----

  async create(input: CreateInput): Promise<Result<ConversationSummary>> {
    this.ready();
    if (this.#meta) return fail("conflict", `conversation ${input.id} already exists`);
    const members = [...new Set([input.creator.user, ...input.members])];
    if (members.length > LIMITS.maxMembers) return fail("invalid_request", `at most ${LIMITS.maxMembers} members`);
    const now = Date.now();
    const meta: Meta = {
      expired_total: 0,
      unavailable_total: 0,
      id: input.id,
      epoch: crypto.randomUUID().replaceAll("-", ""),
      created_at: now,
      created_by: input.creator.user,
      head_seq: 0,
      floor_seq: 0,
      version: 0,
      max_age_seconds: input.retention?.max_age_seconds ?? null,
      max_messages: input.retention?.max_messages ?? null,
    };
    this.ctx.storage.transactionSync(() => {
      this.sql.run(
        `INSERT INTO conversation (singleton, id, epoch, created_at, created_by, head_seq, floor_seq, version, max_age_seconds, max_messages)
         VALUES (1, ?, ?, ?, ?, 0, 0, 0, ?, ?)`,
        meta.id, meta.epoch, meta.created_at, meta.created_by, meta.max_age_seconds, meta.max_messages,
      );
      this.#meta = meta;
      this.#appendMemberChange(input.creator, { added: members, removed: [], by: input.creator.user, created: true }, now);
    });
    await this.#scheduleDrain(0);
    await this.#drainNow();
    return ok(this.#summary());
  }

  async summary(user: string): Promise<Result<ConversationSummary>> {
    const meta = this.#ready();
    if (!meta.ok) return meta;
    if (!this.#isActive(user)) return this.#notMember(user);
    return ok(this.#summary());
  }

  async changeMembers(actor: SenderRef, add: string[], remove: string[]): Promise<Result<ConversationSummary>> {
    const meta = this.#ready();
    if (!meta.ok) return meta;
    if (!this.#isActive(actor.user)) return this.#notMember(actor.user);
    const active = new Set(this.sql.all<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1").map((r) => r.user_id));
    const removed = [...new Set(remove)].filter((u) => active.has(u));
    const added = [...new Set(add)].filter((u) => !active.has(u) && !removed.includes(u));
    if (active.size - removed.length + added.length > LIMITS.maxMembers) {
      return fail("invalid_request", `at most ${LIMITS.maxMembers} members`);
    }
    if (added.length === 0 && removed.length === 0) return ok(this.#summary());
    const now = Date.now();
    const row = this.ctx.storage.transactionSync(() => this.#appendMemberChange(actor, { added, removed, by: actor.user }, now));
    this.#broadcast(row, removed);
    await this.#scheduleDrain(0);
    // Membership is rare and the index must reflect it before the caller acts on it.
    await this.#drainNow();
    return ok(this.#summary());
  }

  async send(sender: SenderRef, clientMsgId: string, bodyJson: string, attachments: Attachment[] = []): Promise<Result<SendResult>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const existing = this.sql.first<{ seq: number; msg_id: string; created_at: number }>(
      "SELECT seq, msg_id, created_at FROM idempotency WHERE sender_user = ? AND sender_device = ? AND client_msg_id = ?",
      sender.user, sender.device, clientMsgId,
    );
    if (existing) {
      metrics.count(this.env, "duplicate_sends_total");
      this.#flushMetrics();
      return ok({ seq: existing.seq, msg_id: existing.msg_id, created_at: iso(existing.created_at), duplicate: true });
    }
    if (!this.#isActive(sender.user)) return this.#notMember(sender.user);
    const now = Date.now();
    const row = this.ctx.storage.transactionSync(() => this.#append("message", sender, clientMsgId, bodyJson, now, attachments));
    // Replies and socket frames leave only after the write above is durable (output gate).
    this.#broadcast(row, []);
    await this.#scheduleDrain(LIMITS.outboxCoalesceMs);
    return ok({ seq: row.seq, msg_id: row.msg_id, created_at: iso(row.created_at), duplicate: false });
  }

  async page(who: SenderRef, params: PageParams): Promise<Result<MessagePage>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const meta = ready.value;
    const user = who.user;
    // Membership first: a stranger must not learn the epoch from the mismatch error.
    const intervals = this.#intervals(user);
    if (intervals.length === 0) return this.#notMember(user);
    if (params.epoch !== undefined && params.epoch !== meta.epoch) {
      return fail("epoch_mismatch", "the conversation's epoch changed; reset local state", { epoch: meta.epoch });
    }
    if (params.after !== undefined && params.before !== undefined) {
      return fail("invalid_request", "give either after or before, not both");
    }
    if (params.after !== undefined && params.after > meta.head_seq) {
      return fail("invalid_request", `after=${params.after} is beyond head_seq ${meta.head_seq}`);
    }
    const ranges = visibleRanges(intervals, meta.floor_seq, meta.head_seq);
    const forward = params.after !== undefined;
    const plan = forward
      ? planForward(ranges, meta.floor_seq, meta.head_seq, params.after ?? 0, params.limit)
      : planBackward(ranges, meta.floor_seq, meta.head_seq, Math.min(params.before ?? Infinity, meta.head_seq + 1), params.limit);
    // The budget pays for the rows this page really reads, not the limit asked for.
    const rows = plan.pieces.reduce((n, p) => n + p.to - p.from + 1, 0);
    const admitted = this.#budget.take(Math.max(1, rows));
    if (!admitted.ok) return fail("overloaded", "history reads are being shed; retry later", { retryAfter: shedRetryAfter(admitted.retryAfterMs) });
    const messages = this.#readPieces(plan.pieces);
    this.#countUnavailable(who, plan.gaps, intervals);
    this.#countDuplicates(who, messages);
    const page: MessagePage = {
      conversation_id: meta.id,
      epoch: meta.epoch,
      head_seq: meta.head_seq,
      floor_seq: meta.floor_seq,
      messages,
      gaps: plan.gaps,
      has_more: plan.hasMore,
    };
    if (forward) page.next_after = plan.boundary;
    else page.next_before = plan.boundary;
    return ok(page);
  }

  /**
   * Validates (and, with `apply`, records) a user's cursors for this conversation.
   * `read` is mirrored here because unread counts need the log; it only moves forward.
   */
  async cursor(who: SenderRef, received: number | null, read: number | null, apply: boolean): Promise<Result<CursorCheck>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const user = who.user;
    const intervals = this.#intervals(user);
    if (intervals.length === 0) return this.#notMember(user);
    const visibleHead = this.#visibleHead(user, intervals);
    if (apply && read !== null) {
      const member = this.#member(user);
      const target = Math.min(read, visibleHead);
      if (member && target > member.read_seq) {
        this.ctx.storage.transactionSync(() => {
          this.sql.run("UPDATE members SET read_seq = ?, unread = ? WHERE user_id = ?", target, this.#countUnread(user, target), user);
          const version = this.#bumpVersion();
          this.#enqueuePoke([user], version, Date.now());
        });
        await this.#scheduleDrain(LIMITS.outboxCoalesceMs);
      }
    }
    const clamped = received === null ? null : Math.min(received, visibleHead);
    if (apply && clamped !== null) {
      this.sql.run(
        `INSERT INTO device_cursors (user_id, device_id, received) VALUES (?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET received = max(received, excluded.received)`,
        user, who.device, clamped,
      );
    }
    return ok({ update: this.#indexUpdate(user), received: clamped });
  }

  /**
   * The sender's undelivered-expiry receipt: for each recipient device, how many of
   * the caller's messages retention removed before that device received them.
   */
  async expiredReceipts(user: string): Promise<Result<ExpiredReceipts>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    if (this.#intervals(user).length === 0) return this.#notMember(user);
    const rows = this.sql.all<{ recipient_user: string; recipient_device: string; entries: number; last_seq: number; updated_at: number }>(
      `SELECT recipient_user, recipient_device, entries, last_seq, updated_at FROM expired_undelivered
       WHERE sender_user = ? ORDER BY recipient_user, recipient_device`,
      user,
    );
    return ok({
      conversation_id: ready.value.id,
      floor_seq: ready.value.floor_seq,
      expired: rows.map((r) => ({
        user: r.recipient_user,
        device: r.recipient_device === "*" ? null : r.recipient_device,
        entries: r.entries,
        last_seq: r.last_seq,
        updated_at: iso(r.updated_at),
      })),
    });
  }

  /** True when `user` may see an entry of this conversation that references the media. */
  async canSeeMedia(user: string, mediaId: string): Promise<boolean> {
    this.ready();
    if (!this.#meta) return false;
    const ranges = visibleRanges(this.#intervals(user), this.#meta.floor_seq, this.#meta.head_seq);
    return this.sql
      .all<{ seq: number }>("SELECT seq FROM media_refs WHERE media_id = ?", mediaId)
      .some(({ seq }) => ranges.some((r) => seq >= r.from && seq <= r.to));
  }

  /** Operator view of this conversation (admin API). */
  async stats(): Promise<Result<ConversationStats>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const meta = ready.value;
    const outbox = this.sql.one<{ n: number; oldest: number | null }>("SELECT count(*) AS n, min(first_at) AS oldest FROM outbox");
    return ok({
      id: meta.id,
      head_seq: meta.head_seq,
      floor_seq: meta.floor_seq,
      members: this.sql.one<{ n: number }>("SELECT count(*) AS n FROM members WHERE active = 1").n,
      live_sockets: this.ctx.getWebSockets().length,
      outbox_pending: outbox.n,
      oldest_undelivered_ms: outbox.oldest === null ? 0 : Date.now() - outbox.oldest,
      expired_total: meta.expired_total,
      unavailable_total: meta.unavailable_total,
      retention: this.#policy(),
    });
  }

  /**
   * Drains the outbox (one poke per pending member, retried with backoff until
   * confirmed), then enforces retention a bounded batch at a time.
   */
  override async alarm(): Promise<void> {
    this.ready();
    this.#alarmAt = null; // this alarm is the one that was set
    await this.#drainNow();
    if (!this.#meta) return;
    let more = false;
    for (let i = 0; i < RETENTION_BATCHES_PER_ALARM; i++) {
      more = this.#enforceRetention(Date.now());
      if (!more) break;
    }
    await this.#drainMediaReleases();
    await this.#reschedule(more);
  }

  // ---- live sockets ----

  override async fetch(request: Request): Promise<Response> {
    this.ready();
    const res = (await this.#router.fetch(request)) as Response | undefined;
    return res ?? errorResponse("not_found", "no such route");
  }

  /**
   * Accepts a live socket: hello, catch-up pages of everything visible after
   * `after`, then `live`. The catch-up runs synchronously in one turn, so no
   * append can slip between the last page and the switch to live: no gap and
   * no duplicate.
   */
  #openLive(request: Request): Response {
    const ready = this.#ready();
    if (!ready.ok) return failureResponse(ready);
    const meta = ready.value;
    const user = request.headers.get(IDENTITY_HEADERS.user) ?? "";
    const device = request.headers.get(IDENTITY_HEADERS.device) ?? "";
    if (!this.#isActive(user)) return failureResponse(this.#notMember(user));
    const url = new URL(request.url);
    const epoch = url.searchParams.get("epoch");
    if (epoch !== null && epoch !== meta.epoch) {
      return failureResponse(fail("epoch_mismatch", "the conversation's epoch changed; reset local state", { epoch: meta.epoch }));
    }
    const afterParam = url.searchParams.get("after");
    const after = afterParam === null ? meta.head_seq : Number(afterParam);
    if (after > meta.head_seq) return failureResponse(fail("invalid_request", `after=${after} is beyond head_seq ${meta.head_seq}`));
    if (this.ctx.getWebSockets().length >= LIMITS.maxSocketsPerConversation) {
      return failureResponse(fail("overloaded", "too many live sockets on this conversation", { retryAfter: 5 }));
    }
    // Catch-up is history read: it takes from the same row budget as pages.
    const admitted = this.#budget.take(Math.min(meta.head_seq - after, LIMITS.maxPageSize));
    if (!admitted.ok) {
      return failureResponse(fail("overloaded", "catch-up is being shed; retry later", { retryAfter: shedRetryAfter(admitted.retryAfterMs) }));
    }

    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [`u:${user}`]);
    server.serializeAttachment({ v: 1, user, device } satisfies SocketIdentity);
    const hello: HelloFrame = { type: "hello", conversation_id: meta.id, epoch: meta.epoch, head_seq: meta.head_seq, floor_seq: meta.floor_seq };
    sendFrame(server, hello);
    const intervals = this.#intervals(user);
    const ranges = visibleRanges(intervals, meta.floor_seq, meta.head_seq);
    for (let pos = after; ; ) {
      const plan = planForward(ranges, meta.floor_seq, meta.head_seq, pos, CATCH_UP_PAGE);
      this.#countUnavailable({ user, device }, plan.gaps, intervals);
      for (const frame of catchUpFrames(this.#readPieces(plan.pieces), plan.gaps, !plan.hasMore)) sendFrame(server, frame);
      if (!plan.hasMore) break;
      pos = plan.boundary;
    }
    sendFrame(server, { type: "live" });
    metrics.count(this.env, "socket_connects_total", 1, { socket: "live" });
    this.#flushMetrics();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.ready();
    const who = identityOf(ws);
    if (!who) return closeSocket(ws, 1011, "unknown socket");
    const size = typeof message === "string" ? message.length : message.byteLength;
    if (size > LIMITS.maxRequestBytes) return void sendFrame(ws, errorFrame("payload_too_large", "frame is over 256 KiB"));
    const frame = parseFrame(message);
    if (!frame) return void sendFrame(ws, errorFrame("invalid_request", "frames are JSON objects"));
    if (frame.type === "send") {
      const parsed = sendMessageSchema.safeParse(frame);
      const clientMsgId = typeof frame.client_msg_id === "string" ? frame.client_msg_id : undefined;
      if (!parsed.success) return void sendFrame(ws, errorFrame("invalid_request", firstIssue(parsed.error.issues), clientMsgId));
      const bodyJson = JSON.stringify(parsed.data.body);
      if (new TextEncoder().encode(bodyJson).byteLength > LIMITS.maxBodyBytes) {
        return void sendFrame(ws, errorFrame("payload_too_large", `body is over ${LIMITS.maxBodyBytes} bytes serialized`, clientMsgId));
      }
      let attachments: Attachment[] = [];
      if (parsed.data.attachments) {
        const owned = await callUser(this.env, who.user, "attachMedia", parsed.data.attachments, this.#meta!.id);
        if (!owned.ok) return void sendFrame(ws, errorFrame(owned.code, owned.message, clientMsgId));
        attachments = owned.value;
      }
      const res = await this.send({ user: who.user, device: who.device }, parsed.data.client_msg_id, bodyJson, attachments);
      if (!res.ok) return void sendFrame(ws, errorFrame(res.code, res.message, clientMsgId));
      sendFrame(ws, { type: "sent", client_msg_id: parsed.data.client_msg_id, seq: res.value.seq, duplicate: res.value.duplicate });
      return;
    }
    if (frame.type === "ack") {
      const parsed = ackFrameSchema.safeParse(frame);
      if (!parsed.success) return void sendFrame(ws, errorFrame("invalid_request", firstIssue(parsed.error.issues)));
      const check = await this.cursor({ user: who.user, device: who.device }, parsed.data.seq, null, true);
      if (!check.ok) return void sendFrame(ws, errorFrame(check.code, check.message));
      const conv = this.#meta!.id;
      const res = await callUser(this.env, who.user, "applyCursors", who.device, [{ conversation_id: conv, check: check.value }], [conv], []);
      if (!res.ok) return void sendFrame(ws, errorFrame(res.code, res.message));
      sendFrame(ws, { type: "acked", seq: res.value.received[conv] ?? 0 });
      return;
    }
    sendFrame(ws, errorFrame("invalid_request", `unknown frame type ${JSON.stringify(frame.type)}`));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("live_socket_error", { conversation: this.#meta?.id, user: identityOf(ws)?.user, error: String(error) });
  }

  /**
   * Sends a committed entry once to every live socket. Users removed by this
   * entry get it (it is their leave seq) and then their sockets close.
   *
   * Every accepted socket is live here: #openLive accepts, catches up and marks
   * it live in one synchronous turn, so no append can run in between. That is
   * why fan-out needs no per-socket attachment read.
   */
  #broadcast(row: EntryRow, removed: readonly string[]): void {
    const sockets = openSockets(this.ctx);
    if (sockets.length === 0) return;
    const frame = JSON.stringify({ type: "message", message: toMessage(row) } satisfies MessageFrame);
    for (const ws of sockets) sendFrame(ws, frame);
    for (const user of removed) {
      for (const ws of this.ctx.getWebSockets(`u:${user}`)) closeSocket(ws, CLOSE_NOT_MEMBER, "no longer a member");
    }
  }

  #readPieces(pieces: readonly Range[]): Message[] {
    const messages: Message[] = [];
    for (const piece of pieces) {
      for (const row of this.sql.all<EntryRow>("SELECT * FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq", piece.from, piece.to)) {
        messages.push(toMessage(row));
      }
    }
    return messages;
  }

  // ---- log and membership ----

  #append(type: "message" | "member", sender: SenderRef, clientMsgId: string | null, bodyJson: string, now: number, attachments: Attachment[] = []): EntryRow {
    const meta = this.#meta!;
    const row: EntryRow = {
      seq: meta.head_seq + 1,
      msg_id: crypto.randomUUID(),
      type,
      sender_user: sender.user,
      sender_device: sender.device,
      client_msg_id: clientMsgId,
      body: bodyJson,
      created_at: now,
      attachments: attachments.length > 0 ? JSON.stringify(attachments) : null,
    };
    this.sql.run(
      `INSERT INTO entries (seq, msg_id, type, sender_user, sender_device, client_msg_id, body, created_at, attachments)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.seq, row.msg_id, row.type, row.sender_user, row.sender_device, row.client_msg_id, row.body, row.created_at, row.attachments,
    );
    if (clientMsgId !== null) {
      this.sql.run(
        "INSERT INTO idempotency (sender_user, sender_device, client_msg_id, seq, msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        sender.user, sender.device, clientMsgId, row.seq, row.msg_id, now,
      );
    }
    for (const a of attachments) this.sql.run("INSERT OR IGNORE INTO media_refs (media_id, seq) VALUES (?, ?)", a.media_id, row.seq);
    if (type === "message") {
      this.sql.run("UPDATE members SET unread = unread + 1 WHERE active = 1 AND user_id != ?", sender.user);
    }
    meta.head_seq = row.seq;
    this.sql.run("UPDATE conversation SET head_seq = ? WHERE singleton = 1", row.seq);
    const version = this.#bumpVersion();
    this.sql.run(
      `INSERT INTO outbox (user_id, version, first_at) SELECT user_id, ?, ? FROM members WHERE active = 1
       ON CONFLICT (user_id) DO UPDATE SET version = excluded.version`,
      version, now,
    );
    return row;
  }

  /** Writes a `member` entry and the interval changes it implies; inside a transaction. */
  #appendMemberChange(actor: SenderRef, change: MemberChangeBody, now: number): EntryRow {
    const row = this.#append("member", actor, null, JSON.stringify(change), now);
    for (const user of change.removed) {
      this.sql.run("UPDATE intervals SET to_seq = ? WHERE user_id = ? AND to_seq IS NULL", row.seq, user);
      this.sql.run("UPDATE members SET active = 0 WHERE user_id = ?", user);
    }
    for (const user of change.added) {
      this.sql.run("INSERT INTO intervals (user_id, from_seq, to_seq) VALUES (?, ?, NULL)", user, row.seq);
      this.sql.run(
        `INSERT INTO members (user_id, active, read_seq, unread) VALUES (?, 1, 0, 0)
         ON CONFLICT (user_id) DO UPDATE SET active = 1`,
        user,
      );
      const member = this.#member(user)!;
      this.sql.run("UPDATE members SET unread = ? WHERE user_id = ?", this.#countUnread(user, member.read_seq), user);
    }
    // Added users are active now and were covered by #append's outbox insert only if already members.
    this.#enqueuePoke([...change.added, ...change.removed], this.#meta!.version, now);
    return row;
  }

  #countUnread(user: string, read: number): number {
    return this.sql.one<{ n: number }>(
      `SELECT count(*) AS n FROM entries e JOIN intervals i
         ON i.user_id = ? AND e.seq >= i.from_seq AND (i.to_seq IS NULL OR e.seq <= i.to_seq)
       WHERE e.seq > ? AND e.type = 'message' AND e.sender_user != ?`,
      user, read, user,
    ).n;
  }

  #bumpVersion(): number {
    const meta = this.#meta!;
    meta.version += 1;
    this.sql.run("UPDATE conversation SET version = ? WHERE singleton = 1", meta.version);
    return meta.version;
  }

  #enqueuePoke(users: readonly string[], version: number, now: number): void {
    for (const user of users) {
      this.sql.run(
        `INSERT INTO outbox (user_id, version, first_at) VALUES (?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET version = excluded.version`,
        user, version, now,
      );
    }
  }

  // ---- outbox ----

  async #scheduleDrain(delayMs: number): Promise<void> {
    const due = Date.now() + delayMs;
    // A send in a burst finds the alarm already set: skip the storage round trip.
    if (this.#alarmAt !== null && this.#alarmAt <= due && this.#alarmAt > Date.now()) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) {
      await this.ctx.storage.setAlarm(due);
      this.#alarmAt = due;
    } else this.#alarmAt = current;
  }

  /** Serialises drains: an inline drain and the alarm never poke concurrently. */
  #drainNow(): Promise<void> {
    const run = this.#draining.then(() => this.#drainBatches());
    this.#draining = run.catch(() => undefined);
    return run;
  }

  async #drainBatches(): Promise<void> {
    for (;;) {
      const now = Date.now();
      const due = this.sql.all<{ user_id: string; attempts: number }>(
        "SELECT user_id, attempts FROM outbox WHERE next_at <= ? ORDER BY next_at LIMIT ?",
        now, LIMITS.outboxBatch,
      );
      if (due.length === 0) break;
      const failures = await this.#pokeAll(due);
      if (failures === due.length) break; // everything failed: wait for the backoff, not a hot loop
    }
    await this.#reschedule(false);
  }

  /** One alarm serves the outbox and retention: set it to whichever is due first. */
  async #reschedule(retentionBacklog: boolean): Promise<void> {
    const now = Date.now();
    const oldest = this.sql.one<{ at: number | null }>("SELECT min(first_at) AS at FROM outbox").at;
    if (this.#meta) metrics.gauge(this.env, "oldest_undelivered_seconds", this.#meta.id, oldest === null ? 0 : (now - oldest) / 1000);
    this.#flushMetrics();
    const outbox = this.sql.one<{ at: number | null }>(
      "SELECT min(at) AS at FROM (SELECT min(next_at) AS at FROM outbox UNION ALL SELECT min(next_at) FROM media_released)",
    ).at;
    const retention = retentionBacklog ? now : this.#retentionDueAt(now);
    const due = Math.min(outbox ?? Infinity, retention ?? Infinity);
    if (due !== Infinity) {
      this.#alarmAt = Math.max(due, now);
      await this.ctx.storage.setAlarm(this.#alarmAt);
    } else this.#alarmAt = null;
  }

  // ---- retention ----

  #policy(): RetentionPolicy {
    const meta = this.#meta!;
    const policy: RetentionPolicy = {};
    const maxAge = meta.max_age_seconds ?? envNumber(this.env.RETENTION_MAX_AGE_SECONDS, 0);
    const maxMessages = meta.max_messages ?? envNumber(this.env.RETENTION_MAX_MESSAGES, 0);
    if (maxAge > 0) policy.max_age_seconds = maxAge;
    if (maxMessages > 0) policy.max_messages = maxMessages;
    return policy;
  }

  #retentionDueAt(now: number): number | null {
    const meta = this.#meta!;
    const policy = this.#policy();
    if (policy.max_messages !== undefined && meta.head_seq - meta.floor_seq > policy.max_messages) return now;
    if (policy.max_age_seconds === undefined) return null;
    const oldest = this.sql.first<{ created_at: number }>("SELECT created_at FROM entries WHERE seq > ? ORDER BY seq LIMIT 1", meta.floor_seq);
    return oldest ? oldest.created_at + policy.max_age_seconds * 1000 : null;
  }

  /**
   * Removes at most RETENTION_BATCH entries from the bottom of the log and raises
   * the floor. Returns true when more are due. Entries some device never received
   * are counted for their senders first (the undelivered-expiry receipt).
   */
  #enforceRetention(now: number): boolean {
    const meta = this.#meta!;
    const policy = this.#policy();
    const from = meta.floor_seq;
    const limit = Math.min(meta.head_seq, from + RETENTION_BATCH);
    let target = from;
    if (policy.max_messages !== undefined) target = Math.max(target, Math.min(limit, meta.head_seq - policy.max_messages));
    if (policy.max_age_seconds !== undefined) {
      const cutoff = now - policy.max_age_seconds * 1000;
      for (const r of this.sql.all<{ seq: number; created_at: number }>(
        "SELECT seq, created_at FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq", from, limit,
      )) {
        if (r.created_at >= cutoff) break;
        target = Math.max(target, r.seq);
      }
    }
    if (target <= from) return false;
    this.ctx.storage.transactionSync(() => {
      this.#recordExpiry(from, target, now);
      this.#releaseMedia(from, target);
      this.sql.run("DELETE FROM entries WHERE seq > ? AND seq <= ?", from, target);
      meta.floor_seq = target;
      meta.expired_total += target - from;
      this.sql.run("UPDATE conversation SET floor_seq = ?, expired_total = ? WHERE singleton = 1", target, meta.expired_total);
      // Unread counts only count entries that still exist.
      for (const { user_id } of this.sql.all<{ user_id: string }>("SELECT user_id FROM members WHERE read_seq < ?", target)) {
        const read = this.#member(user_id)!.read_seq;
        this.sql.run("UPDATE members SET unread = ? WHERE user_id = ?", this.#countUnread(user_id, read), user_id);
      }
      // Keys of removed entries stay for IDEMPOTENCY_KEEP_MS after their send, so late retries stay duplicates.
      this.sql.run("DELETE FROM idempotency WHERE seq <= ? AND created_at < ?", target, now - IDEMPOTENCY_KEEP_MS);
      const version = this.#bumpVersion();
      // Current members, and former members whose history lost entries (or just became all gone), learn the new floor.
      this.sql.run(
        `INSERT INTO outbox (user_id, version, first_at)
         SELECT user_id, ?, ? FROM members WHERE active = 1
         UNION SELECT user_id, ?, ? FROM intervals WHERE to_seq IS NOT NULL AND to_seq >= ?
         ON CONFLICT (user_id) DO UPDATE SET version = excluded.version`,
        version, now, version, now, from,
      );
    });
    log("retention_removed", { conversation: meta.id, from: from + 1, to: target });
    metrics.count(this.env, "retention_expired_total", target - from);
    const due = this.#retentionDueAt(now);
    return target === limit && due !== null && due <= now;
  }

  /** Drops media references of entries in (from, to]; media no entry references any more is released to its owner. */
  #releaseMedia(from: number, to: number): void {
    const gone = this.sql.all<{ media_id: string }>("SELECT DISTINCT media_id FROM media_refs WHERE seq > ? AND seq <= ?", from, to);
    if (gone.length === 0) return;
    this.sql.run("DELETE FROM media_refs WHERE seq > ? AND seq <= ?", from, to);
    for (const { media_id } of gone) {
      const still = this.sql.first("SELECT 1 AS one FROM media_refs WHERE media_id = ? LIMIT 1", media_id);
      const owner = mediaOwner(media_id);
      if (!still && owner) this.sql.run("INSERT OR IGNORE INTO media_released (media_id, owner) VALUES (?, ?)", media_id, owner);
    }
  }

  /** Tells owners their media lost its last reference here; retried with backoff until they confirm. */
  async #drainMediaReleases(): Promise<void> {
    const now = Date.now();
    const due = this.sql.all<{ media_id: string; owner: string; attempts: number }>(
      "SELECT media_id, owner, attempts FROM media_released WHERE next_at <= ? LIMIT ?", now, LIMITS.mediaSweepBatch,
    );
    for (const d of due) {
      try {
        const res = await callUser(this.env, d.owner, "releaseMedia", d.media_id, this.#meta!.id);
        if (!res.ok) throw new Error(res.message);
        this.sql.run("DELETE FROM media_released WHERE media_id = ?", d.media_id);
      } catch (err) {
        const backoff = Math.min(LIMITS.outboxMaxBackoffMs, 1000 * 2 ** d.attempts);
        this.sql.run("UPDATE media_released SET attempts = attempts + 1, next_at = ? WHERE media_id = ?", now + backoff, d.media_id);
        log("media_release_failed", { conversation: this.#meta?.id, media: d.media_id, error: String(err) });
      }
    }
  }

  /** Counts, per sender, the messages in (from, to] each recipient device never received. */
  #recordExpiry(from: number, to: number, now: number): void {
    const recipients = this.sql.all<{ user_id: string }>(
      "SELECT DISTINCT user_id FROM intervals WHERE from_seq <= ? AND (to_seq IS NULL OR to_seq > ?)", to, from,
    );
    for (const { user_id: user } of recipients) {
      const devices = this.sql.all<{ device_id: string; received: number }>("SELECT device_id, received FROM device_cursors WHERE user_id = ?", user);
      const targets = devices.length > 0 ? devices.filter((d) => d.received < to).map((d) => ({ device: d.device_id, after: Math.max(from, d.received) })) : [{ device: "*", after: from }];
      for (const t of targets) {
        const rows = this.sql.all<{ sender: string; n: number; last: number }>(
          `SELECT e.sender_user AS sender, count(*) AS n, max(e.seq) AS last FROM entries e JOIN intervals i
             ON i.user_id = ? AND e.seq >= i.from_seq AND (i.to_seq IS NULL OR e.seq <= i.to_seq)
           WHERE e.seq > ? AND e.seq <= ? AND e.type = 'message' AND e.sender_user != ? GROUP BY e.sender_user`,
          user, t.after, to, user,
        );
        for (const r of rows) {
          this.sql.run(
            `INSERT INTO expired_undelivered (sender_user, recipient_user, recipient_device, entries, last_seq, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (sender_user, recipient_user, recipient_device) DO UPDATE SET entries = entries + excluded.entries,
               last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at`,
            r.sender, user, t.device, r.n, r.last, now,
          );
        }
      }
    }
  }

  /** Entries served again to a device that already acknowledged them (its cursor was wrong or lost). */
  #countDuplicates(who: SenderRef, messages: readonly Message[]): void {
    if (messages.length === 0) return;
    const received = this.sql.first<{ received: number }>(
      "SELECT received FROM device_cursors WHERE user_id = ? AND device_id = ?", who.user, who.device,
    )?.received;
    if (received === undefined) return;
    const again = messages.filter((m) => m.seq <= received).length;
    if (again > 0) {
      metrics.count(this.env, "duplicate_deliveries_total", again);
      this.#flushMetrics();
    }
  }

  #flushMetrics(): void {
    const pending = metrics.flush(this.env);
    if (pending) this.ctx.waitUntil(pending);
  }

  /**
   * "Messages unavailable due to retention": entries a device asked for that
   * retention had removed, counted once per device however often it asks.
   */
  #countUnavailable(who: SenderRef, gaps: readonly Gap[], intervals: readonly Range[]): void {
    const gap = gaps.find((g) => g.reason === "retention");
    if (!gap) return;
    const reported = this.sql.first<{ up_to: number }>(
      "SELECT up_to FROM retention_reported WHERE user_id = ? AND device_id = ?", who.user, who.device,
    )?.up_to ?? 0;
    const lo = Math.max(gap.from, reported + 1);
    if (lo > gap.to) return;
    const n = intervals.reduce((sum, r) => sum + Math.max(0, Math.min(r.to, gap.to) - Math.max(r.from, lo) + 1), 0);
    const meta = this.#meta!;
    this.ctx.storage.transactionSync(() => {
      this.sql.run(
        `INSERT INTO retention_reported (user_id, device_id, up_to) VALUES (?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET up_to = max(up_to, excluded.up_to)`,
        who.user, who.device, gap.to,
      );
      if (n > 0) {
        metrics.count(this.env, "retention_unavailable_total", n);
        meta.unavailable_total += n;
        this.sql.run("UPDATE conversation SET unavailable_total = ? WHERE singleton = 1", meta.unavailable_total);
      }
    });
  }

  async #pokeAll(due: readonly { user_id: string; attempts: number }[]): Promise<number> {
    let failures = 0;
    let index = 0;
    const worker = async (): Promise<void> => {
      while (index < due.length) {
        const { user_id: user, attempts } = due[index++]!;
        const update = this.#indexUpdate(user);
        try {
          const res = await callUser(this.env, user, "applyConversation", update);
          if (!res.ok) throw new Error(res.message);
          this.sql.run("DELETE FROM outbox WHERE user_id = ? AND version <= ?", user, update.version);
        } catch (err) {
          failures++;
          const backoff = Math.min(LIMITS.outboxMaxBackoffMs, 100 * 2 ** attempts) * (0.5 + Math.random() / 2);
          this.sql.run("UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE user_id = ?", Date.now() + backoff, user);
          log("outbox_poke_failed", { conversation: this.#meta?.id, user, attempts: attempts + 1, error: String(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIMITS.outboxConcurrency, due.length) }, worker));
    return failures;
  }

  // ---- reads of derived state ----

  #ready(): Result<Meta> {
    this.ready();
    return this.#meta ? ok(this.#meta) : fail("not_found", "no such conversation");
  }

  #member(user: string): MemberRow | undefined {
    return this.sql.first<MemberRow>("SELECT * FROM members WHERE user_id = ?", user);
  }

  #isActive(user: string): boolean {
    return this.#member(user)?.active === 1;
  }

  #notMember(user: string): Failure {
    return fail("forbidden", `${user} is not a member of this conversation`);
  }

  #intervals(user: string): Range[] {
    const head = this.#meta!.head_seq;
    return this.sql
      .all<{ from_seq: number; to_seq: number | null }>("SELECT from_seq, to_seq FROM intervals WHERE user_id = ? ORDER BY from_seq", user)
      .map((r) => ({ from: r.from_seq, to: r.to_seq ?? head }));
  }

  #visibleHead(user: string, intervals: readonly Range[] = this.#intervals(user)): number {
    return intervals.reduce((max, r) => Math.max(max, r.to), 0);
  }

  #indexUpdate(user: string): IndexUpdate {
    const meta = this.#meta!;
    const member = this.#member(user);
    const head = this.#visibleHead(user);
    const last = this.sql.first<{ created_at: number; sender_user: string; sender_device: string }>(
      "SELECT created_at, sender_user, sender_device FROM entries WHERE seq = ?", head,
    );
    return {
      user,
      conversation_id: meta.id,
      epoch: meta.epoch,
      head_seq: head,
      floor_seq: meta.floor_seq,
      read: member?.read_seq ?? 0,
      unread: member?.unread ?? 0,
      membership: member?.active === 1 ? "member" : "left",
      last_activity_at: last?.created_at ?? null,
      version: meta.version,
      last_sender: last ? { user: last.sender_user, device: last.sender_device } : null,
    };
  }

  #summary(): ConversationSummary {
    const meta = this.#meta!;
    const members = this.sql.all<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1 ORDER BY user_id").map((r) => r.user_id);
    const retention: RetentionPolicy = {};
    if (meta.max_age_seconds !== null) retention.max_age_seconds = meta.max_age_seconds;
    if (meta.max_messages !== null) retention.max_messages = meta.max_messages;
    return {
      id: meta.id,
      epoch: meta.epoch,
      head_seq: meta.head_seq,
      floor_seq: meta.floor_seq,
      members,
      retention,
      created_at: iso(meta.created_at),
    };
  }
}

function failureResponse(f: Failure): Response {
  return errorResponse(f.code, f.message, {
    ...(f.epoch !== undefined ? { epoch: f.epoch } : {}),
    ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}),
  });
}

function errorFrame(code: ErrorFrame["code"], message: string, clientMsgId?: string): ErrorFrame {
  return { type: "error", code, message, ...(clientMsgId !== undefined ? { client_msg_id: clientMsgId } : {}) };
}

function firstIssue(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const issue = issues[0];
  return issue ? `${issue.path.map(String).join(".") || "frame"}: ${issue.message}` : "invalid frame";
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function toMessage(row: EntryRow): Message {
  return {
    seq: row.seq,
    msg_id: row.msg_id,
    type: row.type,
    sender: { user: row.sender_user, device: row.sender_device },
    client_msg_id: row.client_msg_id,
    body: JSON.parse(row.body) as unknown,
    created_at: iso(row.created_at),
    ...(row.attachments !== null ? { attachments: JSON.parse(row.attachments) as Attachment[] } : {}),
  };
}
