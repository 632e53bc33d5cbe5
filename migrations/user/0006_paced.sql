-- UserDO schema v6: conversations whose ticks come paced over a round (large
-- ones): a device's sync asks those for an exact view instead of waiting. And
-- device forgets the conversation confirmed stay a short while (done_at), so an
-- ack of the device's new life that raced the forget settles it again.

ALTER TABLE conversations ADD COLUMN paced INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversations_paced ON conversations (last_activity_at DESC) WHERE paced = 1 AND membership = 'member';
ALTER TABLE device_forget ADD COLUMN done_at INTEGER;
