/**
 * The processes a bench run needs: the product's `wrangler dev` and the
 * reference limit's (bench/raw, its own `wrangler dev`), each in its own process
 * group, offline, with temp state; the Socket.IO peer (a child
 * process, so it has a core to itself like workerd) and the webhook receiver
 * (in-process, tiny). Everything started here is stopped by `stopAll()`.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { cpSync, existsSync, mkdirSync, writeFileSync, mkdtempSync, rmSync, openSync, readFileSync, symlinkSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT, ensureDevVars } from "../../scripts/lib/dev-auth.mjs";

const HOST = "127.0.0.1";
const stoppers = [];

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitHttp(url, timeoutMs, isAlive) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (isAlive && !isAlive()) throw new Error(`process exited (or its build failed) before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer in ${timeoutMs} ms (${last})`);
}

/**
 * A private copy of the Worker's sources: others edit src/ while a run is in
 * progress, and wrangler dev restarts the Worker (dropping sockets and
 * in-flight requests) on every change it sees. The run measures this snapshot.
 * `srcRef` (e.g. "HEAD"): take the sources from that commit instead of the work
 * tree (`git archive`, read-only), for a run while the work tree is mid-edit.
 */
const PRODUCT_ENTRIES = ["src", "migrations", "public", "wrangler.toml", "package.json", "tsconfig.json"];
function snapshot(dir, srcRef) {
  if (srcRef) {
    const inRef = execFileSync("git", ["-C", ROOT, "ls-tree", "--name-only", srcRef], { encoding: "utf8" }).split("\n");
    const entries = PRODUCT_ENTRIES.filter((e) => inRef.includes(e));
    const tar = execFileSync("git", ["-C", ROOT, "archive", "--format=tar", srcRef, "--", ...entries], { maxBuffer: 256 * 2 ** 20 });
    execFileSync("tar", ["-x", "-C", dir], { input: tar });
  } else {
    for (const entry of PRODUCT_ENTRIES) {
      const from = join(ROOT, entry);
      if (existsSync(from)) cpSync(from, join(dir, entry), { recursive: true });
    }
  }
  // Not in git: the dev secrets (created from .dev.vars.example when missing).
  if (existsSync(join(ROOT, ".dev.vars"))) cpSync(join(ROOT, ".dev.vars"), join(dir, ".dev.vars"));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
}

/**
 * Runs `wrangler dev` from `codeDir` detached (own process group, killed as one),
 * on a free port with a free inspector port and `--persist-to` a temp dir.
 * `inspector: false`: the same server without the DevTools inspector (bench/lib/dev-quiet.mjs;
 * no `vars`), to measure what wrangler dev's inspector costs.
 */
async function launchWranglerDev({ codeDir, vars = {}, logName, cleanup = [], inspector = true }) {
  if (!inspector && Object.keys(vars).length) throw new Error("dev-quiet.mjs takes no --var");
  const port = await freePort();
  const inspectorPort = inspector ? await freePort() : null;
  const state = mkdtempSync(join(tmpdir(), "bench-state-"));
  const logPath = join(ROOT, "bench", "results", logName);
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, "");
  const out = openSync(logPath, "a");
  const debugLog = join(state, "wrangler-debug.log");
  const wranglerArgs = () => {
    const args = ["dev", "--ip", HOST, "--port", String(port), "--inspector-port", String(inspectorPort), "--persist-to", state, "--log-level", "warn", "--show-interactive-dev-session=false"];
    for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
    return args;
  };
  const [command, argv] = inspector
    ? [join(ROOT, "node_modules", ".bin", "wrangler"), wranglerArgs()]
    : [process.execPath, [join(ROOT, "bench", "lib", "dev-quiet.mjs"), String(port), state]];
  const child = spawn(command, argv, {
    cwd: codeDir,
    detached: true, // setsid: its own process group, killed as one
    stdio: ["ignore", out, out],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "true", WRANGLER_LOG_PATH: debugLog },
  });
  let exited = false;
  child.on("exit", () => (exited = true));
  // Last resort if this process dies without stopAll(): never leave the group running.
  process.on("exit", () => {
    if (!exited) try { process.kill(-child.pid, "SIGKILL"); } catch {}
  });
  const stop = async () => {
    if (!exited) {
      try { process.kill(-child.pid, "SIGTERM"); } catch {}
      for (let i = 0; i < 40 && !exited; i++) await sleep(100);
      try { process.kill(-child.pid, "SIGKILL"); } catch {}
    }
    rmSync(state, { recursive: true, force: true });
    for (const dir of [codeDir, ...cleanup]) rmSync(dir, { recursive: true, force: true });
  };
  stoppers.push(stop);
  const url = `http://${HOST}:${port}`;
  // A build error leaves wrangler dev running (waiting for a fix): fail at once instead of after 90 s.
  const alive = () => {
    if (exited) return false;
    try { if (/Build failed/.test(readFileSync(logPath, "utf8"))) return false; } catch {}
    return true;
  };
  try {
    await waitHttp(`${url}/healthz`, 90_000, alive);
  } catch (err) {
    const log = readFileSync(logPath, "utf8").slice(-3000);
    await stop();
    throw new Error(`${err.message}\n--- wrangler log (${logName}) ---\n${log}`);
  }
  // The user Worker's own address behind wrangler dev's proxy (diagnostics only: where the time goes).
  let directUrl = null;
  for (let i = 0; i < 50 && !directUrl; i++) {
    try {
      const m = inspector
        ? /"userWorkerUrl":\{"protocol":"http:","hostname":"([\d.]+)","port":"(\d+)"/.exec(readFileSync(debugLog, "utf8"))
        : /user Worker on http:\/\/([\d.]+):(\d+)/.exec(readFileSync(logPath, "utf8"));
      if (m) directUrl = `http://${m[1]}:${m[2]}`;
    } catch {}
    if (!directUrl) await sleep(100);
  }
  return { url, directUrl, port, inspectorPort, codeDir, statePath: state, logPath, pid: child.pid, stop };
}

