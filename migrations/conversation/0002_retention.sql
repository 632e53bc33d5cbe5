-- ConversationDO schema v2: retention accounting and the undelivered-expiry receipt.

ALTER TABLE conversation ADD COLUMN expired_total INTEGER NOT NULL DEFAULT 0;      -- entries removed by retention
ALTER TABLE conversation ADD COLUMN unavailable_total INTEGER NOT NULL DEFAULT 0;  -- entries devices asked for but retention had removed

-- Mirror of each device's `received` cursor here (the UserDO holds the truth), so
-- retention can tell which removed entries a device never received.
CREATE TABLE device_cursors (
  user_id        TEXT    NOT NULL,
  device_id      TEXT    NOT NULL,
  received       INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

-- The receipt: per sender, per recipient device, messages removed before that device received them.
-- recipient_device '*' = the recipient had no device that ever acknowledged anything here.
CREATE TABLE expired_undelivered (
  sender_user    TEXT    NOT NULL,
  recipient_user TEXT    NOT NULL,
  recipient_device TEXT  NOT NULL,
  entries        INTEGER NOT NULL,
  last_seq       INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (sender_user, recipient_user, recipient_device)
) WITHOUT ROWID;

-- How far each device has already been told about retention gaps (so unavailability is counted once).
CREATE TABLE retention_reported (
  user_id        TEXT    NOT NULL,
  device_id      TEXT    NOT NULL,
  up_to          INTEGER NOT NULL,
  PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
