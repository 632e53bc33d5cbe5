/**
 * Typed helpers over `ctx.storage.sql`. They always materialise the cursor
 * (`toArray()` / `one()`), so no result outlives an `await`, and they count
 * the rows every statement wrote (production bills them; the cost model and
 * the benchmarks read `written`).
 */
export type Row = Record<string, SqlStorageValue>;

export class Sql {
  readonly #sql: SqlStorage;
  /** SQLite rows written through this object since it started. */
  written = 0;

  constructor(storage: DurableObjectStorage) {
    this.#sql = storage.sql;
  }

  all<T extends Row>(query: string, ...params: SqlStorageValue[]): T[] {
    const cursor = this.#sql.exec<T>(query, ...params);
    const rows = cursor.toArray();
    this.written += cursor.rowsWritten;
    return rows;
  }

  first<T extends Row>(query: string, ...params: SqlStorageValue[]): T | undefined {
    return this.all<T>(query, ...params)[0];
  }

  one<T extends Row>(query: string, ...params: SqlStorageValue[]): T {
    const row = this.first<T>(query, ...params);
    if (row === undefined) throw new Error(`expected one row: ${query.slice(0, 80)}`);
    return row;
  }

  /** Runs a write; returns the number of rows it changed. */
  run(query: string, ...params: SqlStorageValue[]): number {
    const cursor = this.#sql.exec(query, ...params);
    cursor.toArray();
    this.written += cursor.rowsWritten;
    return cursor.rowsWritten;
  }
}