/**
 * Starts the product's `wrangler dev` (from a private snapshot of its sources) with `vars` as --var.
 * @param {Record<string, string>} vars
 * @param {{ srcRef?: string | null, inspector?: boolean }} [opts]
 */
export async function startWrangler(vars, { srcRef = null, inspector = true } = {}) {
  ensureDevVars();
  const code = mkdtempSync(join(tmpdir(), "bench-src-"));
  snapshot(code, srcRef);
  return launchWranglerDev({ codeDir: code, vars, logName: inspector ? "wrangler-last.log" : "wrangler-quiet-last.log", inspector });
}

/**
 * Starts the reference limit, bench/raw (a minimal Worker with one SQLite
 * Durable Object: one RPC + one INSERT, one page SELECT), with its own
 * `wrangler dev` (own port, own persist dir), next to the product's.
 */
export async function startRawWorker({ inspector = true } = {}) {
  const code = mkdtempSync(join(tmpdir(), "bench-raw-"));
  for (const f of ["worker.ts", "wrangler.toml"]) cpSync(join(ROOT, "bench", "raw", f), join(code, f));
  return launchWranglerDev({ codeDir: code, logName: inspector ? "wrangler-raw-last.log" : "wrangler-raw-quiet-last.log", inspector });
}

/** Starts bench/peer/socketio-server.mjs; resolves once it prints its port. */
export async function startSocketIoPeer() {
  const child = spawn(process.execPath, [join(ROOT, "bench", "peer", "socketio-server.mjs")], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = /listening (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`socket.io peer exited (${code})`)));
  });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((r) => { child.once("exit", r); setTimeout(r, 2000); });
    }
  };
  stoppers.push(stop);
  return { url: `http://${HOST}:${port}`, pid: child.pid, stop };
}

/**
 * The webhook push receiver: verifies `x-push-signature`, records each call's
 * arrival time and body. `mode.throttle(untilMs, retryAfterSeconds)` makes it
 * answer 429 with Retry-After until that time.
 */
export async function startWebhookReceiver(secret) {
  const calls = [];
  let throttleUntil = 0;
  let retryAfter = 1;
  let armedMs = 0; // when > 0: the next call starts a throttle window this long
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const expected = createHmac("sha256", secret).update(raw).digest();
      const given = Buffer.from(String(req.headers["x-push-signature"] ?? ""), "hex");
      const signed = given.length === expected.length && timingSafeEqual(given, expected);
      let body = null;
      try { body = JSON.parse(raw.toString("utf8")); } catch {}
      const at = Date.now();
      if (armedMs > 0 && signed) {
        throttleUntil = at + armedMs;
        armedMs = 0;
      }
      const throttled = at < throttleUntil;
      calls.push({ at, signed, throttled, body });
      if (!signed) return void res.writeHead(401).end();
      if (throttled) return void res.writeHead(429, { "retry-after": String(retryAfter) }).end("slow down");
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, HOST, r));
  const { port } = server.address();
  const stop = () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); });
  stoppers.push(stop);
  return {
    url: `http://${HOST}:${port}/push`,
    calls,
    throttle(untilMs, retryAfterSeconds) {
      throttleUntil = untilMs;
      retryAfter = retryAfterSeconds;
      armedMs = 0;
    },
    /** From the next call on, answer 429 + Retry-After for `durationMs`. */
    armThrottle(durationMs, retryAfterSeconds) {
      armedMs = durationMs;
      retryAfter = retryAfterSeconds;
    },
    stop,
  };
}

export async function stopAll() {
  while (stoppers.length) {
    const stop = stoppers.pop();
    try { await stop(); } catch {}
  }
}
