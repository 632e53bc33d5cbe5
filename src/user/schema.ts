import type { Migration } from "../storage/migrate";
import v1 from "../../migrations/user/0001_init.sql";
import v2 from "../../migrations/user/0002_push.sql";
import v3 from "../../migrations/user/0003_media.sql";

export const USER_MIGRATIONS: readonly Migration[] = [
  { version: 1, sql: v1 },
  { version: 2, sql: v2 },
  { version: 3, sql: v3 },
];
