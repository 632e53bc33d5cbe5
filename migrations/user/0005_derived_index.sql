-- UserDO schema v5: the conversation index merges exact views and per-window
-- ticks from each conversation. Each group (head, floor, read, membership) keeps
-- the running counts at its seq, so unread is recomputed here exactly.
-- Old rows get tick = -1: the next tick finds them stale and asks for a view.

ALTER TABLE conversations ADD COLUMN tick INTEGER NOT NULL DEFAULT -1;
ALTER TABLE conversations ADD COLUMN head_m INTEGER NOT NULL DEFAULT 0;   -- [M, S_u] at head_seq
ALTER TABLE conversations ADD COLUMN head_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN floor_m INTEGER NOT NULL DEFAULT 0;  -- at floor_seq
ALTER TABLE conversations ADD COLUMN floor_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN read_m INTEGER NOT NULL DEFAULT 0;   -- at read_seq
ALTER TABLE conversations ADD COLUMN read_s INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN member_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN intervals TEXT NOT NULL DEFAULT '[]';  -- ViewInterval[] above the floor
ALTER TABLE conversations ADD COLUMN last_sender_user TEXT;
ALTER TABLE conversations ADD COLUMN last_sender_device TEXT;
ALTER TABLE conversations DROP COLUMN version;
-- A full sync lists the inbox by activity, newest first.
CREATE INDEX conversations_activity ON conversations (last_activity_at DESC, conversation_id);

-- Conversations that must forget a deleted or expired device's cursor (receipts), retried until confirmed.
CREATE TABLE device_forget (
  conversation_id TEXT   NOT NULL,
  device_id      TEXT    NOT NULL,
  deleted_at     INTEGER NOT NULL,           -- ms; cursors the device set after this are its new life, kept
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, device_id)
) WITHOUT ROWID;
