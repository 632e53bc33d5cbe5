/**
 * Numbered SQL migrations for a Durable Object's SQLite storage, applied under
 * `blockConcurrencyWhile` before the first event. The applied version is
 * recorded in `_schema`, so a woken object runs DDL only when its code is newer
 * than its data. Shipped files are never edited (test/schema.test.ts).
 */
import { log } from "./log";

export interface Migration {
  version: number;
  sql: string;
}

export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number | null }>("SELECT max(version) AS version FROM _schema").one();
  let current = row.version ?? 0;
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    storage.transactionSync(() => {
      sql.exec(m.sql);
      sql.exec("INSERT INTO _schema (version) VALUES (?)", m.version);
    });
    current = m.version;
  }
  return current;
}

/**
 * Applies the schema under `blockConcurrencyWhile`. An error is caught inside, so a
 * failed start does not wedge the input gate; `check()` (at the top of every
 * handler) tries again, so a transient failure (SQLite out of memory under load)
 * heals with the next call instead of leaving the object broken until eviction.
 */
export class SchemaGate {
  #error: unknown = null;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly migrations: readonly Migration[],
  ) {
    void ctx.blockConcurrencyWhile(async () => this.#apply());
  }

  check(): void {
    if (this.#error === null) return;
    this.#apply();
    if (this.#error !== null) throw this.#error;
  }

  #apply(): void {
    try {
      migrate(this.ctx.storage, this.migrations);
      this.#error = null;
    } catch (err) {
      this.#error = err;
      log("schema_failed", { error: String(err) }, "error");
    }
  }
}
