#!/usr/bin/env node
/**
 * `npm start`: the local dev server.
 *
 * Runs `wrangler dev` (the project's own node_modules/.bin/wrangler) offline
 * (WRANGLER_SEND_METRICS=false, CLOUDFLARE_CF_FETCH_ENABLED=false) on
 * 127.0.0.1:$PORT and the local push receiver (scripts/push-receiver.mjs) next
 * to it, after printing the URLs and two ready-to-use dev tokens.
 *
 * Environment:
 *   PORT                the Worker's port on 127.0.0.1 (default 8787): the API, the
 *                       demo at / and the operator dashboard at /admin.
 *   PERSIST_TO          where wrangler keeps the local Durable Object, R2 and queue
 *                       state, relative to the project root: default .wrangler/state,
 *                       or .wrangler/state-<PORT> when PORT is not 8787. Two
 *                       instances must not share one (two wrangler dev processes
 *                       on one state directory corrupt it): while an instance
 *                       runs, <PERSIST_TO>/npm-start.lock makes a second one refuse.
 *   PUSH_RECEIVER_PORT  the local push receiver's port (default PORT+2, so 8789).
 *                       The Worker's PUSH_WEBHOOK_URL is pointed at it with
 *                       `--var PUSH_WEBHOOK_URL:http://127.0.0.1:<port>/push`
 *                       (wrangler dev ignores process.env while .dev.vars exists);
 *                       a PUSH_WEBHOOK_URL in .dev.vars off this machine (your own
 *                       push service) is kept. The demo page polls PORT+2, or the
 *                       port in its ?receiver= parameter (the printed demo URL has
 *                       it when it differs).
 *   AUTH_SECRET, PUSH_WEBHOOK_SECRET  when set, override .dev.vars for this run
 *                       (passed on with --var, so the printed tokens and the push
 *                       signatures verify).
 *
 * A second instance next to a running one: `PORT=8797 npm start` (its own state,
 * .wrangler/state-8797, and receiver, 8799). Before printing or building anything
 * this script exits with one line and code 1 when PORT answers /healthz or is
 * taken, when the receiver port is taken, or when PERSIST_TO is locked by a
 * running instance; the line names a free PORT to use instead.
 *
 * One-off steps that run first (building the demo page, which writes
 * public/app.js only when its content changes, so a rebuild never reloads a
 * running server) are listed in `prepare`; a failing step is reported and the
 * server starts anyway.
 * Child processes are listed in `services` below; to run something next to the
 * Worker add an entry there. All children
 * share this process group, get SIGINT/SIGTERM/SIGHUP forwarded, and when any
 * of them exits the others are stopped and this script exits with the code of
 * the first one that ended (128+n when it was killed by signal n).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname, join, resolve } from "node:path";
import { ROOT, mintDevToken, readDevVars, resolveAuthSecret } from "./lib/dev-auth.mjs";
import { HOST, OFFLINE_ENV, WRANGLER_BIN, answersHealthz, fetchWithin, listenError, wranglerDevArgs } from "./lib/dev-server.mjs";

const DEFAULT_PORT = 8787;
/** How long children get to exit after SIGINT/SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

function fail(message) {
  console.error(`start: ${message}`);
  process.exit(1);
}

function parsePort(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) fail(`${name} must be a number between 1 and 65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** The receiver's default port for a Worker port: PORT+2 (PORT-2 at the top of the range). The demo page derives it the same way. */
const receiverPortFor = (p) => (p + 2 <= 65535 ? p + 2 : p - 2);

const port = parsePort("PORT", DEFAULT_PORT);
const receiverPort = parsePort("PUSH_RECEIVER_PORT", receiverPortFor(port));
if (receiverPort === port) fail(`PUSH_RECEIVER_PORT must differ from PORT (both ${port})`);
/**
 * Where wrangler keeps local state: PERSIST_TO, else .wrangler/state (.wrangler/state-<PORT>
 * for another PORT: two wrangler dev processes on one state directory corrupt it).
 */
const PERSIST_DIR = process.env.PERSIST_TO || (port === DEFAULT_PORT ? ".wrangler/state" : `.wrangler/state-${port}`);
/** Written while this instance runs, so a second one on the same PERSIST_TO refuses. */
const LOCK = resolve(ROOT, PERSIST_DIR, "npm-start.lock");
const url = `http://${HOST}:${port}`;
const receiverUrl = `http://${HOST}:${receiverPort}`;

if (!existsSync(WRANGLER_BIN)) fail(`${WRANGLER_BIN} not found: run \`npm ci\` (or \`npm install\`) first`);

// ---------------------------------------------------------------- already running?

