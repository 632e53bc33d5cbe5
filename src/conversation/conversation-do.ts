/**
 * ConversationDO: one per conversation. Owns the seq counter, the SQLite log,
 * membership history, the read mirror with exact unread counts, and the outbox
 * that tells each member's UserDO about new entries.
 */
import { DurableObject } from "cloudflare:workers";
import { IttyRouter } from "itty-router";
import type { Env } from "../env";
import { fail, ok, type Failure, type Result } from "../protocol/errors";
import { CLOSE_NOT_MEMBER, type ErrorFrame, type HelloFrame, type MessageFrame } from "../protocol/frames";
import { ackFrameSchema, sendMessageSchema } from "../protocol/schemas";
import type { CursorCheck, IndexUpdate, PageParams } from "../protocol/internal";
import { LIMITS } from "../protocol/limits";
import type {
  ConversationSummary,
  MemberChangeBody,
  Message,
  MessagePage,
  RetentionPolicy,
  SendResult,
  SenderRef,
} from "../protocol/types";
import { SchemaGate } from "../storage/init";
import { Sql } from "../storage/sql";
import { log } from "../observability/log";
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
} from "../realtime/sockets";
import { CATCH_UP_PAGE, catchUpFrames, type LiveIdentity } from "./live";
import { planBackward, planForward, visibleRanges, type Range } from "./paging";
import { CONVERSATION_MIGRATIONS } from "./schema";

interface Meta {
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
};

type MemberRow = { user_id: string; active: number; read_seq: number; unread: number };

export interface CreateInput {
  id: string;
  creator: SenderRef;
  members: string[];
  retention?: RetentionPolicy;
}

