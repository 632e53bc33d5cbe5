#!/usr/bin/env node
/**
 * `node bench/profile.mjs send|page|upgrade|members|pokes|healthz|insert|rawpage|fanout|rawfanout [seconds] [limit]`: a V8
 * CPU profile of our Worker (and its Durable Objects, same isolate under wrangler
 * dev) while the bench drives one request kind at 50 connections; prints self
 * time by function. `insert` and `rawpage` profile the reference limit instead
 * (bench/raw, its own wrangler dev), and `rawfanout` its broadcast to 1,000 sockets.
 * `pokes`: one message's tick round to PROFILE_MEMBERS members (default 1,000) after their
 * UserDOs sat idle past local eviction (~10 s), so each poke wakes its object; the
 * profile runs `seconds` (give it the round: members ÷ NOTIFY_POKES_PER_SECOND).
 * Diagnostics for BENCHMARKS.md "Where the time goes".
 *
 * Options (environment):
 *   DIRECT=1                 drive the user Worker behind wrangler dev's proxy (what the proxy costs)
 *   BENCH_SRC=<ref>          profile that commit's sources
 *   PROFILE_MEMBERS=N        the profiled conversation's size (default 5: the senders; pokes: 1,000)
 *   PROFILE_WARM=1           pokes: a first round wakes every UserDO, the profiled round follows
 *   PROFILE_TOP=N            rows of the self-time table (default 25)
 *   PROFILE_INCLUSIVE=f,g    samples under each named function (inclusive), per request
 *   PROFILE_CALLERS=f        who calls the named function, by samples
 * e.g. `DIRECT=1 PROFILE_MEMBERS=50 PROFILE_INCLUSIVE=send,applyTick node bench/profile.mjs send 8`
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import { readDevVars } from "../scripts/lib/dev-auth.mjs";
import { agent, bodyOf, pool, request, token } from "./lib/client.mjs";
import { startRawWorker, startWrangler, stopAll } from "./lib/services.mjs";

const kind = process.argv[2] ?? "send";
const seconds = Number(process.argv[3] ?? 8);
const limit = Number(process.argv[4] ?? 100);
const onRaw = kind === "insert" || kind === "rawpage" || kind === "rawfanout";
const memberCount = Number(process.env.PROFILE_MEMBERS ?? (kind === "pokes" ? 1000 : 5));
const started = onRaw ? await startRawWorker() : await startWrangler({}, { srcRef: process.env.BENCH_SRC || null });
// DIRECT=1 drives the user Worker behind wrangler dev's proxy (what the proxy costs).
const w = process.env.DIRECT && started.directUrl ? { ...started, url: started.directUrl } : started;
try {
  const list = await (await fetch(`http://127.0.0.1:${w.inspectorPort}/json`)).json();
  const target = list.find((t) => /offline-delivery/.test(t.webSocketDebuggerUrl ?? t.url ?? "")) ?? list[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j); });
  let id = 0;
  const pending = new Map();
  ws.on("message", (d) => { const m = JSON.parse(d); if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } });
  const cdp = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });

  const toks = await Promise.all(Array.from({ length: 50 }, (_, i) => token(`pf${i % 5}`, `d${i}`)));
  const conv = "pf";
  if (onRaw) {
    await request({ base: w.url, method: "POST", path: "/raw/pf/fill?count=2000" });
  } else {
    // PROFILE_MEMBERS=50: the P1 conversation's size (members beyond the five senders have no device).
    const members = Array.from({ length: memberCount - 1 }, (_, i) => `pf${i + 1}`);
    await request({ base: w.url, method: "POST", path: "/v1/conversations", token: toks[0], json: { id: conv, members } });
    for (let i = 0; i < (kind === "pokes" ? 0 : 600); i++) await request({ base: w.url, method: "POST", path: `/v1/conversations/${conv}/messages`, token: toks[0], json: { client_msg_id: `w${i}`, body: bodyOf(200) } }).catch(() => {});
  }
  let sockets = [];
  if (kind === "rawfanout") {
    const { openSocket } = await import("./lib/client.mjs");
    sockets = await pool(1000, 16, async () => openSocket(`${w.url.replace("http", "ws")}/raw/fan/live?after=0`, () => {}));
  }
  if (kind === "fanout") {
    const users = Array.from({ length: 100 }, (_, i) => `fu${i}`);
    const owner = await token(users[0], "sender");
    await request({ base: w.url, method: "POST", path: "/v1/conversations", token: owner, json: { id: "fan", members: users.slice(1) } });
    const { openSocket } = await import("./lib/client.mjs");
    sockets = await pool(1000, 16, async (i) => openSocket(`${w.url.replace("http", "ws")}/v1/conversations/fan/live?access_token=${await token(users[i % 100], `s${Math.floor(i / 100)}`)}`, () => {}));
    for (let i = 0; i < 5; i++) await request({ base: w.url, method: "POST", path: "/v1/conversations/fan/messages", token: owner, json: { client_msg_id: `w${i}`, body: bodyOf(200) } });
  }
  if (kind === "pokes") {
    // The creation's views go out at the local pace; then every UserDO idles past eviction.
    const round = (memberCount / Number(readDevVars().NOTIFY_POKES_PER_SECOND ?? 2000)) * 1000;
    await new Promise((r) => setTimeout(r, round + 15_000));
    if (process.env.PROFILE_WARM) {
      // A first round wakes every UserDO; the profiled one follows before any idles out.
      await request({ base: w.url, method: "POST", path: `/v1/conversations/${conv}/messages`, token: toks[0], json: { client_msg_id: "warm-round", body: bodyOf(200) } });
      await new Promise((r) => setTimeout(r, round + 1000));
    }
  }
  await cdp("Profiler.enable");
  await cdp("Profiler.setSamplingInterval", { interval: 200 });
  await cdp("Profiler.start");
  const a = agent(kind.includes("page") ? 1 : 50);
  const until = Date.now() + seconds * 1000;
  let n = 0;
  if (kind === "fanout") {
    const owner = await token("fu0", "sender");
    const lat = [];
    while (Date.now() < until) {
      const t0 = performance.now();
      await request({ base: w.url, agent: a, method: "POST", path: "/v1/conversations/fan/messages", token: owner, json: { client_msg_id: `f${n++}`, body: bodyOf(200) } });
      lat.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 250));
    }
    lat.sort((x, y) => x - y);
    console.log(`fan-out send (1000 sockets, 100 users) HTTP reply p50 ${lat[Math.floor(lat.length / 2)].toFixed(1)} ms`);
  } else if (kind === "rawfanout") {
    while (Date.now() < until) {
      await request({ base: w.url, agent: a, method: "POST", path: "/raw/fan/broadcast", raw: JSON.stringify(bodyOf(200)) });
      n++;
      await new Promise((r) => setTimeout(r, 250));
    }
  } else if (kind === "pokes") {
    await request({ base: w.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: toks[0], json: { client_msg_id: "poke-round", body: bodyOf(200) } });
    n = memberCount; // per poke
    await new Promise((r) => setTimeout(r, until - Date.now()));
  } else if (kind === "members") {
    // Growing one conversation by 1,000 new users a request (each a new UserDO), one request at a time.
    while (Date.now() < until) {
      const users = Array.from({ length: 1000 }, (_, i) => `pm${n * 1000 + i}`);
      const t0 = performance.now();
      const r = await request({ base: w.url, method: "POST", path: `/v1/conversations/${conv}/members`, token: toks[0], json: { add: users }, timeoutMs: 600_000 });
      console.log(`add 1,000 members: ${r.status} in ${(performance.now() - t0).toFixed(0)} ms`);
      n++;
    }
  }
  await pool(kind === "fanout" || kind === "rawfanout" || kind === "members" || kind === "pokes" ? 0 : kind.includes("page") ? 1 : 50, 50, async (c) => {
    while (Date.now() < until) {
      const i = n++;
      if (kind === "send") await request({ base: w.url, agent: a, method: "POST", path: `/v1/conversations/${conv}/messages`, token: toks[c], json: { client_msg_id: `p${i}`, body: bodyOf(200) } });
      else if (kind === "healthz") await request({ base: w.url, agent: a, path: "/healthz" });
      else if (kind === "page") await request({ base: w.url, agent: a, path: `/v1/conversations/${conv}/messages?after=${i % 50}&limit=${limit}`, token: toks[i % toks.length] }); // devices rotate: one would meet its rate limit
      else if (kind === "upgrade") {
        // A reconnect: live socket from 50 behind the head, until `live`, then close.
        const { openSocket } = await import("./lib/client.mjs");
        let done;
        const live = new Promise((r) => (done = r));
        const ws = await openSocket(`${w.url.replace("http", "ws")}/v1/conversations/${conv}/live?after=550&access_token=${toks[c]}`, (f) => f.type === "live" && done());
        await live;
        ws.terminate();
      } else if (kind === "rawpage") await request({ base: w.url, agent: a, path: `/raw/pf/page?after=${i % 50}&limit=${limit}` });
      else await request({ base: w.url, agent: a, method: "POST", path: "/raw/pf/insert", raw: JSON.stringify(bodyOf(200)) });
    }
  });
  const { result } = await cdp("Profiler.stop");
  console.log(`${kind}: ${n} requests in ${seconds} s = ${(n / seconds).toFixed(0)}/s`);
  const p = result.profile;
  const total = p.samples.length;
  const byFn = new Map();
  const byFile = new Map();
  const dt = (p.endTime - p.startTime) / 1000 / total; // ms per sample
  for (const node of p.nodes) {
    const f = node.callFrame;
    const file = (f.url || "(native)").replace(/^.*\//, "");
    const key = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + (node.hitCount ?? 0));
    byFile.set(file, (byFile.get(file) ?? 0) + (node.hitCount ?? 0));
  }
  const idle = [...byFn].filter(([k]) => /^\(idle\)|^\(program\)|^\(garbage/.test(k)).reduce((s, [, v]) => s + v, 0);
  console.log(`samples ${total}, ${(dt * total).toFixed(0)} ms wall; busy ${(((total - idle) / total) * 100).toFixed(1)}% of the isolate's thread; JS ms/request ${(((total - idle) * dt) / n).toFixed(2)}`);
  // Name bundle lines by the nearest source-file marker esbuild leaves ("// src/...").
  let bundle = [];
  try {
    const tmp = join(w.codeDir, ".wrangler", "tmp");
    const dir = readdirSync(tmp).find((d) => d.startsWith("dev-"));
    const file = readdirSync(join(tmp, dir)).find((f) => f.endsWith(".js")); // index.js (product) or worker.js (bench/raw)
    bundle = readFileSync(join(tmp, dir, file), "utf8").split("\n");
  } catch {}
  const where = (line) => {
    for (let i = line - 1; i >= 0 && i < bundle.length; i--) if (/^\/\/ (src|node_modules|worker\.ts)/.test(bundle[i])) return bundle[i].slice(3);
    return "";
  };
  const top = [...byFn].sort((x, y) => y[1] - x[1]).slice(0, Number(process.env.PROFILE_TOP ?? 25));
  for (const [k, v] of top) {
    const m = /(?:index|worker)\.js:(\d+)$/.exec(k);
    console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}${m ? `  [${where(Number(m[1]))}]` : ""}`);
  }
  // Inclusive-ish view by source file (self time summed per bundled module).
  const byModule = new Map();
  for (const node of p.nodes) {
    const f = node.callFrame;
    const mod = /(?:index|worker)\.js$/.test(f.url) ? where(f.lineNumber + 1).replace(/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "node_modules/") || "(bundle)" : f.url ? "(other script)" : `(native) ${f.functionName}`;
    byModule.set(mod, (byModule.get(mod) ?? 0) + (node.hitCount ?? 0));
  }
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const label = (f) => `${f.functionName || "(anonymous)"}:${f.lineNumber + 1}${/(?:index|worker)\.js$/.test(f.url) ? ` [${where(f.lineNumber + 1)}]` : ""}`;
  // PROFILE_INCLUSIVE="fnA,fnB": samples under each named function (its whole subtree, counted once), e.g. applyTick vs send.
  for (const name of (process.env.PROFILE_INCLUSIVE ?? "").split(",").filter(Boolean)) {
    const self = new Map();
    let hits = 0;
    const walk = (node, inside) => {
      const here = inside || node.callFrame.functionName === name;
      if (here && node.hitCount) {
        hits += node.hitCount;
        self.set(label(node.callFrame), (self.get(label(node.callFrame)) ?? 0) + node.hitCount);
      }
      for (const c of node.children ?? []) walk(byId.get(c), here);
    };
    walk(p.nodes[0], false);
    console.log(`inclusive ${name}: ${((hits / total) * 100).toFixed(1)}% of samples, ${((hits * dt) / n).toFixed(3)} ms per request`);
    for (const [k, v] of [...self].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(`    ${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
  }
  // PROFILE_CALLERS="<function name>": who calls it (self samples by calling frame chain), for native frames that name no source.
  if (process.env.PROFILE_CALLERS) {
    const parent = new Map();
    for (const node of p.nodes) for (const child of node.children ?? []) parent.set(child, node);
    const chains = new Map();
    for (const node of p.nodes) {
      if (node.callFrame.functionName !== process.env.PROFILE_CALLERS || !node.hitCount) continue;
      const names = [];
      for (let up = parent.get(node.id); up && names.length < 6; up = parent.get(up.id)) {
        names.push(label(byId.get(up.id).callFrame));
      }
      const key = names.join(" < ");
      chains.set(key, (chains.get(key) ?? 0) + node.hitCount);
    }
    console.log(`--- callers of ${process.env.PROFILE_CALLERS} ---`);
    for (const [k, v] of [...chains].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
  }
  console.log("--- self time by module ---");
  for (const [k, v] of [...byModule].sort((x, y) => y[1] - x[1]).slice(0, 20)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
  ws.close();
  for (const s of sockets) s.terminate();
} finally {
  await stopAll();
}
