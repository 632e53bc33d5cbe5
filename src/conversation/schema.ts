import type { Migration, Schema } from "../platform/schema";
import v1 from "../../migrations/conversation/0001_init.sql";
import v2 from "../../migrations/conversation/0002_retention.sql";
import v3 from "../../migrations/conversation/0003_media.sql";
import v4 from "../../migrations/conversation/0004_idempotency.sql";
import v5 from "../../migrations/conversation/0005_constant_cost.sql";
import v6 from "../../migrations/conversation/0006_entry_keys.sql";
import baseline from "../../migrations/conversation/schema.sql";

export const CONVERSATION_MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: v1 },
  { version: 2, sql: v2 },
  { version: 3, sql: v3 },
  { version: 4, sql: v4 },
  { version: 5, sql: v5 },
  { version: 6, sql: v6 },
];

export const CONVERSATION_SCHEMA: Schema = { migrations: CONVERSATION_MIGRATIONS, baseline: { version: 6, sql: baseline } };
