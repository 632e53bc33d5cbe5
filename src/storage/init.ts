import { migrate, type Migration } from "./migrate";

/**
 * Applies the schema under `blockConcurrencyWhile`. An error is caught inside and
 * rethrown by `check()` outside it, so a failed start does not wedge the input gate
 * and every later call reports the real cause.
 */
export class SchemaGate {
  #error: unknown = null;

  constructor(ctx: DurableObjectState, migrations: readonly Migration[]) {
    void ctx.blockConcurrencyWhile(async () => {
      try {
        migrate(ctx.storage, migrations);
      } catch (err) {
        this.#error = err;
        console.error(JSON.stringify({ event: "schema_failed", error: String(err) }));
      }
    });
  }

  check(): void {
    if (this.#error !== null) throw this.#error;
  }
}
