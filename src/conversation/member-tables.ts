/**
 * The ConversationDO's member tables: current members and their slots,
 * membership history, the cursor mirror (receipts), notification targets and
 * leaf versions, live shards. Extended by ConversationStore (store.ts).
 */
import { remembered } from "../platform/remembered";
import type { Sql } from "../platform/sql";

export type MemberRow = { user_id: string; active: number; read_seq: number; slot: number | null; max_received: number };
export type IntervalRow = { from_seq: number; to_seq: number | null };
export type TargetRow = { user_id: string; armed: number; attempts: number };

/** Device cursors remembered for the page path (src/platform/remembered.ts). */
const RECEIVED_CACHE = 10_000;

export class MemberTables {
  /**
   * `received` per device as last read, or null for none: every history page asks (the duplicate-delivery
   * signal). Each write below drops its device's entry; read it outside transactions only, so nothing
   * uncommitted is remembered.
   */
  readonly #received = new Map<string, number | null>();

  constructor(readonly sql: Sql) {}

  // ---- members ----

  member(user: string): MemberRow | undefined {
    return this.sql.first<MemberRow>("SELECT user_id, active, read_seq, slot, max_received FROM members WHERE user_id = ?", user);
  }

  /** Which of `users` are current members. */
  activeAmong(users: readonly string[]): Set<string> {
    const out = new Set<string>();
    for (let i = 0; i < users.length; i += 90) {
      const chunk = users.slice(i, i + 90);
      for (const r of this.sql.all<{ user_id: string }>(
        `SELECT user_id FROM members WHERE active = 1 AND user_id IN (${chunk.map(() => "?").join(",")})`, ...chunk,
      )) out.add(r.user_id);
    }
    return out;
  }

  activeMembers(after: string, limit: number): string[] {
    return this.sql
      .all<{ user_id: string }>("SELECT user_id FROM members WHERE active = 1 AND user_id > ? ORDER BY user_id LIMIT ?", after, limit)
      .map((r) => r.user_id);
  }

  /** Current members in slots [from, to), for one notification leaf. */
  slotMembers(from: number, to: number): string[] {
    return this.sql
      .all<{ user_id: string }>("SELECT user_id FROM members WHERE slot >= ? AND slot < ? ORDER BY slot", from, to)
      .map((r) => r.user_id);
  }

  upsertActive(user: string, slot: number): void {
    this.sql.run(
      `INSERT INTO members (user_id, active, read_seq, slot) VALUES (?, 1, 0, ?)
       ON CONFLICT (user_id) DO UPDATE SET active = 1, slot = excluded.slot`,
      user, slot,
    );
    this.sql.run("UPDATE device_cursors SET active = 1 WHERE user_id = ?", user);
  }

  deactivate(user: string): void {
    this.sql.run("UPDATE members SET active = 0, slot = NULL WHERE user_id = ?", user);
    this.sql.run("UPDATE device_cursors SET active = 0 WHERE user_id = ?", user);
  }

  setRead(user: string, read: number): void {
    this.sql.run("UPDATE members SET read_seq = ? WHERE user_id = ?", read, user);
  }

  takeFreeSlot(): number | undefined {
    return this.sql.first<{ slot: number }>("DELETE FROM free_slots WHERE slot = (SELECT min(slot) FROM free_slots) RETURNING slot")?.slot;
  }

  freeSlot(slot: number): void {
    this.sql.run("INSERT OR IGNORE INTO free_slots (slot) VALUES (?)", slot);
  }

  // ---- membership history ----

  intervals(user: string): IntervalRow[] {
    return this.sql.all<IntervalRow>("SELECT from_seq, to_seq FROM intervals WHERE user_id = ? ORDER BY from_seq", user);
  }

  openInterval(user: string, from: number): void {
    this.sql.run("INSERT INTO intervals (user_id, from_seq, to_seq) VALUES (?, ?, NULL)", user, from);
  }

  closeInterval(user: string, to: number): void {
    this.sql.run("UPDATE intervals SET to_seq = ? WHERE user_id = ? AND to_seq IS NULL", to, user);
  }

  /** Former members who could still see something above `floor`. */
  formerMembersAbove(floor: number): string[] {
    return this.sql
      .all<{ user_id: string }>(
        `SELECT DISTINCT i.user_id FROM intervals i JOIN members m ON m.user_id = i.user_id AND m.active = 0
         WHERE i.to_seq IS NOT NULL AND i.to_seq > ?`,
        floor,
      )
      .map((r) => r.user_id);
  }

  /** Users whose intervals overlap (from, to]: the recipients of those entries. */
  recipientsOf(from: number, to: number): string[] {
    return this.sql
      .all<{ user_id: string }>("SELECT DISTINCT user_id FROM intervals WHERE from_seq <= ? AND (to_seq IS NULL OR to_seq > ?)", to, from)
      .map((r) => r.user_id);
  }

  // ---- device cursors (the delivery mirror) ----

