-- ConversationDO schema v3: attachments on entries, and media references released by retention.

ALTER TABLE entries ADD COLUMN attachments TEXT;   -- JSON array of attachment metadata, NULL when none

-- Which entries reference which media (for download checks under membership history).
CREATE TABLE media_refs (
  media_id       TEXT    NOT NULL,
  seq            INTEGER NOT NULL,
  PRIMARY KEY (media_id, seq)
) WITHOUT ROWID;

-- Media no entry here references any more: the owner's UserDO is told, retried until it confirms.
CREATE TABLE media_released (
  media_id       TEXT    PRIMARY KEY,
  owner          TEXT    NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
