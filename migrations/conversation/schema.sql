-- The schema migrations 0001–0006 end at, in one file: a new ConversationDO starts
-- from it (one transaction of 27 statements instead of replaying 66, ALTERs and
-- table moves among them) and then applies any numbered migration after 0006.
-- Columns keep the order the migrations leave them in. test/schema.test.ts checks
-- that it equals what the numbered files build. When a new numbered file lands,
-- this one may stay as it is (new objects apply the new file after it) or be
-- brought up to date together with its version in src/conversation/schema.ts.

CREATE TABLE conversation (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  id             TEXT    NOT NULL,
  epoch          TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,           -- ms since epoch
  created_by     TEXT    NOT NULL,
  head_seq       INTEGER NOT NULL,           -- newest seq (gapless from 1)
  floor_seq      INTEGER NOT NULL DEFAULT 0, -- entries <= floor were removed by retention
  max_age_seconds INTEGER,
  max_messages   INTEGER,
  expired_total  INTEGER NOT NULL DEFAULT 0, -- entries removed by retention
  unavailable_total INTEGER NOT NULL DEFAULT 0, -- entries devices asked for but retention had removed
  msg_count      INTEGER NOT NULL DEFAULT 0, -- M(head)
  floor_mcount   INTEGER NOT NULL DEFAULT 0, -- M(floor)
  member_count   INTEGER NOT NULL DEFAULT 0, -- current members
  next_slot      INTEGER NOT NULL DEFAULT 0, -- slots ever used (free ones are reused)
  tick           INTEGER NOT NULL DEFAULT 0, -- last completed notification tick
  tick_head      INTEGER NOT NULL DEFAULT 0, -- the head and floor it carried
  tick_floor     INTEGER NOT NULL DEFAULT 0,
  floor_senders  TEXT    NOT NULL DEFAULT '[]', -- [user, S_u(floor)] removed since that tick
  sends_total    INTEGER NOT NULL DEFAULT 0, -- for the cost figures (admin API)
  send_rows_total INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE entries (
  seq            INTEGER PRIMARY KEY,
  msg_id         TEXT    NOT NULL,
  type           TEXT    NOT NULL CHECK (type IN ('message', 'member')),
  sender_user    TEXT    NOT NULL,
  sender_device  TEXT    NOT NULL,
  client_msg_id  TEXT,
  body           TEXT    NOT NULL,           -- JSON
  created_at     INTEGER NOT NULL,
  attachments    TEXT,                       -- JSON array of attachment metadata, NULL when none
  mcount         INTEGER NOT NULL DEFAULT 0, -- M(seq)
  scount         INTEGER                     -- S_sender(seq); NULL for member entries
);
CREATE INDEX entries_sender ON entries (sender_user, seq) WHERE type = 'message';
CREATE UNIQUE INDEX entries_key ON entries (sender_user, sender_device, client_msg_id)
  WHERE client_msg_id IS NOT NULL;

CREATE TABLE intervals (
  user_id        TEXT    NOT NULL,
  from_seq       INTEGER NOT NULL,           -- the member entry that added them
  to_seq         INTEGER,                    -- the member entry that removed them; NULL = current
  PRIMARY KEY (user_id, from_seq)
) WITHOUT ROWID;
CREATE INDEX intervals_to ON intervals (to_seq) WHERE to_seq IS NOT NULL;

CREATE TABLE members (
  user_id        TEXT    PRIMARY KEY,
  active         INTEGER NOT NULL,           -- 1 while a current member
  read_seq       INTEGER NOT NULL DEFAULT 0,
  slot           INTEGER,
  max_received   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE UNIQUE INDEX members_slot ON members (slot) WHERE slot IS NOT NULL;
CREATE INDEX members_read ON members (active, read_seq);
CREATE INDEX members_received ON members (active, max_received);
CREATE TABLE free_slots (slot INTEGER PRIMARY KEY);

CREATE TABLE device_cursors (
  user_id        TEXT    NOT NULL,
  device_id      TEXT    NOT NULL,
  received       INTEGER NOT NULL,
  active         INTEGER NOT NULL DEFAULT 1,
  updated_at     INTEGER NOT NULL DEFAULT 0, -- ms; a late "forget" spares a newer cursor
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
CREATE INDEX device_cursors_received ON device_cursors (active, received);

CREATE TABLE expired_undelivered (
  sender_user    TEXT    NOT NULL,
  recipient_user TEXT    NOT NULL,
  recipient_device TEXT  NOT NULL,
  entries        INTEGER NOT NULL,
  last_seq       INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (sender_user, recipient_user, recipient_device)
) WITHOUT ROWID;

CREATE TABLE retention_reported (
  user_id        TEXT    NOT NULL,
  device_id      TEXT    NOT NULL,
  up_to          INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

CREATE TABLE media_refs (
  media_id       TEXT    NOT NULL,
  seq            INTEGER NOT NULL,
  PRIMARY KEY (media_id, seq)
) WITHOUT ROWID;

CREATE TABLE media_released (
  media_id       TEXT    PRIMARY KEY,
  owner          TEXT    NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE idempotency (
  sender_user    TEXT    NOT NULL,
  sender_device  TEXT    NOT NULL,
  client_msg_id  TEXT    NOT NULL,
  seq            INTEGER NOT NULL,
  msg_id         TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (sender_user, sender_device, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX idempotency_seq ON idempotency (seq);

CREATE TABLE senders (
  user_id        TEXT    PRIMARY KEY,
  total          INTEGER NOT NULL            -- S_u(head)
) WITHOUT ROWID;

CREATE TABLE notify_targets (
  user_id        TEXT    PRIMARY KEY,
  armed          INTEGER NOT NULL DEFAULT 0, -- bumped by each new change: a view sent before it confirms nothing
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0,
  first_at       INTEGER NOT NULL            -- when the oldest unconfirmed change was made
) WITHOUT ROWID;
CREATE INDEX notify_targets_due ON notify_targets (next_at);

CREATE TABLE leaves (
  leaf           INTEGER PRIMARY KEY,
  version        INTEGER NOT NULL
);

CREATE TABLE live_shards (
  shard          INTEGER PRIMARY KEY,
  sockets        INTEGER NOT NULL DEFAULT 0  -- approximate, for placement
);
