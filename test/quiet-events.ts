/**
 * Setup file (vitest.config.ts `setupFiles`): the objects' JSON event lines
 * (src/platform/log.ts) are dropped inside the isolate instead of going to
 * Vitest's console.
 *
 * Why not filter them in `onConsoleLog`: Vitest forwards console output to the
 * pool over its control socket. Called from a Durable Object, that send is I/O
 * of another context, so the pool (0.15.1) retries it from the runner object and
 * makes the file wait for it. From an object that was just aborted
 * (abortAllDurableObjects, ctx.abort) that retry never completes, and the file
 * never ends: the run stalls with every test passed (workers-sdk#14180, fixed
 * in pool releases that need Node 22). Aborted objects do log: a tick leaf whose
 * poke failed, an alarm that met the abort.
 *
 * Spies still see every line: `vi.spyOn(console, "log")` wraps the functions set here.
 */
const isEvent = (args: unknown[]) => typeof args[0] === "string" && args[0].startsWith('{"event":');
// Setup files run once per test file; an isolate the pool reuses keeps the console wrapped once.
const wrapped = Symbol.for("offline-delivery.quiet-events");
const marks = globalThis as { [wrapped]?: true };

if (!marks[wrapped]) {
  marks[wrapped] = true;
  for (const level of ["log", "error"] as const) {
    const write = console[level].bind(console);
    console[level] = (...args: unknown[]) => {
      if (!isEvent(args)) write(...args);
    };
  }
}
