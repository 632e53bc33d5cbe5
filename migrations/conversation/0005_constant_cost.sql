-- ConversationDO schema v5: a send writes O(1) rows whatever the member count.
-- Unread is derived from running counts (M = messages up to a seq, S_u = a sender's
-- own), member notification is one tick per window (no per-member outbox row per
-- message), and members have slots that place them in the notification shard tree.
-- Counts start at the first retained entry: only differences above the floor are used.

ALTER TABLE conversation ADD COLUMN msg_count INTEGER NOT NULL DEFAULT 0;     -- M(head)
ALTER TABLE conversation ADD COLUMN floor_mcount INTEGER NOT NULL DEFAULT 0;  -- M(floor)
ALTER TABLE conversation ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;  -- current members
ALTER TABLE conversation ADD COLUMN next_slot INTEGER NOT NULL DEFAULT 0;     -- slots ever used (free ones are reused)
ALTER TABLE conversation ADD COLUMN tick INTEGER NOT NULL DEFAULT 0;          -- last completed notification tick
ALTER TABLE conversation ADD COLUMN tick_head INTEGER NOT NULL DEFAULT 0;     -- the head and floor it carried
ALTER TABLE conversation ADD COLUMN tick_floor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation ADD COLUMN floor_senders TEXT NOT NULL DEFAULT '[]'; -- [user, S_u(floor)] removed since that tick
ALTER TABLE conversation ADD COLUMN sends_total INTEGER NOT NULL DEFAULT 0;   -- for the cost figures (admin API)
ALTER TABLE conversation ADD COLUMN send_rows_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation DROP COLUMN version;

ALTER TABLE entries ADD COLUMN mcount INTEGER NOT NULL DEFAULT 0;  -- M(seq)
ALTER TABLE entries ADD COLUMN scount INTEGER;                     -- S_sender(seq); NULL for member entries
UPDATE entries SET mcount = c.m, scount = c.s FROM (
  SELECT seq,
         sum(type = 'message') OVER (ORDER BY seq) AS m,
         CASE WHEN type = 'message' THEN count(*) OVER (PARTITION BY sender_user, type ORDER BY seq) END AS s
  FROM entries
) AS c WHERE c.seq = entries.seq;
-- S_u at any seq: the next own message's scount − 1, or the user's total.
CREATE INDEX entries_sender ON entries (sender_user, seq) WHERE type = 'message';

CREATE TABLE senders (
  user_id        TEXT    PRIMARY KEY,
  total          INTEGER NOT NULL            -- S_u(head)
) WITHOUT ROWID;
INSERT INTO senders (user_id, total) SELECT sender_user, count(*) FROM entries WHERE type = 'message' GROUP BY sender_user;

UPDATE conversation SET msg_count = coalesce((SELECT mcount FROM entries ORDER BY seq DESC LIMIT 1), 0);

-- Members: the derived unread column goes; a slot places each current member in the
-- notification tree; max_received mirrors the user's furthest device (delivery receipts).
ALTER TABLE members DROP COLUMN unread;
ALTER TABLE members ADD COLUMN slot INTEGER;
ALTER TABLE members ADD COLUMN max_received INTEGER NOT NULL DEFAULT 0;
DROP INDEX members_active;
UPDATE members SET slot = s.n FROM (
  SELECT user_id, row_number() OVER (ORDER BY user_id) - 1 AS n FROM members WHERE active = 1
) AS s WHERE s.user_id = members.user_id;
UPDATE members SET max_received = coalesce((SELECT max(d.received) FROM device_cursors d WHERE d.user_id = members.user_id), 0);
CREATE UNIQUE INDEX members_slot ON members (slot) WHERE slot IS NOT NULL;
CREATE INDEX members_read ON members (active, read_seq);
CREATE INDEX members_received ON members (active, max_received);
UPDATE conversation SET
  member_count = (SELECT count(*) FROM members WHERE active = 1),
  next_slot = (SELECT count(*) FROM members WHERE active = 1);
CREATE TABLE free_slots (slot INTEGER PRIMARY KEY);

-- Former members' closed intervals are found by their end (retention tells them the new floor).
CREATE INDEX intervals_to ON intervals (to_seq) WHERE to_seq IS NOT NULL;

ALTER TABLE device_cursors ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE device_cursors ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;  -- ms; a late "forget" spares a newer cursor
UPDATE device_cursors SET active = coalesce((SELECT m.active FROM members m WHERE m.user_id = device_cursors.user_id), 0);
CREATE INDEX device_cursors_received ON device_cursors (active, received);

-- Members owed an exact view of the conversation (joins, leaves, stale or failed ticks),
-- retried with backoff until their UserDO confirms. One row per member at most.
CREATE TABLE notify_targets (
  user_id        TEXT    PRIMARY KEY,
  armed          INTEGER NOT NULL DEFAULT 0,  -- bumped by each new change: a view sent before it confirms nothing
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0,
  first_at       INTEGER NOT NULL             -- when the oldest unconfirmed change was made
) WITHOUT ROWID;
CREATE INDEX notify_targets_due ON notify_targets (next_at);
INSERT INTO notify_targets (user_id, first_at) SELECT user_id, first_at FROM outbox;
DROP TABLE outbox;

-- Member-list versions of the notification leaves (a leaf re-reads its slots when its version moved).
CREATE TABLE leaves (
  leaf           INTEGER PRIMARY KEY,
  version        INTEGER NOT NULL
);

-- Live shard objects holding this conversation's sockets beyond the ones it keeps itself.
CREATE TABLE live_shards (
  shard          INTEGER PRIMARY KEY,
  sockets        INTEGER NOT NULL DEFAULT 0   -- approximate, for placement
);
