-- ConversationDO schema v4: idempotency keys outlive their entries, so a retry that
-- arrives after retention removed the original is still answered as a duplicate.

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

INSERT INTO idempotency (sender_user, sender_device, client_msg_id, seq, msg_id, created_at)
  SELECT sender_user, sender_device, client_msg_id, seq, msg_id, created_at FROM entries WHERE client_msg_id IS NOT NULL;

DROP INDEX entries_idempotency;