/** What holds `p` on 127.0.0.1: `ours` when `isOurs` says so, another program, or null when it is free. */
async function holderOf(p, isOurs, ours) {
  if (await isOurs(`http://${HOST}:${p}`)) return ours;
  const code = await listenError(p);
  if (code === null) return null;
  return code === "EADDRINUSE" ? "another program" : `an error (${code})`;
}

async function answersPushes(base) {
  try {
    const res = await fetchWithin(`${base}/pushes`, 1500);
    return res.status === 200 && Array.isArray(await res.json());
  } catch {
    return false;
  }
}

/** A PORT that is free now with its receiver port, for the hint; null if none is found quickly. */
async function suggestPort() {
  for (let p = port + 10; p <= Math.min(port + 200, 65533); p += 10) {
    if ((await listenError(p)) === null && (await listenError(receiverPortFor(p))) === null) return p;
  }
  return null;
}

/** The lock's { pid, url } when the process that wrote it is still alive. */
function readLock() {
  let lock;
  try {
    lock = JSON.parse(readFileSync(LOCK, "utf8"));
    process.kill(lock.pid, 0);
  } catch (err) {
    return err?.code === "EPERM" ? lock : null; // no lock, unreadable, or its process is gone
  }
  return lock;
}

// Checked before anything is printed or built: a rebuilt public/app.js would make a running
// wrangler dev (it watches the assets) reload and drop its sockets.
const OURS = "offline-delivery";
const instead = async () => `\`PORT=${(await suggestPort()) ?? "<port>"} npm start\``;
const onPort = await holderOf(port, answersHealthz, OURS);
if (onPort === OURS) fail(`offline-delivery is already running on ${url} (GET /healthz answered); not starting it twice. Use that one, stop it, or start a second instance with ${await instead()}.`);
if (onPort) fail(`port ${port} is taken by ${onPort}; not starting. Free it, or use another port: ${await instead()}.`);
const onReceiverPort = await holderOf(receiverPort, answersPushes, "a push receiver (another `npm start`?)");
if (onReceiverPort) fail(`the push receiver port ${receiverPort} is taken by ${onReceiverPort}; not starting. Free it, set PUSH_RECEIVER_PORT, or use another port: ${await instead()}.`);
const holder = readLock();
if (holder) fail(`${PERSIST_DIR} is in use by the instance on ${holder.url} (pid ${holder.pid}): two wrangler dev processes on one state directory corrupt it; not starting. Give this one its own PERSIST_TO, or stop that one (a stale lock: rm ${LOCK}).`);

mkdirSync(dirname(LOCK), { recursive: true });
writeFileSync(LOCK, JSON.stringify({ pid: process.pid, url }));
process.on("exit", () => rmSync(LOCK, { force: true }));

// ---------------------------------------------------------------- configuration

