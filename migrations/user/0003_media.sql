-- UserDO schema v3: media this user uploaded (bytes live in R2), and which conversations reference them.

CREATE TABLE media (
  media_id       TEXT    PRIMARY KEY,
  size           INTEGER NOT NULL,
  mime           TEXT    NOT NULL,
  sha256         TEXT,                       -- NULL until the upload completed
  preview        TEXT,                       -- optional inline placeholder (blurhash / tiny data URL)
  status         TEXT    NOT NULL CHECK (status IN ('uploading', 'stored')),
  created_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- A conversation whose log references the media; removed when retention drops the last such entry.
CREATE TABLE media_refs (
  media_id       TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  PRIMARY KEY (media_id, conversation_id)
) WITHOUT ROWID;

ALTER TABLE user_meta ADD COLUMN media_deleted INTEGER NOT NULL DEFAULT 0;
