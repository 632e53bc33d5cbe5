/**
 * UserDO: one per user. Devices and push targets, the conversation index behind
 * sync checkpoints, per-device `received` cursors, and the per-device queue.
 * Everything here is a projection of ConversationDOs or device-addressed data;
 * the message log itself lives only in the conversations.
 */
import { IttyRouter } from "itty-router";
import type { Env } from "../env";
import { fail, ok, type Result } from "../protocol/errors";
import type { InboxHelloFrame, InboxServerFrame, ToDeviceFrame } from "../protocol/frames";
import type { CursorCheck, IndexUpdate } from "../protocol/internal";
import { LIMITS } from "../protocol/limits";
import type {
  Attachment,
  CursorsResponse,
  DeviceInfo,
  PushTarget,
  SenderRef,
  SyncConversation,
  SyncResponse,
  ToDevicePage,
} from "../protocol/types";
import { envNumber, RowBudget, shedRetryAfter } from "../storage/admission";
import { SqlDurableObject } from "../storage/sql-object";
import { USER_MIGRATIONS } from "./schema";
import { errorResponse } from "../worker/errors";
import { log } from "../observability/log";
import { metrics } from "../observability/metrics";
import {
  IDENTITY_HEADERS,
  identityOf,
  openSockets,
  reciprocateClose,
  sendFrame,
  type SocketIdentity,
} from "../realtime/sockets";
import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint";
import { pushTuning, type PushTuning } from "../push/settings";
import type { PushTask } from "../push/types";
import { mediaKey } from "../media/keys";

type IndexRow = {
  conversation_id: string;
  epoch: string;
  head_seq: number;
  floor_seq: number;
  read_seq: number;
  unread: number;
  membership: "member" | "left";
  last_activity_at: number | null;
  version: number;
  change_pos: number;
};

type DeviceRow = {
  device_id: string;
  push_json: string | null;
  last_seen_at: number;
  dropped: number;
};

type QueueRow = { id: number; from_user: string; from_device: string; body: string; created_at: number };

export interface ToDeviceInput {
  from: SenderRef;
  /** The user this object belongs to; the Worker names it. */
  to: string;
  device?: string;
  clientMsgId: string;
  bodyJson: string;
  /** Conversations the sender is currently a member of (for the "shares a conversation" rule). */
  senderConversations: string[];
}

export interface UserStats {
  conversations: number;
  checkpoint: number;
  pokes: number;
  pushes_enqueued: number;
  pushes_converted: number;
  devices: {
    device_id: string;
    online: boolean;
    push_provider: string | null;
    backlog_entries: number;
    /** Lower bound: age of the newest activity in the stalest conversation this device is behind in. */
    oldest_undelivered_seconds: number;
    queue_entries: number;
    queue_dropped: number;
    last_seen_at: string;
    last_push_at: string | null;
  }[];
}

export interface CursorInput {
  conversation_id: string;
  check: CursorCheck;
}