let auth;
try {
  auth = resolveAuthSecret();
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
const devVars = readDevVars();

/** Environment for every child: offline wrangler. */
const childEnv = { ...process.env, ...OFFLINE_ENV };

/**
 * `--var` overrides (wrangler dev ignores process.env while .dev.vars exists):
 * secrets set in the environment (token.mjs and the receiver prefer them, so
 * the printed tokens and the push signatures verify), and PUSH_WEBHOOK_URL
 * pointed at this instance's receiver unless .dev.vars names a push service
 * off this machine.
 */
const vars = {};
for (const key of ["AUTH_SECRET", "PUSH_WEBHOOK_SECRET"]) {
  if (process.env[key] && process.env[key] !== devVars[key]) vars[key] = process.env[key];
}
const isLoopback = (u) => {
  try {
    return ["127.0.0.1", "localhost", "[::1]"].includes(new URL(u).hostname);
  } catch {
    return false;
  }
};
const configuredWebhook = devVars.PUSH_WEBHOOK_URL ?? "";
const webhook = configuredWebhook === "" || isLoopback(configuredWebhook) ? `${receiverUrl}/push` : configuredWebhook;
if (webhook !== configuredWebhook) vars.PUSH_WEBHOOK_URL = webhook;

// Browser apps on any local port may call the API, also for a .dev.vars made before that setting existed.
if (devVars.ALLOWED_ORIGINS === undefined) vars.ALLOWED_ORIGINS = "http://localhost:*,http://127.0.0.1:*";
// The local pace of large conversations' tick rounds (.dev.vars.example says why), also for an older .dev.vars.
if (devVars.NOTIFY_POKES_PER_SECOND === undefined) vars.NOTIFY_POKES_PER_SECOND = "100";

const wranglerArgs = wranglerDevArgs({ port, persistTo: PERSIST_DIR, vars });

/**
 * Processes to run. `command` + `args` are spawned from the project root with
 * `env`; stdio is inherited so their logs interleave on this terminal.
 * @type {{ name: string, command: string, args: string[], env: NodeJS.ProcessEnv }[]}
 */
const services = [
  { name: "wrangler", command: WRANGLER_BIN, args: wranglerArgs, env: childEnv },
  // The local push provider: PUSH_WEBHOOK_URL points at it (above), so offline devices'
  // webhook pushes show up on this terminal (and on the demo page).
  { name: "push-receiver", command: process.execPath, args: [join(ROOT, "scripts", "push-receiver.mjs"), "--port", String(receiverPort)], env: childEnv },
];

/**
 * Steps run to completion before the services start (stdio inherited).
 * @type {{ name: string, command: string, args: string[] }[]}
 */
const prepare = [];
const buildDemo = join(ROOT, "scripts", "build-demo.mjs");
if (existsSync(buildDemo)) prepare.push({ name: "build-demo", command: process.execPath, args: [buildDemo] });

for (const step of prepare) {
  const result = spawnSync(step.command, step.args, { cwd: ROOT, env: childEnv, stdio: "inherit" });
  if (result.status !== 0) {
    const why = result.error ? result.error.message : result.signal ?? `exit code ${result.status}`;
    console.error(`start: ${step.name} failed (${why}); starting the server anyway`);
  }
}

const [aliceToken, bobToken] = await Promise.all([
  mintDevToken({ user: "alice", device: "phone", secret: auth.secret }),
  mintDevToken({ user: "bob", device: "laptop", secret: auth.secret }),
]);

console.log(
  [
    "",
    "offline-delivery dev server",
    `  URL:    ${url}   (health check: ${url}/healthz)`,
    `  state:  ${PERSIST_DIR}/   AUTH_SECRET from ${auth.source}`,
    // The demo page looks for the receiver on its own port + 2 unless ?receiver= says otherwise.
    `  demo:   ${url}/${receiverPort === port + 2 ? "" : `?receiver=${receiverPort}`}   operator dashboard: ${url}/admin#token=dev-admin-token`,
    `  pushes: receiver on ${receiverUrl}/push (GET /pushes lists them)${webhook === `${receiverUrl}/push` ? "" : `; the Worker pushes to ${webhook} (PUSH_WEBHOOK_URL in .dev.vars)`}`,
    "  dev tokens, valid 24 h (more: npm run -s token -- <user> <device>):",
    `    export ALICE=${aliceToken}   # alice/phone`,
    `    export BOB=${bobToken}   # bob/laptop`,
    "  try:",
    `    curl -s -X POST ${url}/v1/conversations -H "authorization: Bearer $ALICE" -H 'content-type: application/json' -d '{"members":["bob"]}'`,
    "",
  ].join("\n"),
);

const running = new Map(); // name -> ChildProcess
let exitCode = null; // set by the first child to end
let stopping = false;

function codeOf(code, signal) {
  if (code !== null) return code;
  return 128 + (osConstants.signals[signal] ?? 0);
}

/**
 * Pids of every descendant of `pid` (Linux /proc; empty elsewhere). Used for
 * SIGKILL, which a child cannot pass on: wrangler's bin shim runs the real CLI
 * as a grandchild, and that runs workerd.
 */
function descendants(pid) {
  const children = new Map(); // ppid -> pids
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces and parens.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function stopAll(signal = "SIGTERM") {
  for (const child of running.values()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const tree = signal === "SIGKILL" ? descendants(child.pid) : [];
    child.kill(signal);
    for (const pid of tree) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

function finishIfDone() {
  if (running.size === 0) process.exit(exitCode ?? 0);
}

for (const service of services) {
  const child = spawn(service.command, service.args, { cwd: ROOT, env: service.env, stdio: "inherit" });
  running.set(service.name, child);
  child.on("error", (err) => {
    console.error(`start: ${service.name} failed to start: ${err.message}`);
    running.delete(service.name);
    exitCode ??= 1;
    if (!stopping) {
      stopping = true;
      stopAll();
    }
    finishIfDone();
  });
  child.on("exit", (code, signal) => {
    running.delete(service.name);
    const status = codeOf(code, signal);
    if (exitCode === null) {
      exitCode = status;
      if (!stopping) console.error(`start: ${service.name} exited (${signal ?? `code ${code}`}); stopping the rest`);
    }
    if (!stopping) {
      stopping = true;
      stopAll();
      setTimeout(() => stopAll("SIGKILL"), STOP_GRACE_MS).unref();
    }
    finishIfDone();
  });
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (stopping) {
      // A second signal while stopping: force it.
      stopAll("SIGKILL");
      return;
    }
    stopping = true;
    stopAll(signal);
    setTimeout(() => stopAll("SIGKILL"), STOP_GRACE_MS).unref();
  });
}
