#!/usr/bin/env node
/**
 * The nightly model run: many separate vitest processes of the model test
 * (test/model.test.ts), alternating the plain and the sharded config
 * (vitest.sharded.config.ts: NOTIFY_FANOUT=2, LIVE_ROOT_SOCKETS=1), each with a
 * fresh, printed seed. Separate processes because in the local runtime each new
 * Durable Object costs more than the one before within a test file: one process
 * of 2,000 schedules (~15,000 objects) would take many hours; 100 per process
 * take a few minutes each.
 *
 * A failing process does not stop the run: its seed, path and the failing
 * schedule (JSON, replayable with MODEL_SCHEDULE='…') are collected and printed
 * at the end, and the exit code is 1.
 *
 *   node test/model/nightly.mjs                  # 2 configs × 10 rounds × 100 schedules = 2,000
 *   MODEL_NIGHTLY_ROUNDS=25 MODEL_NIGHTLY_RUNS=100 MODEL_NIGHTLY_CONFIGS=sharded node test/model/nightly.mjs
 *
 * Settings: MODEL_NIGHTLY_ROUNDS (10), MODEL_NIGHTLY_RUNS (schedules per
 * process, 100), MODEL_NIGHTLY_CONFIGS ("plain,sharded"), MODEL_NIGHTLY_JOBS
 * (processes at once, 1), MODEL_STEPS (25), MODEL_NIGHTLY_LOGS (a directory for
 * each process's full output; default: a fresh one under the OS temp dir).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const int = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
};
const ROUNDS = int("MODEL_NIGHTLY_ROUNDS", 10);
const RUNS = int("MODEL_NIGHTLY_RUNS", 100);
const JOBS = int("MODEL_NIGHTLY_JOBS", 1);
const STEPS = int("MODEL_STEPS", 25);
const CONFIGS = (process.env.MODEL_NIGHTLY_CONFIGS ?? "plain,sharded").split(",").map((s) => s.trim()).filter(Boolean);
for (const c of CONFIGS) if (c !== "plain" && c !== "sharded") throw new Error(`unknown config ${c} (plain, sharded)`);
const LOGS = process.env.MODEL_NIGHTLY_LOGS ?? mkdtempSync(join(tmpdir(), "model-nightly-"));
mkdirSync(LOGS, { recursive: true });

const jobs = [];
for (let round = 1; round <= ROUNDS; round++) for (const config of CONFIGS) jobs.push({ round, config, seed: (Math.random() * 0x7fffffff) | 0 });

const totals = { processes: 0, schedules: 0, steps: 0, checks: 0, failed: [] };
const started = Date.now();
console.log(`model nightly: ${jobs.length} processes (${CONFIGS.join(" + ")}) × ${RUNS} schedules of ≤ ${STEPS} steps, ${JOBS} at a time; logs in ${LOGS}`);

function runOne(job) {
  return new Promise((resolve) => {
    const env = {
      ...process.env,
      MODEL_RUNS: String(RUNS),
      VITE_MODEL_RUNS: String(RUNS),
      MODEL_BUDGET_MS: "0",
      VITE_MODEL_BUDGET_MS: "0",
      MODEL_SEED: String(job.seed),
      VITE_MODEL_SEED: String(job.seed),
      MODEL_STEPS: String(STEPS),
      VITE_MODEL_STEPS: String(STEPS),
    };
    const args = ["vitest", "run", ...(job.config === "sharded" ? ["-c", "vitest.sharded.config.ts"] : []), "test/model.test.ts", "-t", "random schedules"];
    const t0 = Date.now();
    // Its own process group, so a process that hangs (seen once after a failure, in the pool's teardown) can be stopped whole.
    const child = spawn("npx", args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    let failedAt = null;
    const stop = () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    };
    const deadline = setTimeout(stop, RUNS * 20_000 + 300_000);
    const watch = setInterval(() => {
      // "✓ test/model.test.ts (…)" / "❯ …": the file's result; what follows is teardown (which has hung in the pool).
      if (failedAt === null && (out.includes("model: FAILED") || /[✓❯]\S* test\/model\.test\.ts/.test(out.replace(/\x1b\[[0-9;]*m/g, "")))) failedAt = Date.now();
      // The failure (or vitest's final summary) is printed; give it a minute, then stop a process that does not exit.
      if (failedAt !== null && Date.now() - failedAt > 60_000) stop();
    }, 1000);
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => {
      clearTimeout(deadline);
      clearInterval(watch);
      const log = join(LOGS, `${job.config}-round${job.round}-seed${job.seed}.log`);
      writeFileSync(log, out);
      // eslint-disable-next-line no-control-regex
      const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
      const summary = plain.match(/model: (\d+) schedules, (\d+) steps, \d+ requests, (\d+) checks/);
      const schedules = summary ? Number(summary[1]) : 0;
      totals.processes += 1;
      totals.schedules += schedules;
      totals.steps += summary ? Number(summary[2]) : 0;
      totals.checks += summary ? Number(summary[3]) : 0;
      const secs = Math.round((Date.now() - t0) / 1000);
      // A process stopped after vitest printed a clean summary passed all the same.
      const passed = code === 0 || (/✓ test\/model\.test\.ts/.test(plain) && !/model: FAILED|Failed Tests/.test(plain));
      if (passed) {
        console.log(`  ok    ${job.config.padEnd(7)} round ${job.round} seed ${job.seed}: ${schedules} schedules in ${secs} s`);
      } else {
        const failure = plain.match(/model: FAILED seed (-?\d+) path (\S+) at step (\d+)/);
        const schedule = plain.match(/MODEL_SCHEDULE='(\{.*?\})'/);
        const cause = plain.match(/Caused by: Error: (step \d+\/\d+[^\n]*\n[^\n]*)/) ?? plain.match(/model: FAILED [^\n]*?: (step \d+\/\d+[^\n]*\n[^\n]*)/);
        totals.failed.push({ ...job, log, path: failure?.[2] ?? "?", step: failure?.[3] ?? "?", schedule: schedule?.[1] ?? null, cause: cause?.[1] ?? `exit ${code}` });
        console.log(`  FAIL  ${job.config.padEnd(7)} round ${job.round} seed ${job.seed} path ${failure?.[2] ?? "?"} (${secs} s): ${(cause?.[1] ?? `exit ${code}`).split("\n").join(" | ")}`);
      }
      resolve();
    });
  });
}

const queue = [...jobs];
await Promise.all(
  Array.from({ length: JOBS }, async () => {
    while (queue.length > 0) await runOne(queue.shift());
  }),
);

const mins = ((Date.now() - started) / 60_000).toFixed(1);
console.log(`model nightly: ${totals.processes} processes, ${totals.schedules} schedules, ${totals.steps} steps, ${totals.checks} checks in ${mins} min; ${totals.failed.length} failed`);
for (const f of totals.failed) {
  console.log(`\n${f.config} seed ${f.seed} path ${f.path}, step ${f.step}: ${f.cause}\n  log: ${f.log}`);
  console.log(`  replay: MODEL_SEED=${f.seed} VITE_MODEL_SEED=${f.seed} MODEL_PATH=${f.path} VITE_MODEL_PATH=${f.path} npx vitest run ${f.config === "sharded" ? "-c vitest.sharded.config.ts " : ""}test/model.test.ts`);
  if (f.schedule) console.log(`  schedule: ${f.schedule}`);
}
process.exit(totals.failed.length > 0 ? 1 : 0);
