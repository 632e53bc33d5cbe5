#!/usr/bin/env node
/**
 * `node bench/ab.mjs <refA> <refB|worktree> [kind] [rounds]`: the same request kind against two
 * versions of the Worker, each in its own wrangler dev, in alternating 5 s bursts at 16 in
 * flight, so a noisy machine slows both alike; prints each side's median and B ÷ A, and each side's
 * workerd CPU per request (from one burst's start to that side's next: the background work a
 * burst leaves, such as member notification, counts too), steadier than the rates here.
 * Kinds: send (50-member conversation), page (its history: 50 entries after a cursor, as a
 * reconnecting device reads them), healthz. A diagnostic for one change, not a figure.
 */
import { agent, bodyOf, must, pool, request, token } from "./lib/client.mjs";
import { cpuSnapshot, cpuUsed } from "./lib/cpu.mjs";
import { startWrangler, stopAll } from "./lib/services.mjs";

const [refA = "HEAD", refB = "worktree", kind = "send", roundsArg = "5"] = process.argv.slice(2);
const rounds = Number(roundsArg);
const sides = [];
try {
  for (const ref of [refA, refB]) {
    const w = await startWrangler({}, { srcRef: ref === "worktree" ? null : ref });
    const users = Array.from({ length: 50 }, (_, i) => `ab${i}`);
    const toks = await Promise.all(users.slice(0, 16).map((u, i) => token(u, `d${i}`)));
    await must({ base: w.url, method: "POST", path: "/v1/conversations", token: toks[0], json: { id: "ab", members: users.slice(1) } }, [201]);
    if (kind === "page") await pool(100, 8, (i) => must({ base: w.url, method: "POST", path: "/v1/conversations/ab/messages", token: toks[0], json: { client_msg_id: `h${i}`, body: bodyOf(200) } }, [201]));
    sides.push({ ref, w, toks, rates: [], cpuMs: [], n: 0, last: null });
  }
  // Ends a side's CPU window (its last burst's start until now) and returns the snapshot that starts the next.
  const closeWindow = (side) => {
    const snap = cpuSnapshot({ wrangler: side.w.pid });
    if (side.last) side.cpuMs.push((cpuUsed(side.last.snap, snap).workerd * 1000) / side.last.n);
    return snap;
  };
  const burst = async (side) => {
    const snap = closeWindow(side);
    const a = agent(16);
    const until = Date.now() + 5000;
    let n = 0;
    await pool(16, 16, async (c) => {
      while (Date.now() < until) {
        const i = side.n++;
        const r = kind === "healthz"
          ? await request({ base: side.w.url, agent: a, path: "/healthz" })
          : kind === "page"
          ? await request({ base: side.w.url, agent: a, path: "/v1/conversations/ab/messages?after=50&limit=50", token: side.toks[c] })
          : await request({ base: side.w.url, agent: a, method: "POST", path: "/v1/conversations/ab/messages", token: side.toks[c], json: { client_msg_id: `m${i}`, body: bodyOf(200) } });
        if (r.status < 300) n++;
      }
    });
    a.destroy();
    side.last = { snap, n };
    return n / 5;
  };
  for (const side of sides) await burst(side); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const side of r % 2 ? [...sides].reverse() : sides) side.rates.push(await burst(side));
    console.log(`round ${r + 1}: ${sides.map((s) => `${s.ref} ${s.rates.at(-1).toFixed(0)}/s`).join(", ")}`);
  }
  // The last windows get the time a burst of the other side would have given them.
  for (const side of sides) {
    await new Promise((res) => setTimeout(res, 5000));
    closeWindow(side);
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const [a, b] = sides.map((s) => median(s.rates));
  // The warm-up's window is the first CPU figure: dropped.
  const [ca, cb] = sides.map((s) => median(s.cpuMs.slice(1)));
  console.log(`${kind}, 16 in flight: ${refA} ${a.toFixed(0)}/s, ${refB} ${b.toFixed(0)}/s, ${refB} ÷ ${refA} = ${(b / a).toFixed(2)}`);
  console.log(`workerd CPU per request: ${refA} ${ca.toFixed(2)} ms, ${refB} ${cb.toFixed(2)} ms, ${refA} ÷ ${refB} = ${(ca / cb).toFixed(2)}`);
} finally {
  await stopAll();
}
