import type { Migration } from "../storage/migrate";
import v1 from "../../migrations/user/0001_init.sql";

export const USER_MIGRATIONS: readonly Migration[] = [{ version: 1, sql: v1 }];
