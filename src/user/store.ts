/**
 * Every SQL statement of the UserDO, with its row types
 * (migrations/user/*.sql). The modules around it hold the rules.
 */
import type { Sql } from "../platform/sql";
import type { ViewInterval } from "../protocol/internal";
import type { ConversationState } from "./conversation-state";

export type IndexRow = {
  conversation_id: string;
  epoch: string;
  tick: number;
  head_seq: number;
  head_m: number;
  head_s: number;
  floor_seq: number;
  floor_m: number;
  floor_s: number;
  read_seq: number;
  read_m: number;
  read_s: number;
  unread: number;
  membership: "member" | "left";
  member_seq: number;
  intervals: string;
  last_activity_at: number | null;
  last_sender_user: string | null;
  last_sender_device: string | null;
  change_pos: number;
  paced: number;
};

export type DeviceRow = {
  device_id: string;
  push_provider: string | null;
  push_token: string | null;
  push_json: string | null;
  last_seen_at: number;
  last_push_at: number | null;
  dropped: number;
};

export type QueueRow = { id: number; from_user: string; from_device: string; body: string; created_at: number };

export function stateOf(r: IndexRow): ConversationState {
  return {
    epoch: r.epoch,
    tick: r.tick,
    head: { seq: r.head_seq, counts: [r.head_m, r.head_s] },
    floor: { seq: r.floor_seq, counts: [r.floor_m, r.floor_s] },
    read: { seq: r.read_seq, counts: [r.read_m, r.read_s] },
    membership: r.membership,
    member_seq: r.member_seq,
    intervals: JSON.parse(r.intervals) as ViewInterval[],
    last_activity_at: r.last_activity_at,
    last_sender: r.last_sender_user !== null && r.last_sender_device !== null ? { user: r.last_sender_user, device: r.last_sender_device } : null,
    paced: r.paced === 1,
  };
}

export class UserStore {
  /** Whose index this is, once known (it never changes): kept after the first read that finds it. */
  #user: string | null = null;

  constructor(readonly sql: Sql) {}

  // ---- user_meta ----

  meta(): { pushes_enqueued: number; pushes_converted: number; media_deleted: number } {
    return this.sql.one("SELECT pushes_enqueued, pushes_converted, media_deleted FROM user_meta");
  }

  /** The user whose index this is; null until the first poke named it. */
  userId(): string | null {
    // Cached only once it is read back: a write in a transaction that rolls back must be made again.
    this.#user ??= this.sql.one<{ user_id: string | null }>("SELECT user_id FROM user_meta").user_id;
    return this.#user;
  }

  /** Names the user whose index this is (every poke carries it); written once. */
  noteUser(user: string): void {
    if (this.userId() === null) this.sql.run("UPDATE user_meta SET user_id = ?", user);
  }

  /** Counts a poke that changed no index row (the others count on their row). */
  notePoke(): void {
    this.sql.run("UPDATE user_meta SET pokes = pokes + 1");
  }

  /** Poke calls this index has received. */
  pokes(): number {
    return this.sql.one<{ n: number }>("SELECT (SELECT pokes FROM user_meta) + (SELECT coalesce(sum(pokes), 0) FROM conversations) AS n").n;
  }

  /** The sync position: the highest row position (one seek on the unique index), 0 for an empty index. */
  position(): number {
    return this.sql.one<{ pos: number }>("SELECT coalesce(max(change_pos), 0) AS pos FROM conversations").pos;
  }

  nextQueueId(): number {
    return this.sql.one<{ id: number }>("UPDATE user_meta SET queue_seq = queue_seq + 1 RETURNING queue_seq AS id").id;
  }

  countPushEnqueued(): void {
    this.sql.run("UPDATE user_meta SET pushes_enqueued = pushes_enqueued + 1");
  }

  countPushConverted(): void {
    this.sql.run("UPDATE user_meta SET pushes_converted = pushes_converted + 1");
  }

  // ---- the conversation index ----