export class ConversationDO extends DurableObject<Env> {
  readonly #sql: Sql;
  readonly #gate: SchemaGate;
  /** Cached copy of the `conversation` row; storage is the truth and rebuilds it on wake. */
  #meta: Meta | null = null;
  #draining: Promise<void> = Promise.resolve();
  readonly #router = IttyRouter().get("/live", (req) => this.#openLive(req));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    // Answered by the runtime without waking a hibernating object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    this.#sql = new Sql(ctx.storage);
    this.#gate = new SchemaGate(ctx, CONVERSATION_MIGRATIONS, () => {
      this.#meta = this.#sql.first<Meta & Record<string, SqlStorageValue>>("SELECT * FROM conversation") ?? null;
    });
  }

  // ---- RPC surface (called by the Worker) ----

  async create(input: CreateInput): Promise<Result<ConversationSummary>> {
    this.#gate.check();
    if (this.#meta) return fail("conflict", `conversation ${input.id} already exists`);
    const members = [...new Set([input.creator.user, ...input.members])];
    if (members.length > LIMITS.maxMembers) return fail("invalid_request", `at most ${LIMITS.maxMembers} members`);
    const now = Date.now();
    const meta: Meta = {
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
      this.#sql.run(
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
    const active = new Set(this.#sql.all<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1").map((r) => r.user_id));
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

  async send(sender: SenderRef, clientMsgId: string, bodyJson: string): Promise<Result<SendResult>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const existing = this.#sql.first<EntryRow>(
      "SELECT * FROM entries WHERE sender_user = ? AND sender_device = ? AND client_msg_id = ?",
      sender.user, sender.device, clientMsgId,
    );
    if (existing) {
      return ok({ seq: existing.seq, msg_id: existing.msg_id, created_at: iso(existing.created_at), duplicate: true });
    }
    if (!this.#isActive(sender.user)) return this.#notMember(sender.user);
    const now = Date.now();
    const row = this.ctx.storage.transactionSync(() => this.#append("message", sender, clientMsgId, bodyJson, now));
    // Replies and socket frames leave only after the write above is durable (output gate).
    this.#broadcast(row, []);
    await this.#scheduleDrain(LIMITS.outboxCoalesceMs);
    return ok({ seq: row.seq, msg_id: row.msg_id, created_at: iso(row.created_at), duplicate: false });
  }

  async page(user: string, params: PageParams): Promise<Result<MessagePage>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const meta = ready.value;
    if (params.epoch !== undefined && params.epoch !== meta.epoch) {
      return fail("epoch_mismatch", "the conversation's epoch changed; reset local state", { epoch: meta.epoch });
    }
    const intervals = this.#intervals(user);
    if (intervals.length === 0) return this.#notMember(user);
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
    const messages = this.#readPieces(plan.pieces);
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
  async cursor(user: string, received: number | null, read: number | null, apply: boolean): Promise<Result<CursorCheck>> {
    const ready = this.#ready();
    if (!ready.ok) return ready;
    const intervals = this.#intervals(user);
    if (intervals.length === 0) return this.#notMember(user);
    const visibleHead = this.#visibleHead(user, intervals);
    if (apply && read !== null) {
      const member = this.#member(user);
      const target = Math.min(read, visibleHead);
      if (member && target > member.read_seq) {
        this.ctx.storage.transactionSync(() => {
          this.#sql.run("UPDATE members SET read_seq = ?, unread = ? WHERE user_id = ?", target, this.#countUnread(user, target), user);
          const version = this.#bumpVersion();
          this.#enqueuePoke([user], version, Date.now());
        });
        await this.#scheduleDrain(LIMITS.outboxCoalesceMs);
      }
    }
    return ok({
      update: this.#indexUpdate(user),
      received: received === null ? null : Math.min(received, visibleHead),
    });
  }

  /** Drains the outbox: one poke per pending member, retried with backoff until confirmed. */
  override async alarm(): Promise<void> {
    this.#gate.check();
    await this.#drainNow();
  }

  // ---- live sockets ----

  override async fetch(request: Request): Promise<Response> {
    this.#gate.check();
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

    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [`u:${user}`]);
    const identity: LiveIdentity = { v: 1, user, device, live: false };
    server.serializeAttachment(identity);
    const hello: HelloFrame = { type: "hello", conversation_id: meta.id, epoch: meta.epoch, head_seq: meta.head_seq, floor_seq: meta.floor_seq };
    sendFrame(server, hello);
    const ranges = visibleRanges(this.#intervals(user), meta.floor_seq, meta.head_seq);
    for (let pos = after; ; ) {
      const plan = planForward(ranges, meta.floor_seq, meta.head_seq, pos, CATCH_UP_PAGE);
      for (const frame of catchUpFrames(this.#readPieces(plan.pieces), plan.gaps, !plan.hasMore)) sendFrame(server, frame);
      if (!plan.hasMore) break;
      pos = plan.boundary;
    }
    server.serializeAttachment({ ...identity, live: true } satisfies LiveIdentity);
    sendFrame(server, { type: "live" });
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.#gate.check();
    const who = identityOf<LiveIdentity>(ws);
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
      const res = await this.send({ user: who.user, device: who.device }, parsed.data.client_msg_id, bodyJson);
      if (!res.ok) return void sendFrame(ws, errorFrame(res.code, res.message, clientMsgId));
      sendFrame(ws, { type: "sent", client_msg_id: parsed.data.client_msg_id, seq: res.value.seq, duplicate: res.value.duplicate });
      return;
    }
    if (frame.type === "ack") {
      const parsed = ackFrameSchema.safeParse(frame);
      if (!parsed.success) return void sendFrame(ws, errorFrame("invalid_request", firstIssue(parsed.error.issues)));
      const check = await this.cursor(who.user, parsed.data.seq, null, false);
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
    log("live_socket_error", { conversation: this.#meta?.id, user: identityOf<LiveIdentity>(ws)?.user, error: String(error) });
  }

  /**
   * Sends a committed entry once to every live socket. Users removed by this
   * entry get it (it is their leave seq) and then their sockets close.
   */
  #broadcast(row: EntryRow, removed: readonly string[]): void {
    const sockets = openSockets(this.ctx);
    if (sockets.length === 0) return;
    const frame = JSON.stringify({ type: "message", message: toMessage(row) } satisfies MessageFrame);
    for (const ws of sockets) {
      if (identityOf<LiveIdentity>(ws)?.live) sendFrame(ws, frame);
    }
    for (const user of removed) {
      for (const ws of this.ctx.getWebSockets(`u:${user}`)) closeSocket(ws, CLOSE_NOT_MEMBER, "no longer a member");
    }
  }

  #readPieces(pieces: readonly Range[]): Message[] {
    const messages: Message[] = [];
    for (const piece of pieces) {
      for (const row of this.#sql.all<EntryRow>("SELECT * FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq", piece.from, piece.to)) {
        messages.push(toMessage(row));
      }
    }
    return messages;
  }

  // ---- log and membership ----

  #append(type: "message" | "member", sender: SenderRef, clientMsgId: string | null, bodyJson: string, now: number): EntryRow {
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
    };
    this.#sql.run(
      `INSERT INTO entries (seq, msg_id, type, sender_user, sender_device, client_msg_id, body, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      row.seq, row.msg_id, row.type, row.sender_user, row.sender_device, row.client_msg_id, row.body, row.created_at,
    );
    if (type === "message") {
      this.#sql.run("UPDATE members SET unread = unread + 1 WHERE active = 1 AND user_id != ?", sender.user);
    }
    meta.head_seq = row.seq;
    this.#sql.run("UPDATE conversation SET head_seq = ? WHERE singleton = 1", row.seq);
    const version = this.#bumpVersion();
    this.#sql.run(
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
      this.#sql.run("UPDATE intervals SET to_seq = ? WHERE user_id = ? AND to_seq IS NULL", row.seq, user);
      this.#sql.run("UPDATE members SET active = 0 WHERE user_id = ?", user);
    }
    for (const user of change.added) {
      this.#sql.run("INSERT INTO intervals (user_id, from_seq, to_seq) VALUES (?, ?, NULL)", user, row.seq);
      this.#sql.run(
        `INSERT INTO members (user_id, active, read_seq, unread) VALUES (?, 1, 0, 0)
         ON CONFLICT (user_id) DO UPDATE SET active = 1`,
        user,
      );
      const member = this.#member(user)!;
      this.#sql.run("UPDATE members SET unread = ? WHERE user_id = ?", this.#countUnread(user, member.read_seq), user);
    }
    // Added users are active now and were covered by #append's outbox insert only if already members.
    this.#enqueuePoke([...change.added, ...change.removed], this.#meta!.version, now);
    return row;
  }

  #countUnread(user: string, read: number): number {
    return this.#sql.one<{ n: number }>(
      `SELECT count(*) AS n FROM entries e JOIN intervals i
         ON i.user_id = ? AND e.seq >= i.from_seq AND (i.to_seq IS NULL OR e.seq <= i.to_seq)
       WHERE e.seq > ? AND e.type = 'message' AND e.sender_user != ?`,
      user, read, user,
    ).n;
  }

  #bumpVersion(): number {
    const meta = this.#meta!;
    meta.version += 1;
    this.#sql.run("UPDATE conversation SET version = ? WHERE singleton = 1", meta.version);
    return meta.version;
  }

  #enqueuePoke(users: readonly string[], version: number, now: number): void {
    for (const user of users) {
      this.#sql.run(
        `INSERT INTO outbox (user_id, version, first_at) VALUES (?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET version = excluded.version`,
        user, version, now,
      );
    }
  }

  // ---- outbox ----

  async #scheduleDrain(delayMs: number): Promise<void> {
    const due = Date.now() + delayMs;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > due) await this.ctx.storage.setAlarm(due);
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
      const due = this.#sql.all<{ user_id: string; attempts: number }>(
        "SELECT user_id, attempts FROM outbox WHERE next_at <= ? ORDER BY next_at LIMIT ?",
        now, LIMITS.outboxBatch,
      );
      if (due.length === 0) break;
      const failures = await this.#pokeAll(due);
      if (failures === due.length) break; // everything failed: wait for the backoff, not a hot loop
    }
    const next = this.#sql.first<{ at: number | null }>("SELECT min(next_at) AS at FROM outbox");
    if (next?.at != null) await this.ctx.storage.setAlarm(Math.max(next.at, Date.now()));
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
          this.#sql.run("DELETE FROM outbox WHERE user_id = ? AND version <= ?", user, update.version);
        } catch (err) {
          failures++;
          const backoff = Math.min(LIMITS.outboxMaxBackoffMs, 100 * 2 ** attempts) * (0.5 + Math.random() / 2);
          this.#sql.run("UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE user_id = ?", Date.now() + backoff, user);
          log("outbox_poke_failed", { conversation: this.#meta?.id, user, attempts: attempts + 1, error: String(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIMITS.outboxConcurrency, due.length) }, worker));
    return failures;
  }

  // ---- reads of derived state ----

  #ready(): Result<Meta> {
    this.#gate.check();
    return this.#meta ? ok(this.#meta) : fail("not_found", "no such conversation");
  }

  #member(user: string): MemberRow | undefined {
    return this.#sql.first<MemberRow>("SELECT * FROM members WHERE user_id = ?", user);
  }

  #isActive(user: string): boolean {
    return this.#member(user)?.active === 1;
  }

  #notMember(user: string): Failure {
    return fail("forbidden", `${user} is not a member of this conversation`);
  }

  #intervals(user: string): Range[] {
    const head = this.#meta!.head_seq;
    return this.#sql
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
    const last = this.#sql.first<{ created_at: number; sender_user: string; sender_device: string }>(
      "SELECT created_at, sender_user, sender_device FROM entries WHERE seq = ?", head,
    );
    return {
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
    const members = this.#sql.all<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1 ORDER BY user_id").map((r) => r.user_id);
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
  };
}
