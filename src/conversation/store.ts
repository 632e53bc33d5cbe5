/**
 * Every SQL statement of the ConversationDO, with its row types: the log,
 * idempotency, media references and retention accounting here, the member
 * tables in member-tables.ts. The modules around it (log, members, notify,
 * retention, live, receipts) hold the rules; these files hold the storage
 * layout (migrations/conversation/*.sql).
 */
import type { Counts } from "../protocol/internal";
import type { EntryType } from "../protocol/types";
import { MemberTables } from "./member-tables";

export type { IntervalRow, MemberRow, TargetRow } from "./member-tables";

export interface Meta {
  id: string;
  epoch: string;
  created_at: number;
  created_by: string;
  head_seq: number;
  floor_seq: number;
  /** M(head) and M(floor): messages counted from the first retained entry. */
  msg_count: number;
  floor_mcount: number;
  member_count: number;
  next_slot: number;
  /** The last completed notification tick and the head and floor it carried. */
  tick: number;
  tick_head: number;
  tick_floor: number;
  /** [user, S_u(floor)] for users whose messages retention removed since that tick. */
  floor_senders: [string, number][];
  expired_total: number;
  unavailable_total: number;
  max_age_seconds: number | null;
  max_messages: number | null;
  sends_total: number;
  send_rows_total: number;
}

export type EntryRow = {
  seq: number;
  msg_id: string;
  type: EntryType;
  sender_user: string;
  sender_device: string;
  client_msg_id: string | null;
  body: string;
  created_at: number;
  attachments: string | null;
  mcount: number;
  scount: number | null;
};

type MetaRow = Omit<Meta, "floor_senders"> & { floor_senders: string };

/** S_u(head) of the user bound to `param`: their newest message's scount, else what retention kept for them. */
const SENDER_TOTAL_OF = (param: string) =>
  `coalesce((SELECT scount FROM entries WHERE sender_user = ${param} AND type = 'message' ORDER BY seq DESC LIMIT 1),
            (SELECT total FROM senders WHERE user_id = ${param}), 0)`;
const SENDER_TOTAL = `SELECT ${SENDER_TOTAL_OF("?1")} AS total`;
const INSERT_ENTRY = `INSERT INTO entries (seq, msg_id, type, sender_user, sender_device, client_msg_id, body, created_at, attachments, mcount, scount)
  SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, CASE WHEN ?3 = 'message' THEN 1 + ${SENDER_TOTAL_OF("?4")} END
  WHERE ?6 IS NULL OR NOT EXISTS (SELECT 1 FROM idempotency WHERE sender_user = ?4 AND sender_device = ?5 AND client_msg_id = ?6)
  ON CONFLICT DO NOTHING
  RETURNING scount`;

export class ConversationStore extends MemberTables {

  // ---- the conversation row ----

  loadMeta(): Meta | null {
    const row = this.sql.first<MetaRow>("SELECT * FROM conversation");
    if (!row) return null;
    // The head and M(head) are not rewritten per send: the newest entry is the truth.
    const newest = this.sql.first<{ seq: number; mcount: number }>("SELECT seq, mcount FROM entries ORDER BY seq DESC LIMIT 1");
    const meta: Meta = { ...row, floor_senders: JSON.parse(row.floor_senders) as [string, number][] };
    if (newest && newest.seq > meta.head_seq) {
      meta.head_seq = newest.seq;
      meta.msg_count = newest.mcount;
    }
    return meta;
  }

  insertMeta(m: Meta): void {
    this.sql.run(
      `INSERT INTO conversation (singleton, id, epoch, created_at, created_by, head_seq, floor_seq, max_age_seconds, max_messages)
       VALUES (1, ?, ?, ?, ?, 0, 0, ?, ?)`,
      m.id, m.epoch, m.created_at, m.created_by, m.max_age_seconds, m.max_messages,
    );
  }

  /** Persists the fields that membership changes, retention and ticks move (never per send). */
  saveMeta(m: Meta): void {
    this.sql.run(
      `UPDATE conversation SET head_seq = ?, floor_seq = ?, msg_count = ?, floor_mcount = ?, member_count = ?, next_slot = ?,
         tick = ?, tick_head = ?, tick_floor = ?, floor_senders = ?, expired_total = ?, unavailable_total = ?,
         sends_total = ?, send_rows_total = ? WHERE singleton = 1`,
      m.head_seq, m.floor_seq, m.msg_count, m.floor_mcount, m.member_count, m.next_slot,
      m.tick, m.tick_head, m.tick_floor, JSON.stringify(m.floor_senders), m.expired_total, m.unavailable_total,
      m.sends_total, m.send_rows_total,
    );
  }

  // ---- the log ----

