/**
 * BenchDO: the runtime's own limit, for `npm run bench` only. Each call is the
 * bare minimum a conversation does: one RPC and one INSERT, or one page SELECT.
 * Every figure in BENCHMARKS.md is also reported as a fraction of this.
 */
import type { Env } from "../env";
import type { Migration } from "../storage/migrate";
import { SqlDurableObject } from "../storage/sql-object";
import v1 from "../../migrations/bench/0001_init.sql";

const MIGRATIONS: readonly Migration[] = [{ version: 1, sql: v1 }];

export class BenchDO extends SqlDurableObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env, MIGRATIONS);
  }

  /** One INSERT, acknowledged after it is durable (like a send). */
  async insert(body: string): Promise<number> {
    this.ready();
    return this.sql.one<{ seq: number }>("INSERT INTO raw_entries (body, created_at) VALUES (?, ?) RETURNING seq", body, Date.now()).seq;
  }

  /** One page SELECT by primary-key range (like a history page). */
  async page(after: number, limit: number): Promise<{ seq: number; body: string; created_at: number }[]> {
    this.ready();
    return this.sql.all("SELECT seq, body, created_at FROM raw_entries WHERE seq > ? ORDER BY seq LIMIT ?", after, limit);
  }

  /** Fills the table quickly (setup for page benchmarks). */
  async fill(count: number, bodyBytes: number): Promise<number> {
    this.ready();
    const body = JSON.stringify({ text: "x".repeat(Math.max(0, bodyBytes - 12)) });
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < count; i++) this.sql.run("INSERT INTO raw_entries (body, created_at) VALUES (?, ?)", body, now);
    });
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM raw_entries").n;
  }
}
