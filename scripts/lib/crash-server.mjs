/**
 * A `wrangler dev` that can be SIGKILLed as a whole and restarted on the same
 * state, for scripts/crash-test.mjs.
 *
 * The server is spawned detached (its own session and process group, as
 * `setsid` does), so `process.kill(-pid, "SIGKILL")` takes wrangler, its
 * esbuild and the workerd it runs down at once, with no chance to flush
 * anything: a power cut, as far as the Worker can tell. Only 127.0.0.1.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/**
 * fetch that settles within `ms` even when undici ignores the abort (a socket of a
 * SIGKILLed server can leave it waiting): the timer rejects the call itself.
 */
function fetchWithin(url, ms) {
  const controller = new AbortController();
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`no answer from ${url} within ${ms} ms`));
    }, ms);
  });
  return Promise.race([fetch(url, { signal: controller.signal }), expired]).finally(() => clearTimeout(timer));
}

export const HOST = "127.0.0.1";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

export class DevServer {
  /**
   * @param {{ root: string, persistTo: string, logPath: string, readyMs?: number }} opts
   */
  constructor(opts) {
    this.root = opts.root;
    this.persistTo = opts.persistTo;
    this.logPath = opts.logPath;
    this.readyMs = opts.readyMs ?? 120_000;
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
    this.port = await freePort();
    const inspector = await freePort();
    const bin = join(this.root, "node_modules", ".bin", "wrangler");
    const args = ["dev", "--ip", HOST, "--port", String(this.port), "--inspector-port", String(inspector), "--persist-to", this.persistTo];
    const log = openSync(this.logPath, "a");
    const child = spawn(bin, args, {
      cwd: this.root,
      detached: true, // setsid(): its own process group, killed as one below
      stdio: ["ignore", log, log],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", NO_COLOR: "1", CI: "1" },
    });
    closeSync(log);
    this.child = child;
    this.starts += 1;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    let gone = false;
    void this.exited.then(() => (gone = true));
    const deadline = Date.now() + this.readyMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`wrangler dev exited before it was ready (see ${this.logPath})`);
      try {
        const res = await fetchWithin(`${this.url}/healthz`, 2000);
        if (res.status === 200) return;
        await res.arrayBuffer();
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`wrangler dev was not ready within ${this.readyMs} ms (see ${this.logPath})`);
  }

  /** SIGKILL to the whole process group; resolves once the leader is gone and the port refuses. */
  async kill() {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch (err) {
      if (err.code !== "ESRCH") throw err;
    }
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

  /** Graceful-ish stop for the end of the run: SIGTERM to the group, then SIGKILL. */
  async stop() {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      // already gone
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    if (!done) await Promise.race([this.exited, sleep(5000)]);
    this.child = null;
  }
}