export class UserDO extends SqlDurableObject {
  readonly #tuning: PushTuning;
  readonly #syncBudget: RowBudget;
  readonly #router = IttyRouter().get("/inbox", (req) => this.#openInbox(req));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, USER_MIGRATIONS);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    this.#tuning = pushTuning(env);
    this.#syncBudget = new RowBudget(envNumber(env.ADMISSION_SYNC_ROWS_PER_SECOND, 200_000));
  }

  // ---- devices ----

  async registerDevice(user: string, device: string, push: PushTarget | null): Promise<Result<DeviceInfo>> {
    this.ready();
    this.#touch(device);
    this.sql.run(
      "UPDATE devices SET push_provider = ?, push_token = ?, push_json = ? WHERE device_id = ?",
      push?.provider ?? null, push?.token ?? null, push ? JSON.stringify(push) : null, device,
    );
    return ok({ user_id: user, device_id: device, push });
  }

  async deleteDevice(device: string): Promise<Result<null>> {
    this.ready();
    if (!this.#device(device)) return fail("not_found", `no device ${device}`);
    this.ctx.storage.transactionSync(() => this.#dropDevice(device));
    return ok(null);
  }

  // ---- conversation index ----

  /** A poke from a ConversationDO. Idempotent and order-insensitive by `version`. */
  async applyConversation(update: IndexUpdate): Promise<Result<null>> {
    this.ready();
    const frames = this.ctx.storage.transactionSync(() => {
      this.sql.run("UPDATE user_meta SET pokes = pokes + 1, user_id = coalesce(user_id, ?)", update.user);
      return this.#applyUpdate(update);
    });
    this.#notify(frames, null);
    if (frames.some((f) => f.type === "poke")) await this.#considerPush(update);
    return ok(null);
  }

  async sync(device: string, since: string | undefined, limit: number): Promise<Result<SyncResponse>> {
    this.ready();
    const position = this.#position();
    const from = since === undefined ? 0 : decodeCheckpoint(since);
    if (from === null || from > position) return fail("invalid_request", "unknown or malformed checkpoint");
    // Summaries are cheap (one index row each), so their budget is far larger than history's.
    const admitted = this.#syncBudget.take(limit);
    if (!admitted.ok) return fail("overloaded", "sync is being shed; retry later", { retryAfter: shedRetryAfter(admitted.retryAfterMs) });
    this.#touch(device);
    this.#deviceCaughtUp(device, true);
    const rows = this.sql.all<IndexRow & { received: number | null }>(
      `SELECT c.*, r.seq AS received FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.change_pos > ? ORDER BY c.change_pos LIMIT ?`,
      device, from, limit + 1,
    );
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit);
    const conversations: SyncConversation[] = page.map((r) => ({
      id: r.conversation_id,
      epoch: r.epoch,
      head_seq: r.head_seq,
      floor_seq: r.floor_seq,
      received: r.received ?? 0,
      read: r.read_seq,
      unread: r.unread,
      last_activity_at: r.last_activity_at === null ? null : new Date(r.last_activity_at).toISOString(),
      membership: r.membership,
    }));
    const checkpoint = hasMore ? page[page.length - 1]!.change_pos : position;
    metrics.observe(this.env, "device_backlog_entries", this.#backlog(device));
    this.#flushMetrics();
    return ok({ checkpoint: encodeCheckpoint(checkpoint), has_more: hasMore, conversations });
  }

  /** Conversations this user is a current member of, per the index. */
  async memberConversations(): Promise<string[]> {
    this.ready();
    return this.sql
      .all<{ conversation_id: string }>("SELECT conversation_id FROM conversations WHERE membership = 'member'")
      .map((r) => r.conversation_id);
  }

  /**
   * Applies cursors already validated and clamped by each ConversationDO:
   * `received` per device and `read` per user, both only forward.
   */
  async applyCursors(device: string, inputs: CursorInput[], receivedNamed: string[], readNamed: string[]): Promise<Result<CursorsResponse>> {
    this.ready();
    this.#touch(device);
    const out: CursorsResponse = { received: {}, read: {} };
    const frames: InboxServerFrame[] = [];
    this.ctx.storage.transactionSync(() => {
      for (const { conversation_id: conv, check } of inputs) {
        frames.push(...this.#applyUpdate(check.update));
        if (check.received !== null) {
          const before = this.sql.first<{ seq: number }>(
            "SELECT seq FROM received WHERE device_id = ? AND conversation_id = ?", device, conv,
          )?.seq ?? 0;
          metrics.count(this.env, "cursor_advanced_entries_total", Math.max(0, check.received - before));
          this.sql.run(
            `INSERT INTO received (device_id, conversation_id, seq) VALUES (?, ?, ?)
             ON CONFLICT (device_id, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)`,
            device, conv, check.received,
          );
        }
      }
      // Object.fromEntries makes own properties, so an id like "__proto__" survives.
      out.received = Object.fromEntries(
        receivedNamed.map((conv) => [
          conv,
          this.sql.first<{ seq: number }>("SELECT seq FROM received WHERE device_id = ? AND conversation_id = ?", device, conv)?.seq ?? 0,
        ]),
      );
      out.read = Object.fromEntries(
        readNamed.map((conv) => [
          conv,
          this.sql.first<{ read_seq: number }>("SELECT read_seq FROM conversations WHERE conversation_id = ?", conv)?.read_seq ?? 0,
        ]),
      );
    });
    this.#notify(frames, device);
    this.#flushMetrics();
    return ok(out);
  }

  /** Operator view of this user (admin API): backlog and push state per device. */
  async stats(): Promise<UserStats> {
    this.ready();
    const meta = this.sql.one<{ change_pos: number; pokes: number; pushes_enqueued: number; pushes_converted: number }>(
      "SELECT change_pos, pokes, pushes_enqueued, pushes_converted FROM user_meta",
    );
    const devices = this.sql.all<{ device_id: string; push_provider: string | null; last_seen_at: number; last_push_at: number | null; dropped: number }>(
      "SELECT device_id, push_provider, last_seen_at, last_push_at, dropped FROM devices ORDER BY device_id",
    );
    const now = Date.now();
    return {
      conversations: this.sql.one<{ n: number }>("SELECT count(*) AS n FROM conversations").n,
      checkpoint: meta.change_pos,
      pokes: meta.pokes,
      pushes_enqueued: meta.pushes_enqueued,
      pushes_converted: meta.pushes_converted,
      devices: devices.map((d) => {
        const oldest = this.sql.one<{ at: number | null }>(
          `SELECT min(c.last_activity_at) AS at FROM conversations c
           LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
           WHERE c.membership = 'member' AND coalesce(r.seq, 0) < c.head_seq`,
          d.device_id,
        ).at;
        return {
          device_id: d.device_id,
          online: this.#isOnline(d.device_id),
          push_provider: d.push_provider,
          backlog_entries: this.#backlog(d.device_id),
          oldest_undelivered_seconds: oldest === null ? 0 : Math.max(0, (now - oldest) / 1000),
          queue_entries: this.#queueLength(d.device_id),
          queue_dropped: d.dropped,
          last_seen_at: new Date(d.last_seen_at).toISOString(),
          last_push_at: d.last_push_at === null ? null : new Date(d.last_push_at).toISOString(),
        };
      }),
    };
  }

  // ---- media (bytes in R2, metadata here) ----

  /** Reserves quota for an upload about to stream into R2. */
  async reserveMedia(mediaId: string, size: number, mime: string, preview: string | null, quota: number): Promise<Result<null>> {
    this.ready();
    const used = this.sql.one<{ n: number | null }>("SELECT sum(size) AS n FROM media").n ?? 0;
    if (used + size > quota) return fail("forbidden", `media quota exceeded (${used} of ${quota} bytes used)`);
    this.sql.run(
      "INSERT INTO media (media_id, size, mime, preview, status, created_at) VALUES (?, ?, ?, ?, 'uploading', ?)",
      mediaId, size, mime, preview, Date.now(),
    );
    this.ctx.waitUntil(this.#scheduleAlarm(Date.now() + LIMITS.mediaOrphanGraceMs));
    return ok(null);
  }

  async commitMedia(mediaId: string, sha256: string): Promise<void> {
    this.ready();
    this.sql.run("UPDATE media SET sha256 = ?, status = 'stored' WHERE media_id = ?", sha256, mediaId);
  }

  async abortMedia(mediaId: string): Promise<void> {
    this.ready();
    this.sql.run("DELETE FROM media WHERE media_id = ?", mediaId);
  }

  /**
   * Checks that this user owns every media id and its upload finished, and records
   * that `conversation` references them (before the send, so no sweep can race it).
   */
  async attachMedia(mediaIds: string[], conversation: string): Promise<Result<Attachment[]>> {
    this.ready();
    const out: Attachment[] = [];
    for (const mediaId of mediaIds) {
      const m = this.sql.first<{ size: number; mime: string; sha256: string | null; preview: string | null; status: string }>(
        "SELECT size, mime, sha256, preview, status FROM media WHERE media_id = ?", mediaId,
      );
      if (!m || m.status !== "stored" || m.sha256 === null) return fail("invalid_request", `attachments: no uploaded media ${mediaId} of yours`);
      out.push({ media_id: mediaId, size: m.size, mime: m.mime, sha256: m.sha256, ...(m.preview !== null ? { preview: m.preview } : {}) });
    }
    this.ctx.storage.transactionSync(() => {
      for (const mediaId of mediaIds) {
        this.sql.run("INSERT OR IGNORE INTO media_refs (media_id, conversation_id) VALUES (?, ?)", mediaId, conversation);
      }
    });
    return ok(out);
  }

  /** Metadata and the conversations that may reference it (download checks ask them). */
  async mediaInfo(mediaId: string): Promise<{ attachment: Attachment; conversations: string[] } | null> {
    this.ready();
    const m = this.sql.first<{ size: number; mime: string; sha256: string | null; preview: string | null }>(
      "SELECT size, mime, sha256, preview FROM media WHERE media_id = ? AND status = 'stored'", mediaId,
    );
    if (!m || m.sha256 === null) return null;
    const conversations = this.sql
      .all<{ conversation_id: string }>("SELECT conversation_id FROM media_refs WHERE media_id = ?", mediaId)
      .map((r) => r.conversation_id);
    return { attachment: { media_id: mediaId, size: m.size, mime: m.mime, sha256: m.sha256, ...(m.preview !== null ? { preview: m.preview } : {}) }, conversations };
  }

  /** A conversation's retention removed its last entry referencing the media; the last reference deletes the bytes. */
  async releaseMedia(mediaId: string, conversation: string): Promise<Result<null>> {
    this.ready();
    this.sql.run("DELETE FROM media_refs WHERE media_id = ? AND conversation_id = ?", mediaId, conversation);
    const left = this.sql.one<{ n: number }>("SELECT count(*) AS n FROM media_refs WHERE media_id = ?", mediaId).n;
    if (left === 0) await this.#deleteMedia([mediaId]);
    return ok(null);
  }

  async #deleteMedia(mediaIds: string[]): Promise<void> {
    if (mediaIds.length === 0) return;
    await this.env.MEDIA.delete(mediaIds.map(mediaKey));
    this.ctx.storage.transactionSync(() => {
      for (const mediaId of mediaIds) this.sql.run("DELETE FROM media WHERE media_id = ?", mediaId);
      this.sql.run("UPDATE user_meta SET media_deleted = media_deleted + ?", mediaIds.length);
    });
    metrics.count(this.env, "media_deleted_total", mediaIds.length);
    log("media_deleted", { media: mediaIds });
  }

  /** Uploads never referenced (or never finished) within the grace period go, a bounded batch per run. */
  async #sweepMedia(now: number): Promise<number> {
    const cutoff = now - LIMITS.mediaOrphanGraceMs;
    const orphans = this.sql
      .all<{ media_id: string }>(
        `SELECT m.media_id FROM media m WHERE m.created_at < ?
           AND NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = m.media_id) LIMIT ?`,
        cutoff, LIMITS.mediaSweepBatch,
      )
      .map((r) => r.media_id);
    await this.#deleteMedia(orphans);
    const next = this.sql.one<{ at: number | null }>(
      `SELECT min(m.created_at) AS at FROM media m WHERE NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = m.media_id)`,
    ).at;
    if (orphans.length === LIMITS.mediaSweepBatch) return now;
    return next === null ? Infinity : next + LIMITS.mediaOrphanGraceMs;
  }

  // ---- push decisions ----

  /** A provider said this token is dead: forget it (only if it is still the registered one). */
  async removePushTarget(device: string, token: string): Promise<Result<null>> {
    this.ready();
    this.sql.run(
      "UPDATE devices SET push_provider = NULL, push_token = NULL, push_json = NULL WHERE device_id = ? AND push_token = ?",
      device, token,
    );
    return ok(null);
  }

  /**
   * A conversation advanced. Offline devices with a push target that are behind
   * get it queued for their next push, unless they were pushed for it within the
   * collapse window. The sender's own device is never pushed for its own entry.
   */
  async #considerPush(u: IndexUpdate): Promise<void> {
    if (u.membership !== "member" || u.unread === 0) return;
    const now = Date.now();
    const devices = this.sql.all<{ device_id: string; last_push_at: number | null; received: number | null; sent_at: number | null }>(
      `SELECT d.device_id, d.last_push_at, r.seq AS received, s.sent_at FROM devices d
       LEFT JOIN received r ON r.device_id = d.device_id AND r.conversation_id = ?
       LEFT JOIN push_sent s ON s.device_id = d.device_id AND s.conversation_id = ?
       WHERE d.push_provider IS NOT NULL`,
      u.conversation_id, u.conversation_id,
    );
    let due = Infinity;
    for (const d of devices) {
      if (this.#isOnline(d.device_id)) continue;
      if (u.last_sender && u.last_sender.user === u.user && u.last_sender.device === d.device_id) continue;
      if ((d.received ?? 0) >= u.head_seq) continue;
      if (d.sent_at !== null && now - d.sent_at < this.#tuning.collapseMs) continue;
      this.sql.run(
        `INSERT INTO push_pending (device_id, conversation_id, head_seq, unread, first_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (device_id, conversation_id) DO UPDATE SET head_seq = excluded.head_seq, unread = excluded.unread, updated_at = excluded.updated_at`,
        d.device_id, u.conversation_id, u.head_seq, u.unread, now, now,
      );
      due = Math.min(due, this.#pushDueAt(d.device_id, d.last_push_at));
    }
    if (due !== Infinity) await this.#scheduleAlarm(due);
  }

  #pushDueAt(device: string, lastPushAt: number | null): number {
    const { first } = this.sql.one<{ first: number | null }>("SELECT min(first_at) AS first FROM push_pending WHERE device_id = ?", device);
    return Math.max((first ?? Date.now()) + this.#tuning.aggregateMs, (lastPushAt ?? 0) + this.#tuning.deviceMinIntervalMs);
  }

  async #scheduleAlarm(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /** Sends each device's due push: one queue task naming every pending conversation. */
  override async alarm(): Promise<void> {
    this.ready();
    const now = Date.now();
    const userId = this.sql.one<{ user_id: string | null }>("SELECT user_id FROM user_meta").user_id;
    let next = Infinity;
    for (const { device_id: device } of this.sql.all<{ device_id: string }>("SELECT DISTINCT device_id FROM push_pending")) {
      const d = this.sql.first<{ push_json: string | null; last_push_at: number | null }>(
        "SELECT push_json, last_push_at FROM devices WHERE device_id = ?", device,
      );
      if (!d?.push_json || userId === null || this.#isOnline(device)) {
        this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
        continue;
      }
      const dueAt = this.#pushDueAt(device, d.last_push_at);
      if (dueAt > now) {
        next = Math.min(next, dueAt);
        continue;
      }
      const pending = this.sql.all<{ conversation_id: string; head_seq: number; unread: number }>(
        `SELECT p.conversation_id, p.head_seq, c.unread FROM push_pending p
         JOIN conversations c ON c.conversation_id = p.conversation_id
         LEFT JOIN received r ON r.device_id = p.device_id AND r.conversation_id = p.conversation_id
         WHERE p.device_id = ? AND coalesce(r.seq, 0) < c.head_seq AND c.unread > 0
         ORDER BY p.updated_at DESC`,
        device,
      );
      if (pending.length > 0) {
        const newest = pending[0]!;
        const task: PushTask = {
          user_id: userId,
          device_id: device,
          target: JSON.parse(d.push_json) as PushTarget,
          conversation_id: newest.conversation_id,
          head_seq: newest.head_seq,
          unread: pending.reduce((sum, p) => sum + p.unread, 0),
          conversations: pending.map((p) => ({ id: p.conversation_id, head_seq: p.head_seq, unread: p.unread })),
          created_at: now,
        };
        await this.env.PUSH_QUEUE.send(task);
        metrics.count(this.env, "push_sent_total", 1, { provider: task.target.provider });
      }
      this.ctx.storage.transactionSync(() => {
        for (const p of pending) {
          this.sql.run(
            `INSERT INTO push_sent (device_id, conversation_id, sent_at) VALUES (?, ?, ?)
             ON CONFLICT (device_id, conversation_id) DO UPDATE SET sent_at = excluded.sent_at`,
            device, p.conversation_id, now,
          );
        }
        if (pending.length > 0) {
          this.sql.run("UPDATE devices SET last_push_at = ?, pushed_since_sync = 1 WHERE device_id = ?", now, device);
          this.sql.run("UPDATE user_meta SET pushes_enqueued = pushes_enqueued + 1");
        }
        this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
      });
    }
    next = Math.min(next, this.#expireDevices(now), await this.#sweepMedia(now));
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
    this.#flushMetrics();
  }

  get #deviceTtlMs(): number {
    return envNumber(this.env.DEVICE_TTL_DAYS, 90) * 86_400_000;
  }

  /**
   * Devices unseen for DEVICE_TTL_DAYS go with their cursors, queue and push
   * target (a returning device starts over and resyncs). Returns when the next
   * device would expire.
   */
  #expireDevices(now: number): number {
    const ttl = this.#deviceTtlMs;
    const stale = this.sql.all<{ device_id: string }>("SELECT device_id FROM devices WHERE last_seen_at < ?", now - ttl);
    if (stale.length > 0) {
      this.ctx.storage.transactionSync(() => {
        for (const { device_id } of stale) this.#dropDevice(device_id);
      });
      log("devices_expired", { devices: stale.map((d) => d.device_id) });
    }
    const oldest = this.sql.one<{ at: number | null }>("SELECT min(last_seen_at) AS at FROM devices").at;
    return oldest === null ? Infinity : oldest + ttl;
  }

  #flushMetrics(): void {
    const pending = metrics.flush(this.env);
    if (pending) this.ctx.waitUntil(pending);
  }

  /**
   * The device is back (it synced, or opened its inbox): its collapse windows
   * reset, and a sync after a push counts as a push-to-sync conversion.
   */
  #deviceCaughtUp(device: string, synced: boolean): void {
    this.ctx.storage.transactionSync(() => {
      if (synced && this.sql.run("UPDATE devices SET pushed_since_sync = 0 WHERE device_id = ? AND pushed_since_sync = 1", device) > 0) {
        this.sql.run("UPDATE user_meta SET pushes_converted = pushes_converted + 1");
        metrics.count(this.env, "push_converted_total");
      }
      this.sql.run("DELETE FROM push_sent WHERE device_id = ?", device);
      this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
    });
  }

  #isOnline(device: string): boolean {
    return openSockets(this.ctx, `d:${device}`).length > 0;
  }

  // ---- per-device queue ----

  async enqueueToDevice(input: ToDeviceInput): Promise<Result<{ queued: number; duplicate: boolean }>> {
    this.ready();
    const now = Date.now();
    this.#expireQueue(now);
    if (input.from.user !== input.to && !this.#sharesConversation(input.senderConversations)) {
      return fail("forbidden", `you share no conversation with ${input.to}`);
    }
    const prior = this.sql.first<{ queued: number }>(
      "SELECT queued FROM queue_sends WHERE from_user = ? AND from_device = ? AND client_msg_id = ?",
      input.from.user, input.from.device, input.clientMsgId,
    );
    if (prior) return ok({ queued: prior.queued, duplicate: true });
    let targets: string[];
    if (input.device !== undefined) {
      if (!this.#device(input.device)) return fail("not_found", `${input.to} has no device ${input.device}`);
      targets = [input.device];
    } else {
      targets = this.sql
        .all<{ device_id: string }>("SELECT device_id FROM devices ORDER BY device_id")
        .map((r) => r.device_id)
        .filter((d) => !(input.from.user === input.to && d === input.from.device));
    }
    this.ctx.storage.transactionSync(() => {
      for (const device of targets) {
        const { id } = this.sql.one<{ id: number }>(
          "UPDATE user_meta SET queue_seq = queue_seq + 1 RETURNING queue_seq AS id",
        );
        this.sql.run(
          "INSERT INTO queue (device_id, id, from_user, from_device, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
          device, id, input.from.user, input.from.device, input.bodyJson, now,
        );
        this.#capQueue(device);
      }
      this.sql.run(
        "INSERT INTO queue_sends (from_user, from_device, client_msg_id, queued, created_at) VALUES (?, ?, ?, ?, ?)",
        input.from.user, input.from.device, input.clientMsgId, targets.length, now,
      );
    });
    // Wake the addressed devices that are online: they fetch GET /v1/to-device.
    for (const device of targets) {
      const frame: ToDeviceFrame = { type: "to_device", pending: this.#queueLength(device) };
      for (const ws of openSockets(this.ctx, `d:${device}`)) sendFrame(ws, frame);
    }
    return ok({ queued: targets.length, duplicate: false });
  }

  async listToDevice(device: string, limit: number): Promise<Result<ToDevicePage>> {
    this.ready();
    this.#expireQueue(Date.now());
    this.#touch(device);
    const rows = this.sql.all<QueueRow>(
      "SELECT id, from_user, from_device, body, created_at FROM queue WHERE device_id = ? ORDER BY id LIMIT ?",
      device, limit + 1,
    );
    return ok({
      entries: rows.slice(0, limit).map((r) => ({
        id: r.id,
        from: { user: r.from_user, device: r.from_device },
        body: JSON.parse(r.body) as unknown,
        created_at: new Date(r.created_at).toISOString(),
      })),
      has_more: rows.length > limit,
      dropped: this.#device(device)?.dropped ?? 0,
    });
  }

  async ackToDevice(device: string, upTo: number): Promise<Result<{ remaining: number }>> {
    this.ready();
    this.#touch(device);
    this.sql.run("DELETE FROM queue WHERE device_id = ? AND id <= ?", device, upTo);
    return ok({ remaining: this.#queueLength(device) });
  }

  // ---- internals ----

  /** Entries this device is behind and can still get (above the floor), summed over the user's conversations. */
  #backlog(device: string): number {
    return this.sql.one<{ n: number | null }>(
      `SELECT sum(max(0, c.head_seq - max(coalesce(r.seq, 0), c.floor_seq))) AS n FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.membership = 'member'`,
      device,
    ).n ?? 0;
  }

  #position(): number {
    return this.sql.one<{ change_pos: number }>("SELECT change_pos FROM user_meta").change_pos;
  }

  /** Applies a newer view of a conversation; returns the inbox frames it implies. */
  #applyUpdate(u: IndexUpdate): InboxServerFrame[] {
    const row = this.sql.first<IndexRow>("SELECT * FROM conversations WHERE conversation_id = ?", u.conversation_id);
    if (row && row.version >= u.version && row.epoch === u.epoch) return [];
    const pos = this.sql.one<{ change_pos: number }>("UPDATE user_meta SET change_pos = change_pos + 1 RETURNING change_pos").change_pos;
    this.sql.run(
      `INSERT INTO conversations (conversation_id, epoch, head_seq, floor_seq, read_seq, unread, membership, last_activity_at, version, change_pos)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conversation_id) DO UPDATE SET epoch = excluded.epoch, head_seq = excluded.head_seq,
         floor_seq = excluded.floor_seq, read_seq = excluded.read_seq, unread = excluded.unread,
         membership = excluded.membership, last_activity_at = excluded.last_activity_at,
         version = excluded.version, change_pos = excluded.change_pos`,
      u.conversation_id, u.epoch, u.head_seq, u.floor_seq, u.read, u.unread, u.membership, u.last_activity_at, u.version, pos,
    );
    const frames: InboxServerFrame[] = [];
    const conversation_id = u.conversation_id;
    if (!row || u.head_seq > row.head_seq) {
      frames.push({ type: "poke", conversation_id, head_seq: u.head_seq, checkpoint: encodeCheckpoint(pos) });
    }
    if (row && u.read > row.read_seq) frames.push({ type: "read", conversation_id, read: u.read });
    if (!row || u.membership !== row.membership) frames.push({ type: "membership", conversation_id, membership: u.membership });
    return frames;
  }

  // ---- inbox sockets ----

  override async fetch(request: Request): Promise<Response> {
    this.ready();
    const res = (await this.#router.fetch(request)) as Response | undefined;
    return res ?? errorResponse("not_found", "no such route");
  }

  /** One inbox socket per device connection; an open one is what "online" means. */
  #openInbox(request: Request): Response {
    const user = request.headers.get(IDENTITY_HEADERS.user) ?? "";
    const device = request.headers.get(IDENTITY_HEADERS.device) ?? "";
    if (this.ctx.getWebSockets().length >= LIMITS.maxInboxSocketsPerUser) {
      return errorResponse("overloaded", "too many inbox sockets for this user", { retryAfter: 5 });
    }
    this.#touch(device);
    this.#deviceCaughtUp(device, false);
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server, [`d:${device}`]);
    server.serializeAttachment({ v: 1, user, device } satisfies SocketIdentity);
    const hello: InboxHelloFrame = { type: "hello", checkpoint: encodeCheckpoint(this.#position()) };
    sendFrame(server, hello);
    metrics.count(this.env, "socket_connects_total", 1, { socket: "inbox" });
    this.#flushMetrics();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    sendFrame(ws, { type: "error", code: "invalid_request", message: "the inbox socket takes no frames but ping" });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    reciprocateClose(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    log("inbox_socket_error", { device: identityOf(ws)?.device, error: String(error) });
  }

  /** Sends inbox frames; `read` frames skip the device that moved the cursor. */
  #notify(frames: readonly InboxServerFrame[], actingDevice: string | null): void {
    if (frames.length === 0) return;
    const sockets = openSockets(this.ctx);
    for (const frame of frames) {
      const text = JSON.stringify(frame);
      for (const ws of sockets) {
        if (frame.type === "read" && actingDevice !== null && identityOf(ws)?.device === actingDevice) continue;
        sendFrame(ws, text);
      }
    }
  }

  #sharesConversation(senderConversations: readonly string[]): boolean {
    for (let i = 0; i < senderConversations.length; i += 90) {
      const chunk = senderConversations.slice(i, i + 90);
      const hit = this.sql.first(
        `SELECT 1 AS hit FROM conversations WHERE membership = 'member' AND conversation_id IN (${chunk.map(() => "?").join(",")}) LIMIT 1`,
        ...chunk,
      );
      if (hit) return true;
    }
    return false;
  }

  #device(device: string): DeviceRow | undefined {
    return this.sql.first<DeviceRow>("SELECT device_id, push_json, last_seen_at, dropped FROM devices WHERE device_id = ?", device);
  }

  /** Registers a device on first sight and records activity; evicts the stalest device past the cap. */
  #touch(device: string): void {
    const now = Date.now();
    const updated = this.sql.run("UPDATE devices SET last_seen_at = ? WHERE device_id = ?", now, device);
    if (updated > 0) return;
    this.ctx.storage.transactionSync(() => {
      const { n } = this.sql.one<{ n: number }>("SELECT count(*) AS n FROM devices");
      if (n >= LIMITS.maxDevicesPerUser) {
        const stale = this.sql.one<{ device_id: string }>("SELECT device_id FROM devices ORDER BY last_seen_at LIMIT 1");
        this.#dropDevice(stale.device_id);
      }
      this.sql.run("INSERT INTO devices (device_id, created_at, last_seen_at) VALUES (?, ?, ?)", device, now, now);
    });
    // A new device may be the one that expires first: make sure the sweep is scheduled.
    this.ctx.waitUntil(this.#scheduleAlarm(now + this.#deviceTtlMs));
  }

  #dropDevice(device: string): void {
    this.sql.run("DELETE FROM devices WHERE device_id = ?", device);
    this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
    this.sql.run("DELETE FROM push_sent WHERE device_id = ?", device);
    this.sql.run("DELETE FROM received WHERE device_id = ?", device);
    this.sql.run("DELETE FROM queue WHERE device_id = ?", device);
  }

  #queueLength(device: string): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM queue WHERE device_id = ?", device).n;
  }

  /** Keeps at most `maxToDeviceEntries` per device: the oldest go, and are counted. */
  #capQueue(device: string): void {
    const excess = this.#queueLength(device) - LIMITS.maxToDeviceEntries;
    if (excess <= 0) return;
    this.sql.run(
      "DELETE FROM queue WHERE device_id = ? AND id IN (SELECT id FROM queue WHERE device_id = ? ORDER BY id LIMIT ?)",
      device, device, excess,
    );
    this.sql.run("UPDATE devices SET dropped = dropped + ? WHERE device_id = ?", excess, device);
  }

  /** Drops queue entries and send-dedupe keys older than the TTL; expired entries count as dropped. */
  #expireQueue(now: number): void {
    const cutoff = now - LIMITS.toDeviceTtlMs;
    const expired = this.sql.all<{ device_id: string; n: number }>(
      "SELECT device_id, count(*) AS n FROM queue WHERE created_at < ? GROUP BY device_id", cutoff,
    );
    if (expired.length === 0) {
      this.sql.run("DELETE FROM queue_sends WHERE created_at < ?", cutoff);
      return;
    }
    this.ctx.storage.transactionSync(() => {
      for (const { device_id, n } of expired) this.sql.run("UPDATE devices SET dropped = dropped + ? WHERE device_id = ?", n, device_id);
      this.sql.run("DELETE FROM queue WHERE created_at < ?", cutoff);
      this.sql.run("DELETE FROM queue_sends WHERE created_at < ?", cutoff);
    });
  }
}
