/** Structured JSON logs: one line per event, machine-readable in `wrangler tail` and Logpush. */
export function log(event: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ event, ...fields }));
}
