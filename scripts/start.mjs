#!/usr/bin/env node
/**
 * `npm start`: the local dev server.
 *
 * Runs `wrangler dev` (the project's own node_modules/.bin/wrangler) offline
 * (WRANGLER_SEND_METRICS=false, CLOUDFLARE_CF_FETCH_ENABLED=false) on
 * 127.0.0.1:$PORT (default 8787), with Durable Object state persisted under
 * .wrangler/state (PERSIST_TO to override), after printing the URL and two
 * ready-to-use dev tokens.
 *
 * One-off steps that run first (e.g. building the demo page) are listed in
 * `prepare`; a failing step is reported and the server starts anyway.
 * Child processes are listed in `services` below; to run something next to the
 * Worker (e.g. a local push-webhook receiver) add an entry there. All children
 * share this process group, get SIGINT/SIGTERM/SIGHUP forwarded, and when any
 * of them exits the others are stopped and this script exits with the code of
 * the first one that ended (128+n when it was killed by signal n).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import { ROOT, mintDevToken, readDevVars, resolveAuthSecret } from "./lib/dev-auth.mjs";

const HOST = "127.0.0.1";
const DEFAULT_PORT = 8787;
/** Where wrangler keeps local Durable Object state; PERSIST_TO overrides (CI uses a throwaway dir). */
const PERSIST_DIR = process.env.PERSIST_TO || ".wrangler/state";
/** How long children get to exit after SIGINT/SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

function fail(message) {
  console.error(`start: ${message}`);
  process.exit(1);
}

function parsePort(raw) {
  if (raw === undefined || raw === "") return DEFAULT_PORT;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) fail(`PORT must be a number between 1 and 65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

const port = parsePort(process.env.PORT);
const url = `http://${HOST}:${port}`;

const wranglerBin = join(ROOT, "node_modules", ".bin", "wrangler");
if (!existsSync(wranglerBin)) fail(`${wranglerBin} not found: run \`npm ci\` (or \`npm install\`) first`);

let auth;
try {
  auth = resolveAuthSecret();
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}

/** Environment for every child: offline wrangler. */
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

const wranglerArgs = ["dev", "--ip", HOST, "--port", String(port), "--persist-to", PERSIST_DIR];
// wrangler dev ignores process.env when .dev.vars exists, so an AUTH_SECRET from
// the environment (which token.mjs prefers) is passed on explicitly; otherwise
// the printed tokens would not verify.
if (process.env.AUTH_SECRET && process.env.AUTH_SECRET !== readDevVars().AUTH_SECRET) {
  wranglerArgs.push("--var", `AUTH_SECRET:${process.env.AUTH_SECRET}`);
}

/**
 * Processes to run. `command` + `args` are spawned from the project root with
 * `env`; stdio is inherited so their logs interleave on this terminal.
 * @type {{ name: string, command: string, args: string[], env: NodeJS.ProcessEnv }[]}
 */
const services = [
  { name: "wrangler", command: wranglerBin, args: wranglerArgs, env: childEnv },
  // The local push provider: .dev.vars points PUSH_WEBHOOK_URL at it, so offline devices'
  // webhook pushes show up on this terminal (and on the demo page).
  { name: "push-receiver", command: process.execPath, args: [join(ROOT, "scripts", "push-receiver.mjs")], env: childEnv },
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
    `  demo:   ${url}/   operator dashboard: ${url}/admin#token=dev-admin-token`,
    "  pushes: webhook receiver on http://127.0.0.1:8789/push (GET /pushes lists them)",
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
