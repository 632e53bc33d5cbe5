/**
 * `wrangler dev` plumbing shared by scripts/start.mjs (the foreground dev server),
 * scripts/crash-test.mjs and the browser tests (e2e/lib.mjs): the offline
 * environment, the argument list, port probes and bounded fetches, and
 * DevServer, a throwaway `wrangler dev` that can be SIGKILLed as a whole and
 * restarted on the same state.
 *
 * DevServer spawns wrangler detached (its own session and process group, as
 * `setsid` does), so `process.kill(-pid, …)` reaches wrangler, its esbuild and
 * the workerd it runs at once; SIGKILL gives nothing a chance to flush: a power
 * cut, as far as the Worker can tell. Only 127.0.0.1.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { ROOT, ensureDevVars } from "./dev-auth.mjs";

export const HOST = "127.0.0.1";
export const WRANGLER_BIN = join(ROOT, "node_modules", ".bin", "wrangler");
/** wrangler never dials out: no metrics, no request.cf lookup. */
export const OFFLINE_ENV = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `work(signal)` and settles within `ms` even when undici ignores the abort
 * (a socket of a SIGKILLed server can leave it waiting): the timer rejects the
 * call itself, with `reason()` (a TimeoutError by default), and aborts `signal`.
 * An explicit timer, because on Node 20 an AbortSignal.timeout() that nothing
 * else references can be garbage-collected before it fires.
 */
export function within(ms, work, reason = () => new DOMException(`no answer within ${ms} ms`, "TimeoutError")) {
  const controller = new AbortController();
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const err = reason();
      controller.abort(err);
      reject(err);
    }, ms);
  });
  return Promise.race([work(controller.signal), expired]).finally(() => clearTimeout(timer));
}

/** fetch(url) that settles within `ms` (see `within`). */
export const fetchWithin = (url, ms, init = {}) => within(ms, (signal) => fetch(url, { ...init, signal }));

/** A port nobody listens on right now (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** null when `port` can be listened on at `host` right now, else the error code (EADDRINUSE, EACCES, …). */
export function listenError(port, host = HOST) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", (err) => resolve(err.code ?? String(err)));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(null)));
  });
}

/** True when an offline-delivery Worker answers GET /healthz at `url` with {"ok":true}. */
export async function answersHealthz(url, ms = 1500) {
  try {
    const res = await fetchWithin(`${url}/healthz`, ms);
    const body = await res.text();
    return res.status === 200 && JSON.parse(body)?.ok === true;
  } catch {
    return false;
  }
}

/**
 * `wrangler dev` arguments: 127.0.0.1:`port`, state in `persistTo`, and `vars`
 * as `--var KEY:VALUE` overrides (wrangler dev ignores process.env while a
 * .dev.vars exists, so this is the way to change one value per instance).
 */
export function wranglerDevArgs({ port, persistTo, inspectorPort, vars = {} }) {
  // The demo page: local only (wrangler.toml deploys the API without static assets).
  const args = ["dev", "--ip", HOST, "--port", String(port), "--persist-to", persistTo, "--assets", join(ROOT, "public")];
  if (inspectorPort !== undefined) args.push("--inspector-port", String(inspectorPort));
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  return args;
}

export class DevServer {
  /**
   * @param {{ persistTo: string, logPath: string, readyMs?: number, vars?: Record<string, string> }} opts
   *   `vars` are passed as --var overrides. Unless it names PUSH_WEBHOOK_URL, pushes go
   *   to a port nobody listened on at start, never into the receiver of a developer's `npm start`.
   */
  constructor(opts) {
    this.persistTo = opts.persistTo;
    this.logPath = opts.logPath;
    this.readyMs = opts.readyMs ?? 120_000;
    this.vars = opts.vars ?? {};
    /** @type {import("node:child_process").ChildProcess | null} */
    this.child = null;
    this.exited = null;
    this.port = 0;
    this.starts = 0;
  }

  get url() {
    return `http://${HOST}:${this.port}`;
  }

  /** Starts wrangler dev on fresh free ports and waits for /healthz (bounded). */
  async start() {
    ensureDevVars();
    this.port = await freePort();
    const vars = { PUSH_WEBHOOK_URL: `http://${HOST}:${await freePort()}/push`, ...this.vars };
    const args = [...wranglerDevArgs({ port: this.port, persistTo: this.persistTo, inspectorPort: await freePort(), vars }), "--show-interactive-dev-session=false"];
    const log = openSync(this.logPath, "a");
    const child = spawn(WRANGLER_BIN, args, {
      cwd: ROOT,
      detached: true, // setsid(): its own process group, killed as one below
      stdio: ["ignore", log, log],
      env: { ...process.env, ...OFFLINE_ENV, NO_COLOR: "1", CI: "1" },
    });
    closeSync(log);
    this.child = child;
    this.starts += 1;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    let gone = null;
    void this.exited.then((how) => (gone = how));
    const deadline = Date.now() + this.readyMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`wrangler dev exited (${gone.signal ?? `code ${gone.code}`}) before it was ready; ${this.logPath} ends:\n${this.logTail()}`);
      if (await answersHealthz(this.url, 2000)) return;
      await sleep(200);
    }
    await this.kill();
    throw new Error(`wrangler dev was not ready within ${this.readyMs} ms; ${this.logPath} ends:\n${this.logTail()}`);
  }

  logTail(chars = 2000) {
    try {
      return readFileSync(this.logPath, "utf8").slice(-chars);
    } catch {
      return "(no log)";
    }
  }

  /** Signals the whole process group; false when it is gone. */
  signal(sig) {
    const pid = this.child?.pid;
    if (pid === undefined) return false;
    try {
      process.kill(-pid, sig);
      return true;
    } catch (err) {
      if (err.code !== "ESRCH") throw err;
      return false;
    }
  }

  /** SIGKILL to the whole process group; resolves once the leader is gone and the port refuses. */
  async kill() {
    if (!this.child) return;
    this.signal("SIGKILL");
    await Promise.race([this.exited, sleep(10_000)]);
    // workerd is in the same group; wait (bounded) until nothing answers on the port.
    for (let i = 0; i < 50; i++) {
      try {
        await fetchWithin(`${this.url}/healthz`, 300);
      } catch {
        break;
      }
      await sleep(100);
    }
    this.child = null;
  }

  /** Graceful-ish stop: SIGTERM to the group, up to 5 s for wrangler to exit, then SIGKILL to what is left. */
  async stop() {
    if (!this.child) return;
    this.signal("SIGTERM");
    const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
    this.signal("SIGKILL");
    if (!done) await Promise.race([this.exited, sleep(5000)]);
    this.child = null;
  }
}
