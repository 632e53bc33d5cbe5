-- UserDO schema v2: push decisions (collapse window, per-device ceiling) and conversion.

ALTER TABLE user_meta ADD COLUMN user_id TEXT;
ALTER TABLE user_meta ADD COLUMN pushes_enqueued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_meta ADD COLUMN pushes_converted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE devices ADD COLUMN last_push_at INTEGER;                          -- per-device ceiling
ALTER TABLE devices ADD COLUMN pushed_since_sync INTEGER NOT NULL DEFAULT 0;  -- for push-to-sync conversion

-- Conversations waiting to be named in this device's next push.
CREATE TABLE push_pending (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  head_seq       INTEGER NOT NULL,
  unread         INTEGER NOT NULL,
  first_at       INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;

-- When this device was last pushed for this conversation (the collapse window).
CREATE TABLE push_sent (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  sent_at        INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;
