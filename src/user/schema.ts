import type { Migration, Schema } from "../platform/schema";
import v1 from "../../migrations/user/0001_init.sql";
import v2 from "../../migrations/user/0002_push.sql";
import v3 from "../../migrations/user/0003_media.sql";
import v4 from "../../migrations/user/0004_tickets.sql";
import v5 from "../../migrations/user/0005_derived_index.sql";
import v6 from "../../migrations/user/0006_paced.sql";
import v7 from "../../migrations/user/0007_poke_rows.sql";
import baseline from "../../migrations/user/schema.sql";

export const USER_MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: v1 },
  { version: 2, sql: v2 },
  { version: 3, sql: v3 },
  { version: 4, sql: v4 },
  { version: 5, sql: v5 },
  { version: 6, sql: v6 },
  { version: 7, sql: v7 },
];

export const USER_SCHEMA: Schema = { migrations: USER_MIGRATIONS, baseline: { version: 7, sql: baseline } };
