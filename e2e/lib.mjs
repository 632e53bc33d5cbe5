/**
 * Shared plumbing of the browser tests (e2e/run.mjs, e2e/dashboard.mjs): Debian's
 * Chromium settings, a throwaway `wrangler dev` in its own process group, and
 * small waiting and assertion helpers.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDevVars } from "../scripts/lib/dev-auth.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
/** Without the background-networking flags Chromium keeps dialling out, and this machine refuses it. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const uid = (p) => `${p}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(what, pred, ms = 30_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 400)})`);
    await sleep(every);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/**
 * Starts `wrangler dev` on a free port with a throwaway --persist-to dir, detached
 * (setsid: wrangler and workerd share a new process group, stopped as one).
 * E2E_KEEP=1 keeps the dir and the wrangler log.
 */
export async function startServer(prefix) {
  ensureDevVars();
  const port = await freePort();
  const inspector = await freePort();
  const persist = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const logPath = join(persist, "wrangler.log");
  const log = openSync(logPath, "a");
  const child = spawn(
    join(ROOT, "node_modules", ".bin", "wrangler"),
    ["dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector), "--persist-to", join(persist, "state"), "--show-interactive-dev-session=false"],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", log, log],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "1" },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const signal of ["SIGTERM", "SIGKILL"]) {
      try {
        process.kill(-child.pid, signal);
      } catch {
        break; // the group is gone
      }
      await sleep(signal === "SIGTERM" ? 1500 : 200);
    }
    if (!process.env.E2E_KEEP) rmSync(persist, { recursive: true, force: true });
    else console.log(`kept ${persist} (wrangler log: ${logPath})`);
  };
  try {
    await waitFor("wrangler dev /healthz", async () => {
      if (child.exitCode !== null) throw new Error(`wrangler exited ${child.exitCode}: ${readFileSync(logPath, "utf8").slice(-2000)}`);
      const res = await fetch(`${url}/healthz`);
      return res.ok;
    }, 120_000, 250);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop, logPath };
}
