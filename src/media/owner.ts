/**
 * Media metadata in the uploader's UserDO (the bytes live in R2): quota
 * reservations, finished uploads, which conversations reference each object,
 * and deletion when the last reference goes (retention) or an upload was never
 * referenced within the grace period.
 */
import { TUNING } from "../config/tuning";
import type { Env } from "../env";
import { metrics } from "../observability/metrics";
import { log } from "../platform/log";
import type { Sql } from "../platform/sql";
import { fail, ok, type Result } from "../protocol/errors";
import type { Attachment } from "../protocol/types";
import { mediaKey } from "./keys";

type MediaRow = { size: number; mime: string; sha256: string | null; preview: string | null; status: "uploading" | "stored" };

export class MediaOwner {
  constructor(
    private readonly env: Env,
    private readonly sql: Sql,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** Reserves quota for an upload about to stream into R2. */
  reserve(mediaId: string, size: number, mime: string, preview: string | null, quota: number, now: number): Result<null> {
    const used = this.sql.one<{ n: number | null }>("SELECT sum(size) AS n FROM media").n ?? 0;
    if (used + size > quota) return fail("forbidden", `media quota exceeded (${used} of ${quota} bytes used)`);
    this.sql.run("INSERT INTO media (media_id, size, mime, preview, status, created_at) VALUES (?, ?, ?, ?, 'uploading', ?)", mediaId, size, mime, preview, now);
    return ok(null);
  }

  commit(mediaId: string, sha256: string): void {
    this.sql.run("UPDATE media SET sha256 = ?, status = 'stored' WHERE media_id = ?", sha256, mediaId);
  }

  abort(mediaId: string): void {
    this.sql.run("DELETE FROM media WHERE media_id = ?", mediaId);
  }

  /**
   * Checks that the user owns every media id and its upload finished, and records
   * that `conversation` references them (before the send, so no sweep can race it).
   */
  attach(mediaIds: readonly string[], conversation: string): Result<Attachment[]> {
    const out: Attachment[] = [];
    for (const mediaId of mediaIds) {
      const m = this.#row(mediaId);
      if (!m || m.status !== "stored" || m.sha256 === null) return fail("invalid_request", `attachments: no uploaded media ${mediaId} of yours`);
      out.push(attachment(mediaId, m, m.sha256));
    }
    this.transaction(() => {
      for (const mediaId of mediaIds) this.sql.run("INSERT OR IGNORE INTO media_refs (media_id, conversation_id) VALUES (?, ?)", mediaId, conversation);
    });
    return ok(out);
  }

  /** Metadata and the conversations that may reference it (download checks ask them). */
  info(mediaId: string): { attachment: Attachment; conversations: string[] } | null {
    const m = this.#row(mediaId);
    if (!m || m.status !== "stored" || m.sha256 === null) return null;
    const conversations = this.sql
      .all<{ conversation_id: string }>("SELECT conversation_id FROM media_refs WHERE media_id = ?", mediaId)
      .map((r) => r.conversation_id);
    return { attachment: attachment(mediaId, m, m.sha256), conversations };
  }

  /** A conversation's retention removed its last entry referencing the media; the last reference deletes the bytes. */
  async release(mediaId: string, conversation: string): Promise<void> {
    this.sql.run("DELETE FROM media_refs WHERE media_id = ? AND conversation_id = ?", mediaId, conversation);
    const left = this.sql.one<{ n: number }>("SELECT count(*) AS n FROM media_refs WHERE media_id = ?", mediaId).n;
    if (left === 0) await this.#delete([mediaId]);
  }

  /** Uploads never referenced (or never finished) within the grace period go, a bounded batch per run; returns the next due time. */
  async sweep(now: number): Promise<number> {
    const cutoff = now - TUNING.mediaOrphanGraceMs;
    const orphans = this.sql
      .all<{ media_id: string }>(
        `SELECT m.media_id FROM media m WHERE m.created_at < ?
         AND NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = m.media_id) LIMIT ?`,
        cutoff, TUNING.mediaSweepBatch,
      )
      .map((r) => r.media_id);
    await this.#delete(orphans);
    if (orphans.length === TUNING.mediaSweepBatch) return now;
    const next = this.sql.one<{ at: number | null }>(
      "SELECT min(m.created_at) AS at FROM media m WHERE NOT EXISTS (SELECT 1 FROM media_refs r WHERE r.media_id = m.media_id)",
    ).at;
    return next === null ? Infinity : next + TUNING.mediaOrphanGraceMs;
  }

  deletedTotal(): number {
    return this.sql.one<{ media_deleted: number }>("SELECT media_deleted FROM user_meta").media_deleted;
  }

  async #delete(mediaIds: string[]): Promise<void> {
    if (mediaIds.length === 0) return;
    await this.env.MEDIA.delete(mediaIds.map(mediaKey));
    this.transaction(() => {
      for (const mediaId of mediaIds) this.sql.run("DELETE FROM media WHERE media_id = ?", mediaId);
      this.sql.run("UPDATE user_meta SET media_deleted = media_deleted + ?", mediaIds.length);
    });
    metrics.count(this.env, "media_deleted_total", mediaIds.length);
    log("media_deleted", { media: mediaIds });
  }

  #row(mediaId: string): MediaRow | undefined {
    return this.sql.first<MediaRow>("SELECT size, mime, sha256, preview, status FROM media WHERE media_id = ?", mediaId);
  }
}

function attachment(mediaId: string, m: MediaRow, sha256: string): Attachment {
  return { media_id: mediaId, size: m.size, mime: m.mime, sha256, ...(m.preview !== null ? { preview: m.preview } : {}) };
}