  /**
   * Appends `e` in one statement (atomic by itself): refused, writing nothing,
   * when its key is taken by a live entry (the unique index) or by one retention
   * removed (`idempotency`). A message's scount is computed in the statement:
   * S_u(head) + 1. Returns the row's scount (null for a member entry), or
   * undefined when refused.
   */
  insertEntry(e: Omit<EntryRow, "scount">): number | null | undefined {
    const rows = this.sql.all<{ scount: number | null }>(
      INSERT_ENTRY,
      e.seq, e.msg_id, e.type, e.sender_user, e.sender_device, e.client_msg_id, e.body, e.created_at, e.attachments, e.mcount,
    );
    return rows.length === 0 ? undefined : rows[0]!.scount;
  }

  entry(seq: number): EntryRow | undefined {
    return this.sql.first<EntryRow>("SELECT * FROM entries WHERE seq = ?", seq);
  }

  entries(from: number, to: number): EntryRow[] {
    return this.sql.all<EntryRow>("SELECT * FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq", from, to);
  }

  firstEntryAfter(seq: number): { seq: number; created_at: number } | undefined {
    return this.sql.first("SELECT seq, created_at FROM entries WHERE seq > ? ORDER BY seq LIMIT 1", seq);
  }

  /** Seqs and times of (from, to], oldest first (retention by age). */
  entryTimes(from: number, to: number): { seq: number; created_at: number }[] {
    return this.sql.all("SELECT seq, created_at FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq", from, to);
  }

  deleteEntries(from: number, to: number): void {
    this.sql.run("DELETE FROM entries WHERE seq > ? AND seq <= ?", from, to);
  }

  /** M(seq) for a seq above the floor. */
  messagesAt(seq: number): number | undefined {
    return this.sql.first<{ mcount: number }>("SELECT mcount FROM entries WHERE seq = ?", seq)?.mcount;
  }

  /** S_u(seq) for seq ≥ floor: the next own message's count − 1, or the user's total. */
  ownAt(user: string, seq: number): number {
    const next = this.sql.first<{ scount: number }>(
      "SELECT scount FROM entries WHERE sender_user = ? AND type = 'message' AND seq > ? ORDER BY seq LIMIT 1", user, seq,
    );
    return next ? next.scount - 1 : this.senderTotal(user);
  }

  senderTotal(user: string): number {
    return this.sql.one<{ total: number }>(SENDER_TOTAL, user).total;
  }

  /**
   * Keeps S_u for the senders of (from, to] before retention removes it: a
   * sender left with no entry is still counted (`senders`, read by SENDER_TOTAL_OF).
   */
  keepSenderTotals(from: number, to: number): void {
    this.sql.run(
      `INSERT INTO senders (user_id, total)
       SELECT sender_user, max(scount) FROM entries WHERE type = 'message' AND seq > ? AND seq <= ? GROUP BY sender_user
       ON CONFLICT (user_id) DO UPDATE SET total = max(total, excluded.total)`,
      from, to,
    );
  }

  /** Distinct senders of messages in (from, to], at most `limit` + 1 rows, with the first seq of each. */
  sendersIn(from: number, to: number, limit: number): { user: string; first: number }[] {
    return this.sql.all<{ user: string; first: number }>(
      "SELECT sender_user AS user, min(seq) AS first FROM entries WHERE type = 'message' AND seq > ? AND seq <= ? GROUP BY sender_user ORDER BY first LIMIT ?",
      from, to, limit + 1,
    );
  }

  /** Messages per sender in (from, to]. */
  messagesBySender(from: number, to: number): { user: string; n: number; last: number }[] {
    return this.sql.all(
      "SELECT sender_user AS user, count(*) AS n, max(seq) AS last FROM entries WHERE type = 'message' AND seq > ? AND seq <= ? GROUP BY sender_user",
      from, to,
    );
  }

  // ---- idempotency ----

  /** The entry that used this key: a live one, or one retention removed whose key is still kept. */
  idempotent(user: string, device: string, clientMsgId: string): { seq: number; msg_id: string; created_at: number } | undefined {
    return this.sql.first(
      `SELECT seq, msg_id, created_at FROM entries WHERE sender_user = ?1 AND sender_device = ?2 AND client_msg_id = ?3
       UNION ALL
       SELECT seq, msg_id, created_at FROM idempotency WHERE sender_user = ?1 AND sender_device = ?2 AND client_msg_id = ?3
       LIMIT 1`,
      user, device, clientMsgId,
    );
  }

  /**
   * Keeps the keys of (from, to] written at or after `since`, before retention
   * removes those entries. Member entries have no client key; theirs is named so
   * no client can use it, so their actor stays known too (receipts exclude it).
   */
  keepKeys(from: number, to: number, since: number): void {
    this.sql.run(
      `INSERT INTO idempotency (sender_user, sender_device, client_msg_id, seq, msg_id, created_at)
       SELECT sender_user, sender_device, coalesce(client_msg_id, '~' || type || '-' || seq), seq, msg_id, created_at FROM entries
       WHERE seq > ? AND seq <= ? AND created_at >= ?
       ON CONFLICT DO NOTHING`,
      from, to, since,
    );
  }

