/**
 * Numbered SQL migrations for a Durable Object's SQLite storage.
 * The applied version is recorded in `_schema`, so a woken object runs DDL only
 * when its code is newer than its data. Shipped files are never edited.
 */
export interface Migration {
  version: number;
  sql: string;
}

export function migrate(storage: DurableObjectStorage, migrations: readonly Migration[]): number {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT max(version) AS version FROM _schema").one();
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
