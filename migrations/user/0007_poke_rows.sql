-- UserDO schema v7: a poke writes only its conversation's index row. The poke
-- count moves onto that row (user_meta.pokes keeps the pokes that changed no
-- row, and the count from before), and the sync position is the highest row
-- position, which the unique index answers: every position ever taken was
-- saved on a row in the same transaction, so the two were always equal.

ALTER TABLE conversations ADD COLUMN pokes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_meta DROP COLUMN change_pos;