  /** The sender of an entry retention removed (its key outlives it for a while). */
  senderOfRemoved(seq: number): string | undefined {
    return this.sql.first<{ sender_user: string }>("SELECT sender_user FROM idempotency WHERE seq = ? LIMIT 1", seq)?.sender_user;
  }

  expireIdempotency(upToSeq: number, before: number): void {
    this.sql.run("DELETE FROM idempotency WHERE seq <= ? AND created_at < ?", upToSeq, before);
  }

  /** When the first entry after `seq` was written (null: none). */
  entryTimeAfter(seq: number): number | null {
    return this.firstEntryAfter(seq)?.created_at ?? null;
  }

  // ---- media references ----

  insertMediaRef(mediaId: string, seq: number): void {
    this.sql.run("INSERT OR IGNORE INTO media_refs (media_id, seq) VALUES (?, ?)", mediaId, seq);
  }

  mediaRefSeqs(mediaId: string): number[] {
    return this.sql.all<{ seq: number }>("SELECT seq FROM media_refs WHERE media_id = ?", mediaId).map((r) => r.seq);
  }

  /** Drops the references of (from, to]; returns the media that lost its last reference, with owners. */
  releaseMediaRefs(from: number, to: number): string[] {
    const gone = this.sql.all<{ media_id: string }>("SELECT DISTINCT media_id FROM media_refs WHERE seq > ? AND seq <= ?", from, to);
    if (gone.length === 0) return [];
    this.sql.run("DELETE FROM media_refs WHERE seq > ? AND seq <= ?", from, to);
    return gone.map((g) => g.media_id).filter((id) => !this.sql.first("SELECT 1 AS one FROM media_refs WHERE media_id = ? LIMIT 1", id));
  }

  queueMediaRelease(mediaId: string, owner: string): void {
    this.sql.run("INSERT OR IGNORE INTO media_released (media_id, owner) VALUES (?, ?)", mediaId, owner);
  }

  dueMediaReleases(now: number, limit: number): { media_id: string; owner: string; attempts: number }[] {
    return this.sql.all("SELECT media_id, owner, attempts FROM media_released WHERE next_at <= ? LIMIT ?", now, limit);
  }

  doneMediaRelease(mediaId: string): void {
    this.sql.run("DELETE FROM media_released WHERE media_id = ?", mediaId);
  }

  retryMediaRelease(mediaId: string, nextAt: number): void {
    this.sql.run("UPDATE media_released SET attempts = attempts + 1, next_at = ? WHERE media_id = ?", nextAt, mediaId);
  }

  nextMediaRelease(): number | null {
    return this.sql.one<{ at: number | null }>("SELECT min(next_at) AS at FROM media_released").at;
  }

  // ---- retention accounting ----

  addExpired(sender: string, recipient: string, device: string, entries: number, lastSeq: number, now: number): void {
    this.sql.run(
      `INSERT INTO expired_undelivered (sender_user, recipient_user, recipient_device, entries, last_seq, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (sender_user, recipient_user, recipient_device) DO UPDATE SET entries = entries + excluded.entries,
         last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at`,
      sender, recipient, device, entries, lastSeq, now,
    );
  }

  expiredFor(sender: string): { recipient_user: string; recipient_device: string; entries: number; last_seq: number; updated_at: number }[] {
    return this.sql.all(
      `SELECT recipient_user, recipient_device, entries, last_seq, updated_at FROM expired_undelivered
       WHERE sender_user = ? ORDER BY recipient_user, recipient_device`,
      sender,
    );
  }

  /** Messages by others in (after, to] inside `user`'s intervals, per sender. */
  missedBySender(user: string, after: number, to: number): { sender: string; n: number; last: number }[] {
    return this.sql.all(
      `SELECT e.sender_user AS sender, count(*) AS n, max(e.seq) AS last FROM entries e JOIN intervals i
         ON i.user_id = ? AND e.seq >= i.from_seq AND (i.to_seq IS NULL OR e.seq <= i.to_seq)
       WHERE e.seq > ? AND e.seq <= ? AND e.type = 'message' AND e.sender_user != ? GROUP BY e.sender_user`,
      user, after, to, user,
    );
  }

  retentionReported(user: string, device: string): number {
    return this.sql.first<{ up_to: number }>("SELECT up_to FROM retention_reported WHERE user_id = ? AND device_id = ?", user, device)?.up_to ?? 0;
  }

  markRetentionReported(user: string, device: string, upTo: number): void {
    this.sql.run(
      `INSERT INTO retention_reported (user_id, device_id, up_to) VALUES (?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET up_to = max(up_to, excluded.up_to)`,
      user, device, upTo,
    );
  }
}

/** Counts at a seq: [M, S_u]. */
export function counts(m: number, s: number): Counts {
  return [m, s];
}
