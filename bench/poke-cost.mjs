#!/usr/bin/env node
/**
 * `node bench/poke-cost.mjs [members] [rounds]`: what one member poke costs this machine
 * under wrangler dev. One conversation of `members` (default 1,000: paced locally, its
 * tick round spread at NOTIFY_POKES_PER_SECOND), nothing else running; after its
 * creation views are done, one message per round, then the product's workerd CPU over
 * the round (members ÷ pace seconds), split into user and kernel time. Locally every
 * poke (a leaf's call, the UserDO's transaction and its SQLite commit, each UserDO in its
 * own file) runs in the one workerd process the sends run in. A diagnostic for
 * BENCHMARKS.md "Size", not a figure of the run. BENCH_SRC=<ref> measures that
 * commit's sources instead (as in bench/profile.mjs).
 */
import { readDevVars } from "../scripts/lib/dev-auth.mjs";
import { must, sleep, token } from "./lib/client.mjs";
import { cpuSnapshot, cpuUsed } from "./lib/cpu.mjs";
import { startWrangler, stopAll } from "./lib/services.mjs";

const members = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 2);
const pace = Number(readDevVars().NOTIFY_POKES_PER_SECOND ?? 2000);
const w = await startWrangler({}, { srcRef: process.env.BENCH_SRC || null });
try {
  const users = Array.from({ length: members }, (_, i) => `pc${i}`);
  const owner = await token(users[0], "d0");
  await must({ base: w.url, method: "POST", path: "/v1/conversations", token: owner, json: { id: "pc", members: users.slice(1, 1000) } }, [201], { attempts: 50 });
  for (let i = 1000; i < members; i += 1000) {
    await must({ base: w.url, method: "POST", path: "/v1/conversations/pc/members", token: owner, json: { add: users.slice(i, i + 1000) }, timeoutMs: 600_000 }, [200], { attempts: 50 });
  }
  const roundSeconds = members / pace;
  await sleep(Math.max(5, roundSeconds) * 1000 + 5000); // the creation's views go at the same pace
  for (let r = 0; r < rounds; r++) {
    await must({ base: w.url, method: "POST", path: "/v1/conversations/pc/messages", token: owner, json: { client_msg_id: `r${r}`, body: { text: "round" } } }, [201]);
    const a = cpuSnapshot({ wrangler: w.pid });
    const t0 = performance.now();
    await sleep(roundSeconds * 1000);
    const b = cpuSnapshot({ wrangler: w.pid });
    const s = (performance.now() - t0) / 1000;
    const used = cpuUsed(a, b).workerd;
    const kernel = b._workerdKernel - a._workerdKernel;
    console.log(`round ${r + 1}: ${members} pokes at ${pace}/s in ${s.toFixed(1)} s: workerd ${(used / s).toFixed(2)} cores, ` +
      `${((used * 1000) / members).toFixed(2)} ms per poke (kernel ${((kernel * 1000) / members).toFixed(2)})`);
    await sleep(3000);
  }
} finally {
  await stopAll();
}
