-- UserDO schema v1: devices, the conversation index, cursors and per-device queues.

CREATE TABLE user_meta (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  change_pos     INTEGER NOT NULL DEFAULT 0, -- behind the opaque sync checkpoint
  pokes          INTEGER NOT NULL DEFAULT 0, -- poke calls received (coalescing is measured by it)
  queue_seq      INTEGER NOT NULL DEFAULT 0  -- per-device queue ids: one user-wide sequence, never reused
);
INSERT INTO user_meta (singleton) VALUES (1);

CREATE TABLE devices (
  device_id      TEXT    PRIMARY KEY,
  push_provider  TEXT,
  push_token     TEXT,
  push_json      TEXT,                       -- the whole push target as registered
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  dropped        INTEGER NOT NULL DEFAULT 0  -- queue entries lost to the cap or TTL
) WITHOUT ROWID;

-- The user's conversation index: one row per conversation, a projection of the ConversationDO.
CREATE TABLE conversations (
  conversation_id TEXT   PRIMARY KEY,
  epoch          TEXT    NOT NULL,
  head_seq       INTEGER NOT NULL,           -- highest seq this user may see
  floor_seq      INTEGER NOT NULL,
  read_seq       INTEGER NOT NULL,
  unread         INTEGER NOT NULL,
  membership     TEXT    NOT NULL CHECK (membership IN ('member', 'left')),
  last_activity_at INTEGER,
  version        INTEGER NOT NULL,           -- the ConversationDO's version this row reflects
  change_pos     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX conversations_change ON conversations (change_pos);

CREATE TABLE received (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  seq            INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;

-- Per-device queue (to-device). Explicit ack deletes; TTL and a cap bound it.
CREATE TABLE queue (
  device_id      TEXT    NOT NULL,
  id             INTEGER NOT NULL,
  from_user      TEXT    NOT NULL,
  from_device    TEXT    NOT NULL,
  body           TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (device_id, id)
) WITHOUT ROWID;
CREATE INDEX queue_created ON queue (created_at);

-- Dedupe of to-device sends for the queue TTL: (sender user, sender device, client_msg_id).
CREATE TABLE queue_sends (
  from_user      TEXT    NOT NULL,
  from_device    TEXT    NOT NULL,
  client_msg_id  TEXT    NOT NULL,
  queued         INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (from_user, from_device, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX queue_sends_created ON queue_sends (created_at);
