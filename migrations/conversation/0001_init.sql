-- ConversationDO schema v1: the log, membership history, read mirror and outbox.

-- One row: identity, counters and retention policy of this conversation.
CREATE TABLE conversation (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  id             TEXT    NOT NULL,
  epoch          TEXT    NOT NULL,
  created_at     INTEGER NOT NULL,           -- ms since epoch
  created_by     TEXT    NOT NULL,
  head_seq       INTEGER NOT NULL,           -- newest seq (gapless from 1)
  floor_seq      INTEGER NOT NULL DEFAULT 0, -- entries <= floor were removed by retention
  version        INTEGER NOT NULL DEFAULT 0, -- bumps on every change a member's index must see
  max_age_seconds INTEGER,
  max_messages   INTEGER
);

-- The log. seq is the rowid, so range scans are primary-key scans.
CREATE TABLE entries (
  seq            INTEGER PRIMARY KEY,
  msg_id         TEXT    NOT NULL,
  type           TEXT    NOT NULL CHECK (type IN ('message', 'member')),
  sender_user    TEXT    NOT NULL,
  sender_device  TEXT    NOT NULL,
  client_msg_id  TEXT,
  body           TEXT    NOT NULL,           -- JSON
  created_at     INTEGER NOT NULL
);
-- Idempotent send: one entry per (sender user, sender device, client_msg_id).
CREATE UNIQUE INDEX entries_idempotency ON entries (sender_user, sender_device, client_msg_id)
  WHERE client_msg_id IS NOT NULL;

-- Membership history: a user sees exactly the seqs inside their intervals.
CREATE TABLE intervals (
  user_id        TEXT    NOT NULL,
  from_seq       INTEGER NOT NULL,           -- the member entry that added them
  to_seq         INTEGER,                    -- the member entry that removed them; NULL = current
  PRIMARY KEY (user_id, from_seq)
) WITHOUT ROWID;

-- Per-user state derived from the log: current membership, read cursor, exact unread count.
CREATE TABLE members (
  user_id        TEXT    PRIMARY KEY,
  active         INTEGER NOT NULL,           -- 1 while a current member
  read_seq       INTEGER NOT NULL DEFAULT 0,
  unread         INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX members_active ON members (active);

-- At most one row per user: "this user's index must learn about version >= v".
CREATE TABLE outbox (
  user_id        TEXT    PRIMARY KEY,
  version        INTEGER NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0,  -- ms; earliest next delivery attempt
  first_at       INTEGER NOT NULL             -- ms; when the oldest undelivered change was made
) WITHOUT ROWID;
