/** Turns a run's raw results into the summary rows, the Markdown table and the SVG chart. */
import { median, round } from "./lib/stats.mjs";

const med = (list, key) => median(list.map((x) => (key ? x[key] : x)).filter((v) => v !== null && v !== undefined));
const f0 = (x) => (x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"));
const f1 = (x) => (x === null || x === undefined ? "–" : (Math.round(x * 10) / 10).toFixed(1));
const f2 = (x) => (x === null || x === undefined ? "–" : (Math.round(x * 100) / 100).toFixed(2));

/**
 * Rows: { id, what, ours, baseline, ratio, target: { op: ">=" | "<=", value }, pass, note }.
 * `ratio` is what the target is judged on; `of_raw` is the same figure as a fraction of the raw limit.
 */
export function summarize(r) {
  const rows = [];
  const add = (row) => rows.push({ ...row, ratio: round(row.ratio, 3), of_raw: round(row.of_raw, 3), pass: row.ratio === null || row.ratio === undefined ? null : row.target.op === ">=" ? row.ratio >= row.target.value : row.ratio <= row.target.value });
  const t = r.throughput && !r.throughput.error ? r.throughput : null;
  const rawInsert = t ? med(t.rows.raw_insert) : null;
  const rawPage = (limit) => (t ? med(t.pages[limit].raw, "rate") : null);
  if (t) {
    add({ id: "raw-insert", what: `Raw limit: RPC + INSERT, ${t.C} connections`, ours: `${f0(rawInsert)} req/s`, baseline: "–", ratio: 1, of_raw: 1, target: { op: ">=", value: 1 }, note: "BenchDO via POST /bench/:name/insert" });
    for (const limit of [100, 500]) add({ id: `raw-page-${limit}`, what: `Raw limit: page SELECT of ${limit}, one client`, ours: `${f0(rawPage(limit))} entries/s (p50 ${f1(med(t.pages[limit].raw, "p50"))} ms)`, baseline: "–", ratio: 1, of_raw: 1, target: { op: ">=", value: 1 }, note: "BenchDO via GET /bench/:name/page" });
    const http = med(t.rows.p1_http);
    const sock = med(t.rows.p1_socket);
    add({ id: "p1-http", what: `P1 send over HTTP, ${t.C} connections`, ours: `${f0(http)} msg/s`, baseline: `${f0(rawInsert)} req/s raw`, ratio: http / rawInsert, of_raw: http / rawInsert, target: { op: ">=", value: 0.85 }, note: `durable 201s; ${t.rows.p1_shed} shed` });
    add({ id: "p1-socket", what: `P1 send over live sockets, ${t.pipeSockets} sockets × ${t.C / t.pipeSockets} pipelined`, ours: `${f0(sock)} msg/s`, baseline: `${f0(rawInsert)} req/s raw`, ratio: sock / rawInsert, of_raw: sock / rawInsert, target: { op: ">=", value: 0.85 }, note: `\`sent\` replies; each send is also delivered to the ${t.pipeSockets} open sockets` });
    const each = med(t.rows.p1_socket_each);
    add({ id: "p1-socket-50", what: `P1 send over live sockets, ${t.C} sockets × 1`, ours: `${f0(each)} msg/s`, baseline: `${f0(rawInsert)} req/s raw`, ratio: each / rawInsert, of_raw: each / rawInsert, target: { op: ">=", value: 0.85 }, note: `each send is also delivered to all ${t.C} open sockets (${t.C}× the frames)` });
    for (const limit of [100, 500]) {
      const p = t.pages[limit].ours;
      const rate = med(p, "rate");
      add({ id: `p2-${limit}`, what: `P2 catch-up ${f0(t.behind)} behind, limit=${limit}`, ours: `${f0(rate)} entries/s; page p50 ${f1(med(p, "p50"))} / p99 ${f1(med(p, "p99"))} ms`, baseline: `${f0(rawPage(limit))} entries/s raw`, ratio: rate / rawPage(limit), of_raw: rate / rawPage(limit), target: { op: ">=", value: 0.5 }, note: `${p.reduce((n, x) => n + x.shed, 0)} shed` });
    }
  }
  const s = r.storm && !r.storm.error ? r.storm : null;
  if (s) {
    const storm = med(s.storms, "seconds");
    const lost = s.storms.reduce((n, x) => n + x.lost, 0);
    const dup = s.storms.reduce((n, x) => n + x.dup, 0);
    const shed = s.storms.reduce((n, x) => n + x.shed429 + x.shed503, 0);
    const reqs = med(s.storms, "requests");
    add({ id: "p3", what: `P3 reconnect storm, ${f0(s.N)} devices × ${s.backlog}-entry backlog within 1 s`, ours: `${f2(storm)} s (${f0(reqs / storm)} req/s)`, baseline: `${f2(s.serialSeconds)} s serial`, ratio: storm / s.serialSeconds, of_raw: rawInsert ? reqs / storm / rawInsert : null, target: { op: "<=", value: 1.5 }, note: `lost ${lost}, duplicates ${dup}, shed ${shed} (429+503, all repeats), ${s.storms.reduce((n, x) => n + (x.timeouts ?? 0), 0)} requests timed out (180 s) and repeated; setup ${f1(s.setupSeconds)} s` });
  }
  const fo = r.fanout && !r.fanout.error ? r.fanout : null;
  if (fo) {
    const p99 = med(fo.rounds, "p99");
    const rawLat = r.diagnostics && !r.diagnostics.error ? r.diagnostics.raw_insert_latency_ms?.p50 : null;
    add({ id: "p4", what: `P4 fan-out to ${f0(fo.sockets)} live sockets (${fo.users} users × ${fo.devicesPerUser} devices)`, ours: `p50 ${f1(med(fo.rounds, "p50"))} ms / p99 ${f1(p99)} ms`, baseline: "100 ms", ratio: p99 / 100, of_raw: rawLat ? med(fo.rounds, "p50") / rawLat : null, target: { op: "<=", value: 1 }, note: `send→receive on every socket, ${fo.messages} messages × ${fo.rounds.length} rounds; missing ${fo.rounds.reduce((n, x) => n + x.missing, 0)}; of_raw = p50 ÷ raw insert round trip` });
  }
  const ff = r.fanout_few && !r.fanout_few.error ? r.fanout_few : null;
  if (ff) add({ id: "p4-few-users", what: `P4 same sockets, ${ff.users} users × ${ff.devicesPerUser} devices`, ours: `p50 ${f1(med(ff.rounds, "p50"))} ms / p99 ${f1(med(ff.rounds, "p99"))} ms`, baseline: "100 ms", ratio: med(ff.rounds, "p99") / 100, of_raw: null, target: { op: "<=", value: 1 }, note: `per-member work (outbox rows, unread counters, UserDO pokes) ×${f1(fo ? fo.users / ff.users : 0)} smaller than above; missing ${ff.rounds.reduce((n, x) => n + x.missing, 0)}` });
  const fd = r.fanout_direct && !r.fanout_direct.error ? r.fanout_direct : null;
  if (fd) add({ id: "p4-direct", what: `P4 diagnostic: same, straight to the user Worker (bypassing wrangler dev's proxy)`, ours: `p50 ${f1(med(fd.rounds, "p50"))} ms / p99 ${f1(med(fd.rounds, "p99"))} ms`, baseline: "100 ms", ratio: med(fd.rounds, "p99") / 100, of_raw: null, target: { op: "<=", value: 1 }, note: `not a product figure: shows what the dev proxy adds; missing ${fd.rounds.reduce((n, x) => n + x.missing, 0)}` });
  const pc = r.push_collapse && !r.push_collapse.error ? r.push_collapse : null;
  if (pc) add({ id: "p5-collapse", what: `P5 ${f0(pc.messages)} messages in ${pc.windowSeconds} s to one offline device`, ours: `${pc.providerCalls} provider call(s)`, baseline: "2", ratio: pc.providerCalls / 2, of_raw: rawInsert ? pc.messages / pc.windowSeconds / rawInsert : null, target: { op: "<=", value: 1 }, note: `collapse window ${r.settings.push.collapseSeconds} s; calls at ${pc.callOffsetsSeconds.map((x) => `${f1(x)} s`).join(", ") || "none"}; ${pc.unsigned} unsigned` });
  const pt = r.push_throttle && !r.push_throttle.error ? r.push_throttle : null;
  if (pt) add({ id: "p5-throttle", what: `P5 provider 429 (Retry-After ${pt.retryAfterSeconds} s), ${pt.devices} devices`, ours: `peak ${pt.peakPerSecond}/s in any 1 s, ${f1(pt.sustainedPerSecond)}/s after the pause`, baseline: `cap ${pt.cap}/s (burst ${pt.burst})`, ratio: pt.sustainedPerSecond === null ? null : pt.sustainedPerSecond / pt.cap, of_raw: null, target: { op: "<=", value: 1 }, note: `${pt.throttled} throttled, ${pt.duringPause} calls inside a Retry-After pause, ${pt.delivered}/${pt.devices} delivered by ${f1(pt.allDeliveredAfterSeconds)} s; ${pt.deadLetters ?? "?"} dead-lettered${pt.deadLetterReasons?.length ? ` (${pt.deadLetterReasons.join("; ")})` : ""}; gate granted ${pt.gate?.granted ?? "?"}, denied ${pt.gate?.denied ?? "?"}` });
  const rc = r.recovery && !r.recovery.error ? r.recovery : null;
  if (rc) {
    const sio = med(rc.sio, "rate");
    const live = med(rc.live, "rate");
    const http = med(rc.http, "rate");
    const rp = rawPage(500);
    add({ id: "peer-live", what: `Peer: recovery of ${rc.N} clients × ${rc.M} messages, ours via live catch-up`, ours: `${f0(live)} entries/s`, baseline: `${f0(sio)} entries/s Socket.IO`, ratio: live / sio, of_raw: rp ? live / rp : null, target: { op: ">=", value: 1 }, note: `durable log vs in-memory; Socket.IO recovered ${med(rc.sio, "recovered")}/${rc.N}; lost ours ${rc.live.reduce((n, x) => n + x.lost, 0)}, theirs ${rc.sio.reduce((n, x) => n + x.lost, 0)}` });
    add({ id: "peer-http", what: `Peer: same, ours via HTTP pages (limit = backlog)`, ours: `${f0(http)} entries/s`, baseline: `${f0(sio)} entries/s Socket.IO`, ratio: http / sio, of_raw: rp ? http / rp : null, target: { op: ">=", value: 1 }, note: `lost ${rc.http.reduce((n, x) => n + x.lost, 0)}, shed ${rc.http.reduce((n, x) => n + x.shed, 0)}` });
  }
  return rows;
}

export function renderMarkdown(r) {
  const m = r.machine;
  const lines = [];
  lines.push(`# Benchmark results (${r.quick ? "--quick" : "full"} run)`);
  lines.push("");
  lines.push(`${r.started_at} · ${m.nproc} cores (${m.cpu}) · ${m.mem_total_gib} GiB · node ${m.node} · wrangler ${m.wrangler} (wrangler dev, local) · socket.io ${m.socket_io} · load ${m.loadavg_start.join(" ")} → ${(m.loadavg_end ?? []).join(" ")} · ${r.total_seconds} s`);
  lines.push("");
  lines.push("| scenario | ours | compared with | ratio | target | met | fraction of raw | notes |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const row of r.summary) {
    const raw = row.id.startsWith("raw-");
    lines.push(`| ${row.what} | ${row.ours} | ${row.baseline} | ${raw ? "–" : f2(row.ratio)} | ${raw ? "–" : `${row.target.op} ${row.target.value}`} | ${raw ? "–" : row.pass === null ? "?" : row.pass ? "yes" : "**no**"} | ${raw ? "1" : f2(row.of_raw)} | ${row.note} |`);
  }
  const failed = ["diagnostics", "throughput", "storm", "fanout", "push_collapse", "push_throttle", "recovery"].filter((k) => r[k]?.error);
  if (failed.length) {
    lines.push("");
    for (const k of failed) lines.push(`- **${k} failed:** ${r[k].error}`);
  }
  if (r.diagnostics && !r.diagnostics.error) {
    const d = r.diagnostics;
    lines.push("");
    lines.push(`Where the time goes (${d.C} connections, ${d.n} requests each; CPU = workerd process CPU per request, wrangler dev's proxy worker and our Worker share that process):`);
    lines.push("");
    lines.push("| request | via wrangler dev port | workerd CPU ms/req | straight to the user Worker | workerd CPU ms/req |");
    lines.push("|---|---|---|---|---|");
    for (const k of d.kinds) lines.push(`| ${k.name} | ${f0(k.proxied.rps)} req/s | ${f2(k.proxied.workerd_cpu_ms_per_req)} | ${k.direct ? `${f0(k.direct.rps)} req/s` : "–"} | ${k.direct ? f2(k.direct.workerd_cpu_ms_per_req) : "–"} |`);
    lines.push("");
    lines.push(`One at a time: GET /healthz p50 ${f1(d.healthz_latency_ms.p50)} ms; raw INSERT round trip p50 ${f1(d.raw_insert_latency_ms.p50)} ms; raw 100-row page p50 ${f1(d.raw_page100_latency_ms.p50)} ms.`);
  }
  const cores = ["throughput", "storm", "fanout", "fanout_few", "recovery"].filter((k) => r[k]?._cores);
  if (cores.length) {
    lines.push("");
    lines.push("Average cores busy per phase (of " + m.nproc + "): " + cores.map((k) => `${k}: workerd ${r[k]._cores.workerd}, bench client ${r[k]._cores.bench_client}, wrangler node ${r[k]._cores.wrangler_node}, peer ${r[k]._cores.peer}`).join("; ") + ". (Everything else on the machine, i.e. other people's jobs, is in latest.json as `other`; it is approximate, processes that end mid-phase make it swing.)");
  }
  lines.push("");
  if (r.dev_proxy_resets || r.connection_resets) {
    lines.push("");
    lines.push(`Transport retries: wrangler dev's proxy answered "Your worker restarted mid-request" ${r.dev_proxy_resets} time(s) (workerd did not restart; its connection to the user Worker dropped under load) and ${r.connection_resets} keep-alive connection(s) were reset; the bench repeated those requests (all are idempotent: sends carry a client_msg_id, creations accept 409).`);
  }
  lines.push("");
  lines.push(`Medians over repeats. Retry-After from 429/503 is honoured at ${r.settings.retry_after_scale}× scale (compressed). ${r.quick ? `--quick: smaller N, fewer repeats; push collapse window compressed to ${r.settings.push.collapseSeconds} s (PUSH_COLLAPSE_SECONDS) and ${r.settings.push.windowSeconds} s of sending.` : ""}`);
  lines.push("");
  return lines.join("\n");
}

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Horizontal bars of each ratio with its target tick; green when the target is met. */
export function renderSvg(r) {
  const rows = r.summary.filter((x) => !x.id.startsWith("raw-") && x.ratio !== null);
  const W = 900;
  const left = 330;
  const barW = 480;
  const rowH = 34;
  const top = 50;
  const H = top + rows.length * rowH + 40;
  const maxRatio = Math.max(2, ...rows.map((x) => Math.max(x.ratio, x.target.value))) * 1.05;
  const xOf = (v) => left + (Math.min(v, maxRatio) / maxRatio) * barW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600">offline-delivery bench (${r.quick ? "quick" : "full"}): ratios vs targets</text>`);
  out.push(`<text x="${W / 2}" y="38" text-anchor="middle" fill="#555">${esc(`${r.machine.nproc} cores, node ${r.machine.node}, wrangler ${r.machine.wrangler} dev, ${r.started_at.slice(0, 16)}Z; black tick = target (≥ higher is better, ≤ lower is better)`)}</text>`);
  for (let g = 0; g <= Math.floor(maxRatio); g += maxRatio > 4 ? 1 : 0.5) {
    out.push(`<line x1="${xOf(g)}" y1="${top - 4}" x2="${xOf(g)}" y2="${top + rows.length * rowH}" stroke="#eee"/>`);
    out.push(`<text x="${xOf(g)}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#777">${g}</text>`);
  }
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const color = row.pass ? "#2e9d4e" : "#d2453c";
    out.push(`<text x="${left - 8}" y="${y + 20}" text-anchor="end">${esc(`${row.id}: ${row.target.op} ${row.target.value}`)}</text>`);
    out.push(`<rect x="${left}" y="${y + 8}" width="${Math.max(1, xOf(row.ratio) - left)}" height="18" fill="${color}" rx="2"/>`);
    out.push(`<line x1="${xOf(row.target.value)}" y1="${y + 4}" x2="${xOf(row.target.value)}" y2="${y + 30}" stroke="#000" stroke-width="2"/>`);
    out.push(`<text x="${xOf(row.ratio) + 6}" y="${y + 21}" fill="#222">${row.ratio > maxRatio ? "› " : ""}${row.ratio.toFixed(2)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

// `node bench/report.mjs`: re-render latest.md / latest.svg from latest.json (after a report change).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { readFileSync, writeFileSync } = await import("node:fs");
  const dir = new URL("./results/", import.meta.url);
  const r = JSON.parse(readFileSync(new URL("latest.json", dir), "utf8"));
  r.summary = summarize(r);
  writeFileSync(new URL("latest.json", dir), JSON.stringify(r, null, 2) + "\n");
  writeFileSync(new URL("latest.md", dir), renderMarkdown(r));
  writeFileSync(new URL("latest.svg", dir), renderSvg(r));
}
