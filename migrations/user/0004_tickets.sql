-- UserDO schema v4: one-time socket tickets (v1.1). Only a hash of each ticket is
-- kept; a ticket is bound to one device and expires after LIMITS.ticketTtlSeconds.
CREATE TABLE tickets (
  ticket_hash    TEXT    PRIMARY KEY,        -- hex SHA-256 of the ticket's secret part
  device_id      TEXT    NOT NULL,
  expires_at     INTEGER NOT NULL            -- ms since epoch
) WITHOUT ROWID;
CREATE INDEX tickets_expiry ON tickets (expires_at);
