/**
 * Numbered SQL migrations for a Durable Object's SQLite storage, applied under
 * `blockConcurrencyWhile` before the first event. The applied version is
 * recorded in `_schema`, so a woken object runs DDL only when its code is newer
 * than its data. Shipped files are never edited (test/schema.test.ts).
 *
 * A class may also ship a baseline: the schema its migrations end at, in one
 * file. A new object starts from it (one transaction of CREATEs instead of every
 * ALTER in the history: creating UserDOs is most of what adding members costs)
 * and applies the numbered files after it. test/schema.test.ts checks that the
 * baseline builds what the numbered files build.
 */
import { log } from "./log";

export interface Migration {
  version: number;
  sql: string;
}

export interface Schema {
  migrations: readonly Migration[];
  /** The schema after migration `version`, for objects that have none yet. */
  baseline?: Migration;
}

export function migrate(storage: DurableObjectStorage, schema: Schema): number {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  let current = sql.exec<{ version: number | null }>("SELECT max(version) AS version FROM _schema").one().version;
  // No version yet: a new object (a migration records its version in the same transaction as its DDL).
  const start = schema.baseline;
  if (current === null && start) {
    storage.transactionSync(() => {
      sql.exec(start.sql);
      sql.exec("INSERT INTO _schema (version) VALUES (?)", start.version);
    });
    current = start.version;
  }
  current ??= 0;
  for (const m of [...schema.migrations].sort((a, b) => a.version - b.version)) {
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
    private readonly schema: Schema,
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
      migrate(this.ctx.storage, this.schema);
      this.#error = null;
    } catch (err) {
      this.#error = err;
      log("schema_failed", { error: String(err) }, "error");
    }
  }
}