  conversation(id: string): IndexRow | undefined {
    return this.sql.first<IndexRow>("SELECT * FROM conversations WHERE conversation_id = ?", id);
  }

  /** Saves one index row at sync position `pos`; `poked`: a poke brought it (counted on the row). */
  saveConversation(id: string, s: ConversationState, unread: number, pos: number, poked: boolean): void {
    this.sql.run(
      `INSERT INTO conversations (conversation_id, epoch, tick, head_seq, head_m, head_s, floor_seq, floor_m, floor_s, read_seq, read_m, read_s,
         unread, membership, member_seq, intervals, last_activity_at, last_sender_user, last_sender_device, change_pos, paced, pokes)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (conversation_id) DO UPDATE SET epoch = excluded.epoch, tick = excluded.tick,
         head_seq = excluded.head_seq, head_m = excluded.head_m, head_s = excluded.head_s,
         floor_seq = excluded.floor_seq, floor_m = excluded.floor_m, floor_s = excluded.floor_s,
         read_seq = excluded.read_seq, read_m = excluded.read_m, read_s = excluded.read_s,
         unread = excluded.unread, membership = excluded.membership, member_seq = excluded.member_seq, intervals = excluded.intervals,
         last_activity_at = excluded.last_activity_at, last_sender_user = excluded.last_sender_user,
         last_sender_device = excluded.last_sender_device, change_pos = excluded.change_pos, paced = excluded.paced,
         pokes = pokes + excluded.pokes`,
      id, s.epoch, s.tick, s.head.seq, s.head.counts[0], s.head.counts[1], s.floor.seq, s.floor.counts[0], s.floor.counts[1],
      s.read.seq, s.read.counts[0], s.read.counts[1], unread, s.membership, s.member_seq, JSON.stringify(s.intervals),
      s.last_activity_at, s.last_sender?.user ?? null, s.last_sender?.device ?? null, pos, s.paced ? 1 : 0, poked ? 1 : 0,
    );
  }

  /** Paced conversations the user is a member of, most recently active first. */
  pacedConversations(limit: number): string[] {
    return this.sql
      .all<{ conversation_id: string }>(
        "SELECT conversation_id FROM conversations WHERE paced = 1 AND membership = 'member' ORDER BY last_activity_at DESC LIMIT ?",
        limit,
      )
      .map((r) => r.conversation_id);
  }

  /** Rows changed after `pos`, in change order. */
  changedSince(device: string, pos: number, limit: number): (IndexRow & { received: number | null })[] {
    return this.sql.all(
      `SELECT c.*, r.seq AS received FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.change_pos > ? ORDER BY c.change_pos LIMIT ?`,
      device, pos, limit,
    );
  }

  /** Rows by activity, newest first, after the (activity, id) cursor, changed at or before `pos`. */
  byActivity(device: string, pos: number, after: { activity: number; id: string } | null, limit: number): (IndexRow & { received: number | null })[] {
    return this.sql.all(
      `SELECT c.*, r.seq AS received FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.change_pos <= ? AND (? IS NULL OR coalesce(c.last_activity_at, 0) < ? OR (coalesce(c.last_activity_at, 0) = ? AND c.conversation_id > ?))
       ORDER BY coalesce(c.last_activity_at, 0) DESC, c.conversation_id LIMIT ?`,
      device, pos, after?.id ?? null, after?.activity ?? 0, after?.activity ?? 0, after?.id ?? "", limit,
    );
  }

  memberConversations(): string[] {
    return this.sql.all<{ conversation_id: string }>("SELECT conversation_id FROM conversations WHERE membership = 'member'").map((r) => r.conversation_id);
  }

