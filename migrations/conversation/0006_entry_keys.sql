-- ConversationDO schema v6: a send writes 3 rows (the entry and its two index
-- entries) instead of 5. The idempotency key of a live entry is the entry's own
-- (sender_user, sender_device, client_msg_id), unique by index; `idempotency`
-- keeps only the keys of entries retention removed (until idempotencyKeepMs
-- after they were written, so late retries stay duplicates and receipts still
-- know who wrote a removed entry). A sender's total S_u(head) is the scount of
-- their newest entry; `senders` keeps it only for senders whose every message
-- retention removed (retention writes it, a send never does).

CREATE UNIQUE INDEX entries_key ON entries (sender_user, sender_device, client_msg_id)
  WHERE client_msg_id IS NOT NULL;

DELETE FROM idempotency WHERE seq > coalesce((SELECT floor_seq FROM conversation), 0);
