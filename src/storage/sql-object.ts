/**
 * Base for this project's Durable Objects: SQLite storage with numbered
 * migrations applied under `blockConcurrencyWhile` before the first event.
 * Subclasses call `ready()` at the top of every handler; a failed start is
 * reported there instead of wedging the object's input gate.
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { SchemaGate } from "./init";
import type { Migration } from "./migrate";
import { Sql } from "./sql";

export abstract class SqlDurableObject extends DurableObject<Env> {
  protected readonly sql: Sql;
  readonly #gate: SchemaGate;

  constructor(ctx: DurableObjectState, env: Env, migrations: readonly Migration[]) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage);
    this.#gate = new SchemaGate(ctx, migrations);
  }

  /** Throws the start-up error, if the schema could not be applied. */
  protected ready(): void {
    this.#gate.check();
  }
}
