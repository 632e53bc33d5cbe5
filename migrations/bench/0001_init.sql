-- BenchDO schema v1: the raw limit a conversation is measured against (bench only).
CREATE TABLE raw_entries (
  seq            INTEGER PRIMARY KEY,
  body           TEXT    NOT NULL,
  created_at     INTEGER NOT NULL
);
