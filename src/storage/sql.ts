/**
 * Typed helpers over `ctx.storage.sql`. They always materialise the cursor
 * (`toArray()` / `one()`), so no result outlives an `await`.
 */
export type Row = Record<string, SqlStorageValue>;

export class Sql {
  readonly #sql: SqlStorage;
  constructor(storage: DurableObjectStorage) {
    this.#sql = storage.sql;
  }

  all<T extends Row>(query: string, ...params: SqlStorageValue[]): T[] {
    return this.#sql.exec<T>(query, ...params).toArray();
  }

  first<T extends Row>(query: string, ...params: SqlStorageValue[]): T | undefined {
    return this.#sql.exec<T>(query, ...params).toArray()[0];
  }

  one<T extends Row>(query: string, ...params: SqlStorageValue[]): T {
    return this.#sql.exec<T>(query, ...params).one();
  }

  /** Runs a write; returns the number of rows it changed. */
  run(query: string, ...params: SqlStorageValue[]): number {
    const cursor = this.#sql.exec(query, ...params);
    cursor.toArray();
    return cursor.rowsWritten;
  }
}
