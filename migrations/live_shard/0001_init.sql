-- LiveShardDO schema v1: the last seq this shard forwarded to its sockets, so a
-- shard woken from hibernation still spots a batch it missed.
CREATE TABLE shard_state (
  singleton      INTEGER PRIMARY KEY CHECK (singleton = 1),
  last_seq       INTEGER NOT NULL
);
