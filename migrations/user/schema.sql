-- The schema migrations 0001–0007 end at, in one file: a new UserDO starts from
-- it (one transaction of 20 statements instead of replaying 48, ALTERs among them,
-- which was most of the cost of adding a new member) and then applies any numbered
-- migration after 0007. Columns keep the order the migrations leave them in.
-- test/schema.test.ts checks that it equals what the numbered files build. When a
-- new numbered file lands, this one may stay as it is (new objects apply the new
-- file after it) or be brought up to date together with its version in src/user/schema.ts.

CREATE TABLE user_meta (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  pokes          INTEGER NOT NULL DEFAULT 0, -- poke calls received (coalescing is measured by it)
  queue_seq      INTEGER NOT NULL DEFAULT 0, -- per-device queue ids: one user-wide sequence, never reused
  user_id        TEXT,
  pushes_enqueued INTEGER NOT NULL DEFAULT 0,
  pushes_converted INTEGER NOT NULL DEFAULT 0,
  media_deleted  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO user_meta (singleton) VALUES (1);

CREATE TABLE devices (
  device_id      TEXT    PRIMARY KEY,
  push_provider  TEXT,
  push_token     TEXT,
  push_json      TEXT,                       -- the whole push target as registered
  created_at     INTEGER NOT NULL,
  last_seen_at   INTEGER NOT NULL,
  dropped        INTEGER NOT NULL DEFAULT 0, -- queue entries lost to the cap or TTL
  last_push_at   INTEGER,                    -- per-device ceiling
  pushed_since_sync INTEGER NOT NULL DEFAULT 0 -- for push-to-sync conversion
) WITHOUT ROWID;

CREATE TABLE conversations (
  conversation_id TEXT   PRIMARY KEY,
  epoch          TEXT    NOT NULL,
  head_seq       INTEGER NOT NULL,           -- highest seq this user may see
  floor_seq      INTEGER NOT NULL,
  read_seq       INTEGER NOT NULL,
  unread         INTEGER NOT NULL,
  membership     TEXT    NOT NULL CHECK (membership IN ('member', 'left')),
  last_activity_at INTEGER,
  change_pos     INTEGER NOT NULL,
  tick           INTEGER NOT NULL DEFAULT -1,
  head_m         INTEGER NOT NULL DEFAULT 0, -- [M, S_u] at head_seq
  head_s         INTEGER NOT NULL DEFAULT 0,
  floor_m        INTEGER NOT NULL DEFAULT 0, -- at floor_seq
  floor_s        INTEGER NOT NULL DEFAULT 0,
  read_m         INTEGER NOT NULL DEFAULT 0, -- at read_seq
  read_s         INTEGER NOT NULL DEFAULT 0,
  member_seq     INTEGER NOT NULL DEFAULT 0,
  intervals      TEXT    NOT NULL DEFAULT '[]', -- ViewInterval[] above the floor
  last_sender_user TEXT,
  last_sender_device TEXT,
  paced          INTEGER NOT NULL DEFAULT 0,
  pokes          INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX conversations_change ON conversations (change_pos);
CREATE INDEX conversations_activity ON conversations (last_activity_at DESC, conversation_id);
CREATE INDEX conversations_paced ON conversations (last_activity_at DESC) WHERE paced = 1 AND membership = 'member';

CREATE TABLE received (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  seq            INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;

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

CREATE TABLE queue_sends (
  from_user      TEXT    NOT NULL,
  from_device    TEXT    NOT NULL,
  client_msg_id  TEXT    NOT NULL,
  queued         INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (from_user, from_device, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX queue_sends_created ON queue_sends (created_at);

CREATE TABLE push_pending (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  head_seq       INTEGER NOT NULL,
  unread         INTEGER NOT NULL,
  first_at       INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;

CREATE TABLE push_sent (
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  sent_at        INTEGER NOT NULL,
  PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;

CREATE TABLE media (
  media_id       TEXT    PRIMARY KEY,
  size           INTEGER NOT NULL,
  mime           TEXT    NOT NULL,
  sha256         TEXT,                       -- NULL until the upload completed
  preview        TEXT,                       -- optional inline placeholder (blurhash / tiny data URL)
  status         TEXT    NOT NULL CHECK (status IN ('uploading', 'stored')),
  created_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE media_refs (
  media_id       TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  PRIMARY KEY (media_id, conversation_id)
) WITHOUT ROWID;

CREATE TABLE tickets (
  ticket_hash    TEXT    PRIMARY KEY,        -- hex SHA-256 of the ticket's secret part
  device_id      TEXT    NOT NULL,
  expires_at     INTEGER NOT NULL            -- ms since epoch
) WITHOUT ROWID;
CREATE INDEX tickets_expiry ON tickets (expires_at);

CREATE TABLE device_forget (
  conversation_id TEXT   NOT NULL,
  device_id      TEXT    NOT NULL,
  deleted_at     INTEGER NOT NULL,           -- ms; cursors the device set after this are its new life, kept
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0,
  done_at        INTEGER,
  PRIMARY KEY (conversation_id, device_id)
) WITHOUT ROWID;
