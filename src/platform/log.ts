/**
 * Structured JSON logs: one line per event, machine-readable in `wrangler tail`
 * and Logpush. The level comes from the LOG_LEVEL setting (tests run "info", as
 * wrangler.toml does, and drop the lines before Vitest sees them: test/quiet-events.ts).
 */
export type LogLevel = "debug" | "info" | "error" | "silent";

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, error: 2, silent: 3 };
let threshold: LogLevel = "info";

/** Called by every entry point with the environment's LOG_LEVEL. */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

export function log(event: string, fields: Record<string, unknown> = {}, level: Exclude<LogLevel, "silent"> = "info"): void {
  if (RANK[level] < RANK[threshold]) return;
  const line = JSON.stringify({ event, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
}