  deviceReceived(user: string, device: string): number | undefined {
    const read = () => this.sql.first<{ received: number }>("SELECT received FROM device_cursors WHERE user_id = ? AND device_id = ?", user, device)?.received ?? null;
    return remembered(this.#received, `${user}/${device}`, RECEIVED_CACHE, read) ?? undefined;
  }

  devicesOf(user: string): { device_id: string; received: number }[] {
    return this.sql.all("SELECT device_id, received FROM device_cursors WHERE user_id = ?", user);
  }

  /** Raises a device's cursor (and the user's furthest device); true when it moved. */
  raiseReceived(user: string, device: string, received: number, active: boolean, now: number): boolean {
    this.#received.delete(`${user}/${device}`);
    const moved = this.sql.run(
      `INSERT INTO device_cursors (user_id, device_id, received, active, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user_id, device_id) DO UPDATE SET received = excluded.received, updated_at = excluded.updated_at
       WHERE excluded.received > received`,
      user, device, received, active ? 1 : 0, now,
    );
    if (moved > 0) this.sql.run("UPDATE members SET max_received = ? WHERE user_id = ? AND max_received < ?", received, user, received);
    return moved > 0;
  }

  /**
   * Forgets a device deleted at `deletedAt`; a cursor it set after that (it came back) stays.
   * `keep`: the device is back and its UserDO holds this cursor for it now, which replaces the old life's
   * (stamped after the deletion, so a plain forget still on its way spares it).
   */
  forgetDevice(user: string, device: string, deletedAt: number, keep: number | null, now: number): void {
    this.#received.delete(`${user}/${device}`);
    if (keep === null) this.sql.run("DELETE FROM device_cursors WHERE user_id = ? AND device_id = ? AND updated_at <= ?", user, device, deletedAt);
    else {
      // The old life's row is replaced; a row the new life already raised is never lowered (acks can overtake this call).
      this.sql.run(
        `INSERT INTO device_cursors (user_id, device_id, received, active, updated_at) VALUES (?, ?, ?, coalesce((SELECT active FROM members WHERE user_id = ?), 0), ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET
           received = CASE WHEN device_cursors.updated_at > ? THEN max(device_cursors.received, excluded.received) ELSE excluded.received END,
           updated_at = excluded.updated_at`,
        user, device, keep, user, Math.max(now, deletedAt + 1), deletedAt,
      );
    }
    this.sql.run(
      "UPDATE members SET max_received = coalesce((SELECT max(received) FROM device_cursors WHERE user_id = ?), 0) WHERE user_id = ?",
      user, user,
    );
  }

  // ---- receipts (indexed counts over current members) ----

  countDelivered(seq: number): { users: number; devices: number } {
    return {
      users: this.sql.one<{ n: number }>("SELECT count(*) AS n FROM members WHERE active = 1 AND max_received >= ?", seq).n,
      devices: this.sql.one<{ n: number }>("SELECT count(*) AS n FROM device_cursors WHERE active = 1 AND received >= ?", seq).n,
    };
  }

  countRead(seq: number): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM members WHERE active = 1 AND read_seq >= ?", seq).n;
  }

  /** The lowest cursor of any current member's device (retention's "someone missed it" test). */
  lowestReceived(): number {
    return this.sql.one<{ n: number | null }>("SELECT min(received) AS n FROM device_cursors WHERE active = 1").n ?? 0;
  }


  activeWithoutCursor(): boolean {
    return this.sql.first("SELECT 1 AS one FROM members WHERE active = 1 AND max_received = 0 LIMIT 1") !== undefined;
  }

  // ---- notification ----

  addTargets(users: readonly string[], now: number): void {
    for (const user of users) {
      this.sql.run(
        "INSERT INTO notify_targets (user_id, first_at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET armed = armed + 1, next_at = 0",
        user, now,
      );
    }
  }

  dueTargets(now: number, limit: number): TargetRow[] {
    return this.sql.all<TargetRow>("SELECT user_id, armed, attempts FROM notify_targets WHERE next_at <= ? ORDER BY next_at LIMIT ?", now, limit);
  }

  /** Confirmed, unless a newer change re-armed it while the view was on its way. */
  confirmTarget(user: string, armed: number): void {
    this.sql.run("DELETE FROM notify_targets WHERE user_id = ? AND armed = ?", user, armed);
  }

  retryTarget(user: string, nextAt: number): void {
    this.sql.run("UPDATE notify_targets SET attempts = attempts + 1, next_at = ? WHERE user_id = ?", nextAt, user);
  }

  targetsSummary(): { n: number; oldest: number | null; next: number | null } {
    return this.sql.one("SELECT count(*) AS n, min(first_at) AS oldest, min(next_at) AS next FROM notify_targets");
  }

  leafVersions(): Map<number, number> {
    return new Map(this.sql.all<{ leaf: number; version: number }>("SELECT leaf, version FROM leaves").map((r) => [r.leaf, r.version]));
  }

  bumpLeaf(leaf: number): number {
    return this.sql.one<{ version: number }>(
      "INSERT INTO leaves (leaf, version) VALUES (?, 1) ON CONFLICT (leaf) DO UPDATE SET version = version + 1 RETURNING version", leaf,
    ).version;
  }

  // ---- live shards ----

  liveShards(): Map<number, number> {
    return new Map(this.sql.all<{ shard: number; sockets: number }>("SELECT shard, sockets FROM live_shards").map((r) => [r.shard, r.sockets]));
  }

  saveLiveShard(shard: number, sockets: number): void {
    if (sockets <= 0) this.sql.run("DELETE FROM live_shards WHERE shard = ?", shard);
    else this.sql.run("INSERT INTO live_shards (shard, sockets) VALUES (?, ?) ON CONFLICT (shard) DO UPDATE SET sockets = excluded.sockets", shard, sockets);
  }
}