  /** Which of `ids` this user is a current member of (at most 90 per statement). */
  sharesAny(ids: readonly string[]): boolean {
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      if (this.sql.first(`SELECT 1 AS hit FROM conversations WHERE membership = 'member' AND conversation_id IN (${chunk.map(() => "?").join(",")}) LIMIT 1`, ...chunk)) return true;
    }
    return false;
  }

  conversationCount(): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM conversations").n;
  }

  // ---- received cursors (per device) ----

  received(device: string, conversation: string): number {
    return this.receivedCursor(device, conversation) ?? 0;
  }

  /** The device's received cursor in the conversation, or null when it never acked there (in this life). */
  receivedCursor(device: string, conversation: string): number | null {
    return this.sql.first<{ seq: number }>("SELECT seq FROM received WHERE device_id = ? AND conversation_id = ?", device, conversation)?.seq ?? null;
  }

  raiseReceived(device: string, conversation: string, seq: number): void {
    this.sql.run(
      `INSERT INTO received (device_id, conversation_id, seq) VALUES (?, ?, ?)
       ON CONFLICT (device_id, conversation_id) DO UPDATE SET seq = max(seq, excluded.seq)`,
      device, conversation, seq,
    );
  }

  receivedConversations(device: string): string[] {
    return this.sql.all<{ conversation_id: string }>("SELECT conversation_id FROM received WHERE device_id = ?", device).map((r) => r.conversation_id);
  }

  /** Entries this device is behind and can still get (above the floor), over the user's conversations. */
  backlog(device: string): number {
    return this.sql.one<{ n: number | null }>(
      `SELECT sum(max(0, c.head_seq - max(coalesce(r.seq, 0), c.floor_seq))) AS n FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.membership = 'member'`,
      device,
    ).n ?? 0;
  }

  /** Conversations this device is behind in, stalest activity first. */
  behind(device: string, limit: number): { conversation_id: string; received: number }[] {
    return this.sql.all(
      `SELECT c.conversation_id, max(coalesce(r.seq, 0), c.floor_seq) AS received FROM conversations c
       LEFT JOIN received r ON r.device_id = ? AND r.conversation_id = c.conversation_id
       WHERE c.membership = 'member' AND coalesce(r.seq, 0) < c.head_seq
       ORDER BY c.last_activity_at LIMIT ?`,
      device, limit,
    );
  }

  // ---- devices ----

  device(device: string): DeviceRow | undefined {
    return this.sql.first<DeviceRow>(
      "SELECT device_id, push_provider, push_token, push_json, last_seen_at, last_push_at, dropped FROM devices WHERE device_id = ?", device,
    );
  }

  devices(): DeviceRow[] {
    return this.sql.all<DeviceRow>("SELECT device_id, push_provider, push_token, push_json, last_seen_at, last_push_at, dropped FROM devices ORDER BY device_id");
  }

  touchDevice(device: string, now: number): boolean {
    return this.sql.run("UPDATE devices SET last_seen_at = ? WHERE device_id = ?", now, device) > 0;
  }

  insertDevice(device: string, now: number): void {
    this.sql.run("INSERT INTO devices (device_id, created_at, last_seen_at) VALUES (?, ?, ?)", device, now, now);
  }

  deviceCount(): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM devices").n;
  }

  stalestDevice(): string {
    return this.sql.one<{ device_id: string }>("SELECT device_id FROM devices ORDER BY last_seen_at LIMIT 1").device_id;
  }

  devicesUnseenSince(cutoff: number): string[] {
    return this.sql.all<{ device_id: string }>("SELECT device_id FROM devices WHERE last_seen_at < ?", cutoff).map((r) => r.device_id);
  }

  oldestSeen(): number | null {
    return this.sql.one<{ at: number | null }>("SELECT min(last_seen_at) AS at FROM devices").at;
  }

  setPushTarget(device: string, provider: string | null, token: string | null, json: string | null): void {
    this.sql.run("UPDATE devices SET push_provider = ?, push_token = ?, push_json = ? WHERE device_id = ?", provider, token, json, device);
  }

  clearPushTarget(device: string, token: string): void {
    this.sql.run("UPDATE devices SET push_provider = NULL, push_token = NULL, push_json = NULL WHERE device_id = ? AND push_token = ?", device, token);
  }

  /** A device and everything kept for it: cursors, queue, push state. */
  deleteDevice(device: string): void {
    for (const table of ["devices", "push_pending", "push_sent", "received", "queue"]) this.sql.run(`DELETE FROM ${table} WHERE device_id = ?`, device);
  }

  // ---- forgetting devices in conversations (receipts) ----

  queueForget(conversations: readonly string[], device: string, now: number): void {
    for (const c of conversations) {
      this.sql.run(
        `INSERT INTO device_forget (conversation_id, device_id, deleted_at) VALUES (?, ?, ?)
         ON CONFLICT (conversation_id, device_id) DO UPDATE SET deleted_at = excluded.deleted_at, attempts = 0, next_at = 0, done_at = NULL`,
        c, device, now,
      );
    }
  }

  dueForgets(now: number, limit: number): { conversation_id: string; device_id: string; deleted_at: number; attempts: number }[] {
    return this.sql.all("SELECT conversation_id, device_id, deleted_at, attempts FROM device_forget WHERE done_at IS NULL AND next_at <= ? LIMIT ?", now, limit);
  }

  /** The deletion time of a forget queued or recently confirmed for the device in the conversation. */
  forgetOf(conversation: string, device: string): number | null {
    return this.sql.first<{ deleted_at: number }>("SELECT deleted_at FROM device_forget WHERE conversation_id = ? AND device_id = ?", conversation, device)?.deleted_at ?? null;
  }

  /** Confirmed: kept until `keepUntil` for a racing ack (Devices.settle), then swept. */
  doneForget(conversation: string, device: string, now: number, keepUntil: number): void {
    this.sql.run("UPDATE device_forget SET done_at = ?, next_at = ? WHERE conversation_id = ? AND device_id = ?", now, keepUntil, conversation, device);
  }

  dropForget(conversation: string, device: string): void {
    this.sql.run("DELETE FROM device_forget WHERE conversation_id = ? AND device_id = ?", conversation, device);
  }

  sweepForgets(now: number): void {
    this.sql.run("DELETE FROM device_forget WHERE done_at IS NOT NULL AND next_at <= ?", now);
  }

  retryForget(conversation: string, device: string, nextAt: number): void {
    this.sql.run("UPDATE device_forget SET attempts = attempts + 1, next_at = ? WHERE conversation_id = ? AND device_id = ?", nextAt, conversation, device);
  }

  nextForget(): number | null {
    return this.sql.one<{ at: number | null }>("SELECT min(next_at) AS at FROM device_forget").at;
  }

  // ---- push decisions ----

  pushCandidates(conversation: string): { device_id: string; last_push_at: number | null; received: number | null; sent_at: number | null }[] {
    return this.sql.all(
      `SELECT d.device_id, d.last_push_at, r.seq AS received, s.sent_at FROM devices d
       LEFT JOIN received r ON r.device_id = d.device_id AND r.conversation_id = ?
       LEFT JOIN push_sent s ON s.device_id = d.device_id AND s.conversation_id = ?
       WHERE d.push_provider IS NOT NULL`,
      conversation, conversation,
    );
  }

  queuePush(device: string, conversation: string, head: number, unread: number, now: number): void {
    this.sql.run(
      `INSERT INTO push_pending (device_id, conversation_id, head_seq, unread, first_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id, conversation_id) DO UPDATE SET head_seq = excluded.head_seq, unread = excluded.unread, updated_at = excluded.updated_at`,
      device, conversation, head, unread, now, now,
    );
  }

  firstPending(device: string): number | null {
    return this.sql.one<{ first: number | null }>("SELECT min(first_at) AS first FROM push_pending WHERE device_id = ?", device).first;
  }

  devicesWithPending(): string[] {
    return this.sql.all<{ device_id: string }>("SELECT DISTINCT device_id FROM push_pending").map((r) => r.device_id);
  }

  /** What a device's due push names: conversations it is still behind in with unread messages, newest first. */
  pendingFor(device: string): { conversation_id: string; head_seq: number; unread: number }[] {
    return this.sql.all(
      `SELECT p.conversation_id, p.head_seq, c.unread FROM push_pending p
       JOIN conversations c ON c.conversation_id = p.conversation_id
       LEFT JOIN received r ON r.device_id = p.device_id AND r.conversation_id = p.conversation_id
       WHERE p.device_id = ? AND coalesce(r.seq, 0) < c.head_seq AND c.unread > 0
       ORDER BY p.updated_at DESC`,
      device,
    );
  }

  clearPending(device: string): void {
    this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
  }

  markPushed(device: string, conversations: readonly string[], now: number): void {
    for (const c of conversations) {
      this.sql.run(
        `INSERT INTO push_sent (device_id, conversation_id, sent_at) VALUES (?, ?, ?)
         ON CONFLICT (device_id, conversation_id) DO UPDATE SET sent_at = excluded.sent_at`,
        device, c, now,
      );
    }
    this.sql.run("UPDATE devices SET last_push_at = ?, pushed_since_sync = 1 WHERE device_id = ?", now, device);
  }

  /** The device came back: true when it had been pushed since its last sync (a conversion). */
  resetPushWindows(device: string, synced: boolean): boolean {
    const converted = synced && this.sql.run("UPDATE devices SET pushed_since_sync = 0 WHERE device_id = ? AND pushed_since_sync = 1", device) > 0;
    this.sql.run("DELETE FROM push_sent WHERE device_id = ?", device);
    this.sql.run("DELETE FROM push_pending WHERE device_id = ?", device);
    return converted;
  }

  // ---- per-device queue ----

  priorSend(fromUser: string, fromDevice: string, clientMsgId: string): number | undefined {
    return this.sql.first<{ queued: number }>(
      "SELECT queued FROM queue_sends WHERE from_user = ? AND from_device = ? AND client_msg_id = ?", fromUser, fromDevice, clientMsgId,
    )?.queued;
  }

  recordSend(fromUser: string, fromDevice: string, clientMsgId: string, queued: number, now: number): void {
    this.sql.run(
      "INSERT INTO queue_sends (from_user, from_device, client_msg_id, queued, created_at) VALUES (?, ?, ?, ?, ?)",
      fromUser, fromDevice, clientMsgId, queued, now,
    );
  }

  enqueue(device: string, id: number, fromUser: string, fromDevice: string, body: string, now: number): void {
    this.sql.run(
      "INSERT INTO queue (device_id, id, from_user, from_device, body, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      device, id, fromUser, fromDevice, body, now,
    );
  }

  queueLength(device: string): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM queue WHERE device_id = ?", device).n;
  }

  queuePage(device: string, limit: number): QueueRow[] {
    return this.sql.all<QueueRow>("SELECT id, from_user, from_device, body, created_at FROM queue WHERE device_id = ? ORDER BY id LIMIT ?", device, limit);
  }

  ackQueue(device: string, upTo: number): void {
    this.sql.run("DELETE FROM queue WHERE device_id = ? AND id <= ?", device, upTo);
  }

  /** Drops the oldest `n` entries of a device's queue and counts them. */
  dropOldest(device: string, n: number): void {
    this.sql.run("DELETE FROM queue WHERE device_id = ? AND id IN (SELECT id FROM queue WHERE device_id = ? ORDER BY id LIMIT ?)", device, device, n);
    this.addDropped(device, n);
  }

  addDropped(device: string, n: number): void {
    this.sql.run("UPDATE devices SET dropped = dropped + ? WHERE device_id = ?", n, device);
  }

  expiredQueueCounts(cutoff: number): { device_id: string; n: number }[] {
    return this.sql.all("SELECT device_id, count(*) AS n FROM queue WHERE created_at < ? GROUP BY device_id", cutoff);
  }

  deleteQueueBefore(cutoff: number): void {
    this.sql.run("DELETE FROM queue WHERE created_at < ?", cutoff);
  }

  deleteSendsBefore(cutoff: number): void {
    this.sql.run("DELETE FROM queue_sends WHERE created_at < ?", cutoff);
  }
}
