import type { Migration } from "../storage/migrate";
import v1 from "../../migrations/conversation/0001_init.sql";

export const CONVERSATION_MIGRATIONS: readonly Migration[] = [{ version: 1, sql: v1 }];
