-- PushGateDO schema v1: one object per provider. Counters and the dead-letter record.

CREATE TABLE gate_stats (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  granted        INTEGER NOT NULL DEFAULT 0,
  denied         INTEGER NOT NULL DEFAULT 0,
  delivered      INTEGER NOT NULL DEFAULT 0,
  throttled      INTEGER NOT NULL DEFAULT 0,   -- provider 429s
  server_errors  INTEGER NOT NULL DEFAULT 0,
  dead_tokens    INTEGER NOT NULL DEFAULT 0,
  breaker_trips  INTEGER NOT NULL DEFAULT 0,
  dead_letters   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO gate_stats (singleton) VALUES (1);

-- What died and why; the newest 1000 are kept.
CREATE TABLE dead_letters (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id        TEXT    NOT NULL,
  device_id      TEXT    NOT NULL,
  conversation_id TEXT   NOT NULL,
  attempts       INTEGER NOT NULL,
  reason         TEXT    NOT NULL,
  created_at     INTEGER NOT NULL
);
