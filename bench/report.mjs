/** Turns a run's raw results into the summary rows, the Markdown table and the SVG chart. */
import { median, round } from "./lib/stats.mjs";

const med = (list, key) => median(list.map((x) => (key ? x[key] : x)).filter((v) => v !== null && v !== undefined));
const f0 = (x) => (x === null || x === undefined ? "–" : Math.round(x).toLocaleString("en-US"));
const f1 = (x) => (x === null || x === undefined ? "–" : (Math.round(x * 10) / 10).toFixed(1));
const f2 = (x) => (x === null || x === undefined ? "–" : (Math.round(x * 100) / 100).toFixed(2));
/** Median time of a list of timed runs ({ seconds }), in ms. */
const msOf = (list) => med(list, "seconds") * 1000;

/** A diagnostic row for a repeat of the peer recovery (runRecovery's results) on another path, `how`. */
function recoveryDiagnostic(id, how, rec, note) {
  const live = msOf(rec.live);
  const rawLive = rec.rawLive?.length ? msOf(rec.rawLive) : null;
  return {
    id,
    what: `Peer diagnostic: same recovery, ${how}`,
    ours: `${f0(live)} ms live catch-up, ${f0(msOf(rec.http))} ms HTTP pages`,
    baseline: `${f0(msOf(rec.sio))} ms Socket.IO${rawLive === null ? "" : `, ${f0(rawLive)} ms raw-limit reconnect`}`,
    ratio: msOf(rec.sio) / live,
    of_raw: rawLive === null ? null : rawLive / live,
    target: null,
    note,
  };
}

/** Result keys of the phases bench/run.mjs records (for failures, cores busy and durations). */
const PHASES = ["diagnostics", "throughput", "size", "storm", "fanout", "fanout_few", "push_collapse", "push_throttle", "recovery", "recovery_backlog", "recovery_direct", "recovery_quiet", "inbox", "fanout_direct"];

/**
 * Rows: { id, what, ours, baseline, ratio, target: { op: ">=" | "<=", value } | null, pass, note }.
 * `ratio` is what the target is judged on (null = n/a: not measurable on this server);
 * `target` null = reported without a target; `of_raw` is the figure as a fraction of the raw limit.
 */
export function summarize(r) {
  const rows = [];
  const add = (row) => {
    const ratio = row.ratio === null || row.ratio === undefined || Number.isNaN(row.ratio) ? null : row.ratio;
    const pass = ratio === null || !row.target ? null : row.target.op === ">=" ? ratio >= row.target.value : ratio <= row.target.value;
    rows.push({ ...row, ratio: round(ratio, 3), of_raw: round(row.of_raw, 3), pass });
  };
  const ok = (k) => (r[k] && !r[k].error ? r[k] : null);
  const t = ok("throughput");
  const rawInsert = t ? med(t.rows.raw_insert) : null;
  const rawInsert16 = t && t.rows.raw_insert_16?.length ? med(t.rows.raw_insert_16) : null;
  const rawPage = (limit) => (t ? med(t.pages[limit].raw, "rate") : null);
  const rawNote = "bench/raw: separate minimal Worker, own wrangler dev";
  if (t) {
    if (rawInsert16) add({ id: "raw-insert-16", what: `Raw limit: RPC + INSERT, ${t.C16} connections`, ours: `${f0(rawInsert16)} req/s`, baseline: "–", ratio: 1, of_raw: 1, target: null, note: `${rawNote}, POST /raw/:name/insert` });
    add({ id: "raw-insert", what: `Raw limit: RPC + INSERT, ${t.C} connections`, ours: `${f0(rawInsert)} req/s`, baseline: "–", ratio: 1, of_raw: 1, target: null, note: `${rawNote}, POST /raw/:name/insert` });
    for (const limit of [100, 500]) add({ id: `raw-page-${limit}`, what: `Raw limit: page SELECT of ${limit}, one client`, ours: `${f0(rawPage(limit))} entries/s (p50 ${f1(med(t.pages[limit].raw, "p50"))} ms)`, baseline: "–", ratio: 1, of_raw: 1, target: null, note: `${rawNote}, GET /raw/:name/page` });
    const members = t.members ?? 5;
    if (t.rows.p1_http_16?.length) {
      const h16 = med(t.rows.p1_http_16);
      add({ id: "p1-http-16", what: `P1 send over HTTP, ${members} members, ${t.C16} in flight`, ours: `${f0(h16)} msg/s`, baseline: `${f0(rawInsert16)} req/s raw (${t.C16} in flight)`, ratio: h16 / rawInsert16, of_raw: h16 / rawInsert16, target: { op: ">=", value: 0.85 }, note: `durable 201s; ${t.rows.p1_shed_16} shed` });
    }
    const http = med(t.rows.p1_http);
    const sock = med(t.rows.p1_socket);
    add({ id: "p1-http", what: `P1 send over HTTP, ${members} members, ${t.C} in flight`, ours: `${f0(http)} msg/s`, baseline: `${f0(rawInsert)} req/s raw (${t.C} in flight)`, ratio: http / rawInsert, of_raw: http / rawInsert, target: { op: ">=", value: 0.85 }, note: `durable 201s; ${t.rows.p1_shed} shed` });
    add({ id: "p1-socket", what: `P1 send over live sockets, ${t.pipeSockets} sockets × ${t.C / t.pipeSockets} pipelined`, ours: `${f0(sock)} msg/s`, baseline: `${f0(rawInsert)} req/s raw`, ratio: sock / rawInsert, of_raw: sock / rawInsert, target: { op: ">=", value: 0.85 }, note: `\`sent\` replies; each send is also delivered to the ${t.pipeSockets} open sockets` });
    const each = med(t.rows.p1_socket_each);
    add({ id: "p1-socket-50", what: `P1 send over live sockets, ${t.C} sockets × 1`, ours: `${f0(each)} msg/s`, baseline: `${f0(rawInsert)} req/s raw`, ratio: each / rawInsert, of_raw: each / rawInsert, target: { op: ">=", value: 0.85 }, note: `each send is also delivered to all ${t.C} open sockets (${t.C}× the frames)` });
    for (const limit of [100, 500]) {
      const p = t.pages[limit].ours;
      const rate = med(p, "rate");
      add({ id: `p2-${limit}`, what: `P2 catch-up ${f0(t.behind)} behind, limit=${limit}`, ours: `${f0(rate)} entries/s; page p50 ${f1(med(p, "p50"))} / p99 ${f1(med(p, "p99"))} ms`, baseline: `${f0(rawPage(limit))} entries/s raw`, ratio: rate / rawPage(limit), of_raw: rate / rawPage(limit), target: { op: ">=", value: 0.5 }, note: `${p.reduce((n, x) => n + x.shed, 0)} shed` });
    }
  }
  const z = ok("size");
  if (z) {
    const base = z.medians[9];
    const raw16 = med(z.raw16);
    for (const size of z.sizes.filter((x) => x !== 9)) {
      const rate = z.medians[size];
      const drain = z.drains[size]?.filter((x) => x !== null) ?? [];
      const setup = z.setup.find((x) => x.size === size);
      add({
        id: `size-${size}`,
        what: `Size: send rate at ${f0(size)} members vs 9 (HTTP, ${z.inflight} in flight, ${f0(z.nSend)} messages each)`,
        ours: rate === null ? "n/a" : `${f0(rate)} msg/s`,
        baseline: `${f0(base)} msg/s at 9 members`,
        ratio: rate === null || !base ? null : rate / base,
        of_raw: rate === null || !raw16 ? null : rate / raw16,
        target: { op: ">=", value: 0.85 },
        note: rate === null
          ? `the server refused ${f0(setup?.members ?? 0)}+ members: ${setup?.error ?? "?"}`
          : `${z.sent?.[size]?.some((n) => n < z.nSend) ? `capped at ${z.capSeconds} s per burst: ${z.sent[size].join(" / ")} of ${f0(z.nSend)} sent; ` : ""}setup ${f1(setup?.seconds)} s${setup?.membersPerSecond ? ` (${f0(setup.membersPerSecond)} members/s)` : ""}; member-notify drain after each burst ${drain.length ? `${f1(med(drain))} s` : "n/a"}; ${z.shed} shed; of_raw vs raw insert at ${z.inflight} in flight (${f0(raw16)} req/s)`,
      });
    }
    for (const [size, x] of Object.entries(z.samples ?? {})) {
      add({
        id: `sync-sampled-${size}`,
        what: `Size: ${x.sampled} sampled members of a ${f0(Number(size))}-member conversation sync after a send`,
        ours: x.maxMs === null ? "n/a" : `slowest ${f0(x.maxMs)} ms, median ${f0(x.medianMs)} ms`,
        baseline: "within seconds",
        ratio: null,
        of_raw: null,
        target: null,
        note: `${x.saw}/${x.sampled} saw the new head; unread exact (+1) for ${x.exact}/${x.sampled}`,
      });
    }
    const per = (m) => z.rows?.[m]?.perSend ?? null;
    const r10 = per(10);
    const sizes = Object.keys(z.rows ?? {}).map(Number).filter((m) => m !== 9).sort((x, y) => x - y);
    const large = z.sizes[2];
    const bigM = z.big?.members && z.big.members > large ? z.big.members : null;
    const listed = [10, 1000, large, ...(bigM ? [bigM] : [])];
    for (const m of listed) {
      const v = per(m);
      const measured = sizes.includes(m);
      const na = !z.rowsApi ? "n/a (no sends_total / rows_written_sends_total in GET /admin/api/conversations/:id)" : !measured ? "n/a (not measured at this size)" : null;
      add({
        id: m === bigM ? "rows-big" : `rows-${m}`,
        what: `Size: SQLite rows written per send, ${f0(m)} members`,
        ours: v === null ? "n/a" : `${f1(v)} rows/send`,
        baseline: m === 10 ? `${f1(z.rawRowsPerInsert)} row/insert raw` : `${r10 === null ? "n/a" : f1(r10)} at 10 members`,
        ratio: v === null ? null : m === 10 ? null : r10 ? v / r10 : null,
        of_raw: v !== null && z.rawRowsPerInsert ? v / z.rawRowsPerInsert : null,
        target: m === 10 ? null : { op: "<=", value: 1.2 },
        note: [na, m === 10 ? "reference for the other sizes" : null, m === bigM ? `biggest conversation: ${z.big?.note ?? "?"}` : null, z.rows?.[m] ? `${f0(z.rows[m].sends)} sends` : null].filter(Boolean).join("; "),
      });
    }
    if (!bigM) {
      add({ id: "rows-big", what: "Size: SQLite rows written per send, 100,000 members", ours: "n/a", baseline: `${r10 === null ? "n/a" : f1(r10)} at 10 members`, ratio: null, of_raw: null, target: { op: "<=", value: 1.2 }, note: z.big?.note ?? "not measured" });
    }
  }
  const s = ok("storm");
  if (s) {
    const storm = med(s.storms, "seconds");
    const lost = s.storms.reduce((n, x) => n + x.lost, 0);
    const dup = s.storms.reduce((n, x) => n + x.dup, 0);
    const shed = s.storms.reduce((n, x) => n + x.shed429 + x.shed503, 0);
    const reqs = med(s.storms, "requests");
    add({ id: "p3", what: `P3 reconnect storm, ${f0(s.N)} devices × ${s.backlog}-entry backlog within 1 s`, ours: `${f2(storm)} s (${f0(reqs)} requests, ${f0(reqs / storm)} req/s)`, baseline: `${f2(s.serialSeconds)} s serial`, ratio: storm / s.serialSeconds, of_raw: rawInsert ? reqs / storm / rawInsert : null, target: { op: "<=", value: 1.5 }, note: `sync + pages + cursors; lost ${lost}, duplicates ${dup}, shed ${shed} (429+503, all repeats), ${s.storms.reduce((n, x) => n + (x.timeouts ?? 0), 0)} requests timed out (180 s) and repeated; setup ${f1(s.setupSeconds)} s` });
    const tl = s.timelineStorms ?? [];
    if (tl.length) {
      const tsec = med(tl, "seconds");
      const treq = med(tl, "requests");
      add({ id: "p3-timeline", what: `P3 storm with timelines: same devices, sync?timeline_limit=${s.timelineLimit} + cursors`, ours: `${f2(tsec)} s (${f0(treq)} requests)`, baseline: `${f2(storm)} s (${f0(reqs)} requests) P3`, ratio: tsec / storm, of_raw: rawInsert ? treq / tsec / rawInsert : null, target: { op: "<=", value: 1 }, note: `lost ${tl.reduce((n, x) => n + x.lost, 0)}, duplicates ${tl.reduce((n, x) => n + x.dup, 0)}, shed ${tl.reduce((n, x) => n + x.shed429 + x.shed503, 0)}, ${tl.reduce((n, x) => n + (x.timeouts ?? 0), 0)} timed out and repeated; storms alternate with P3's` });
    } else {
      add({ id: "p3-timeline", what: `P3 storm with timelines: same devices, sync?timeline_limit=${s.timelineLimit ?? 50} + cursors`, ours: "n/a", baseline: `${f2(storm)} s (${f0(reqs)} requests) P3`, ratio: null, of_raw: null, target: { op: "<=", value: 1 }, note: "the server answers sync?timeline_limit without a `timeline` (not implemented yet)" });
    }
  }
  const fo = ok("fanout");
  if (fo) {
    const p99 = med(fo.rounds, "p99");
    const rawLat = ok("diagnostics")?.raw_insert_latency_ms?.p50 ?? null;
    add({ id: "p4", what: `P4 fan-out to ${f0(fo.sockets)} live sockets (${fo.users} users × ${fo.devicesPerUser} devices)`, ours: `p50 ${f1(med(fo.rounds, "p50"))} ms / p99 ${f1(p99)} ms`, baseline: "100 ms", ratio: p99 / 100, of_raw: rawLat ? med(fo.rounds, "p50") / rawLat : null, target: { op: "<=", value: 1 }, note: `send→receive on every socket, ${fo.messages} messages × ${fo.rounds.length} rounds; missing ${fo.rounds.reduce((n, x) => n + x.missing, 0)}; of_raw = p50 ÷ raw insert round trip` });
    if (fo.sioRounds?.length) {
      const sp99 = med(fo.sioRounds, "p99");
      add({ id: "p4-socketio", what: `P4 fan-out to ${f0(fo.sockets)} sockets vs Socket.IO broadcast to ${f0(fo.sockets)} clients`, ours: `p50 ${f1(med(fo.rounds, "p50"))} ms / p99 ${f1(p99)} ms`, baseline: `p50 ${f1(med(fo.sioRounds, "p50"))} ms / p99 ${f1(sp99)} ms Socket.IO`, ratio: p99 / sp99, of_raw: null, target: null, note: `ratio = our p99 ÷ Socket.IO's (no target set); durable send over HTTP vs an in-memory room emit; Socket.IO missing ${fo.sioRounds.reduce((n, x) => n + x.missing, 0)}, rounds alternate with ours` });
    }
    if (fo.rawRounds?.length) {
      const rp99 = med(fo.rawRounds, "p99");
      add({ id: "p4-raw", what: `P4 reference: the raw limit broadcasting to ${f0(fo.sockets)} sockets (bench/raw: one object holds them all; per POST one INSERT, then one frame per socket; no auth, checks or shards)`, ours: `p50 ${f1(med(fo.rounds, "p50"))} ms / p99 ${f1(p99)} ms`, baseline: `p50 ${f1(med(fo.rawRounds, "p50"))} ms / p99 ${f1(rp99)} ms raw limit`, ratio: p99 / rp99, of_raw: null, target: null, note: `ratio = our p99 ÷ the raw limit's: what the platform's durable write plus ${f0(fo.sockets)} socket sends cost before any of our work; raw missing ${fo.rawRounds.reduce((n, x) => n + x.missing, 0)}, rounds alternate with ours` });
    }
  }
  const ff = ok("fanout_few");
  if (ff) add({ id: "p4-few-users", what: `P4 same sockets, ${ff.users} users × ${ff.devicesPerUser} devices`, ours: `p50 ${f1(med(ff.rounds, "p50"))} ms / p99 ${f1(med(ff.rounds, "p99"))} ms`, baseline: "100 ms", ratio: med(ff.rounds, "p99") / 100, of_raw: null, target: { op: "<=", value: 1 }, note: `per-member work ×${f1(fo ? fo.users / ff.users : 0)} smaller than above; missing ${ff.rounds.reduce((n, x) => n + x.missing, 0)}` });
  const fd = ok("fanout_direct");
  if (fd) add({ id: "p4-direct", what: `P4 diagnostic: same, straight to the user Worker (bypassing wrangler dev's proxy)`, ours: `p50 ${f1(med(fd.rounds, "p50"))} ms / p99 ${f1(med(fd.rounds, "p99"))} ms`, baseline: "100 ms", ratio: med(fd.rounds, "p99") / 100, of_raw: null, target: { op: "<=", value: 1 }, note: `not a product figure: shows what the dev proxy adds; missing ${fd.rounds.reduce((n, x) => n + x.missing, 0)}${fd.rawRounds?.length ? `; the raw limit straight to its Worker: p50 ${f1(med(fd.rawRounds, "p50"))} / p99 ${f1(med(fd.rawRounds, "p99"))} ms` : ""}` });
  const pc = ok("push_collapse");
  if (pc) add({ id: "p5-collapse", what: `P5 ${f0(pc.messages)} messages in ${pc.windowSeconds} s to one offline device`, ours: `${pc.providerCalls} provider call(s)`, baseline: "2", ratio: pc.providerCalls / 2, of_raw: rawInsert ? pc.messages / pc.windowSeconds / rawInsert : null, target: { op: "<=", value: 1 }, note: `collapse window ${r.settings.push.collapseSeconds} s; calls at ${pc.callOffsetsSeconds.map((x) => `${f1(x)} s`).join(", ") || "none"}; ${pc.unsigned} unsigned` });
  const pt = ok("push_throttle");
  if (pt) add({ id: "p5-throttle", what: `P5 provider 429 (Retry-After ${pt.retryAfterSeconds} s), ${pt.devices} devices`, ours: `peak ${pt.peakPerSecond}/s in any 1 s, ${f1(pt.sustainedPerSecond)}/s after the pause`, baseline: `cap ${pt.cap}/s (burst ${pt.burst})`, ratio: pt.sustainedPerSecond === null ? null : pt.sustainedPerSecond / pt.cap, of_raw: null, target: { op: "<=", value: 1 }, note: `${pt.throttled} throttled, ${pt.duringPause} calls inside a Retry-After pause, ${pt.delivered}/${pt.devices} delivered by ${f1(pt.allDeliveredAfterSeconds)} s; ${pt.deadLetters ?? "?"} dead-lettered${pt.deadLetterReasons?.length ? ` (${pt.deadLetterReasons.join("; ")})` : ""}; gate granted ${pt.gate?.granted ?? "?"}, denied ${pt.gate?.denied ?? "?"}` });
  /** The recovery rows of one workload (runRecovery's results): ours live and over HTTP against Socket.IO, the raw reconnect. */
  const recoveryRows = (rc, id, why) => {
    const sio = msOf(rc.sio);
    const live = msOf(rc.live);
    const http = msOf(rc.http);
    const rp = rawPage(500);
    const rate = (list) => med(list, "rate");
    const rawLive = rc.rawLive?.length ? msOf(rc.rawLive) : null;
    add({ id: `${id}-live`, what: `Peer: reconnect recovery, ${rc.N} clients × ${rc.M} missed messages${why}, ours via live catch-up`, ours: `${f0(live)} ms`, baseline: `${f0(sio)} ms Socket.IO`, ratio: sio / live, of_raw: rawLive ? rawLive / live : null, target: { op: ">=", value: 1 }, note: `time until every client has all ${rc.M} (ours: and \`live\`); ratio = Socket.IO time ÷ ours; ${f0(rate(rc.live))} vs ${f0(rate(rc.sio))} entries/s; durable log vs in-memory; Socket.IO recovered ${med(rc.sio, "recovered")}/${rc.N}; lost ours ${rc.live.reduce((n, x) => n + x.lost, 0)}, theirs ${rc.sio.reduce((n, x) => n + x.lost, 0)}; ${rc.live.reduce((n, x) => n + (x.upgradeRetries ?? 0), 0)} of our upgrades hung (10 s) or were reset and were repeated; ${rc.sio.length} repeats` });
    if (rawLive) add({ id: `${id}-raw-live`, what: `Peer reference: the same reconnect on the raw limit (bench/raw: upgrade handed to the object, pages of 500 read, one hibernatable socket, hello + a frame per page + live; no auth or checks)`, ours: `${f0(rawLive)} ms`, baseline: `${f0(sio)} ms Socket.IO`, ratio: sio / rawLive, of_raw: null, target: null, note: `what the platform's upgrade path costs before any of our work: our live catch-up is ${f2(rawLive / live)} of it (the fraction-of-raw column above); lost ${rc.rawLive.reduce((n, x) => n + x.lost, 0)}` });
    add({ id: `${id}-http`, what: `Peer: same, ours via HTTP pages (limit = backlog, ≤ 500)`, ours: `${f0(http)} ms`, baseline: `${f0(sio)} ms Socket.IO`, ratio: sio / http, of_raw: rp ? rate(rc.http) / rp : null, target: { op: ">=", value: 1 }, note: `lost ${rc.http.reduce((n, x) => n + x.lost, 0)}, shed ${rc.http.reduce((n, x) => n + x.shed, 0)}` });
  };
  const rc = ok("recovery");
  if (rc) recoveryRows(rc, "peer", "");
  const rb = ok("recovery_backlog");
  if (rb) recoveryRows(rb, "peer-backlog", " (a long time offline: the backlog, not the upgrade, is the work)");
  const rd = ok("recovery_direct");
  if (rd) add(recoveryDiagnostic("peer-direct", "straight to the user Worker (bypassing wrangler dev's proxy)", rd, "not a product figure: shows what the dev proxy adds to every upgrade and frame"));
  const rq = ok("recovery_quiet");
  if (rq) {
    const busy = (x) => x?.wrangler_node ?? "?";
    add(recoveryDiagnostic("peer-quiet", "straight to the user Worker of a server started without wrangler dev's DevTools inspector (bench/lib/dev-quiet.mjs)", rq, `not a product figure: the runtime with no dev tooling in between. wrangler dev's inspector turns the fetch that hands each upgrade to its Durable Object into an event that wrangler's node process formats and appends to its debug log (wrangler node ${busy(rd?._cores)} cores busy in the diagnostic above, ${busy(rq.cores_quiet)} here); a deployed Worker does none of that`));
  }
  const ib = ok("inbox");
  if (ib) {
    const m = ib.medians;
    const wrong = (l) => l.reduce((n, x) => n + x.wrong, 0);
    const v1 = `v1: ${f0(m.v1.requests)} requests, ${f0(m.v1.ms)} ms (${ib.v1Parallel} in flight; one at a time ${f0(m.v1serial.ms)} ms)`;
    add({
      id: "p6",
      what: `P6 inbox screen: ${ib.convs} conversations × ${ib.perConv} new messages, summaries + newest ${ib.screen} each, via sync?timeline_limit=${ib.screen}`,
      ours: ib.supported && m.timeline.ms !== null ? `${f0(m.timeline.requests)} request(s), ${f0(m.timeline.ms)} ms` : "n/a",
      baseline: v1,
      ratio: ib.supported && m.timeline.ms !== null ? m.timeline.ms / m.v1.ms : null,
      of_raw: null,
      target: { op: "<=", value: 1 },
      note: ib.supported
        ? `ratio = timeline wall time ÷ v1's; screens checked (newest ${ib.screen} seqs of every conversation): wrong timeline ${wrong(ib.timeline)}, v1 ${wrong(ib.v1) + wrong(ib.v1serial)}; ${ib.repeats} repeats, setup ${f1(ib.setupSeconds)} s`
        : `the server answers sync?timeline_limit without a \`timeline\` (not implemented yet); v1 screens wrong ${wrong(ib.v1) + wrong(ib.v1serial)}; setup ${f1(ib.setupSeconds)} s`,
    });
  }
  return rows;
}

export function renderMarkdown(r) {
  const m = r.machine;
  const lines = [];
  lines.push(`# Benchmark results (${r.quick ? "--quick" : "full"} run)`);
  lines.push("");
  lines.push(`${r.started_at} · ${m.nproc} cores (${m.cpu}) · ${m.mem_total_gib} GiB · node ${m.node} · wrangler ${m.wrangler} (wrangler dev, local) · socket.io ${m.socket_io} · load ${m.loadavg_start.join(" ")} → ${(m.loadavg_end ?? []).join(" ")} · ${r.total_seconds} s · measured: ${m.src ?? "work tree"} (repo at ${m.git_commit}${m.src_uncommitted_files ? `, ${m.src_uncommitted_files} uncommitted files in src/` : ""})`);
  lines.push("");
  lines.push("| scenario | ours | compared with | ratio | target | met | fraction of raw | notes |");
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const row of r.summary) {
    const raw = row.id.startsWith("raw-");
    const ratio = raw ? "–" : row.ratio === null ? "n/a" : f2(row.ratio);
    const target = raw || !row.target ? "–" : `${row.target.op} ${row.target.value}`;
    const met = raw || !row.target ? "–" : row.pass === null ? "n/a" : row.pass ? "yes" : "**no**";
    lines.push(`| ${row.what} | ${row.ours} | ${row.baseline} | ${ratio} | ${target} | ${met} | ${raw ? "1" : f2(row.of_raw)} | ${row.note} |`);
  }
  const failed = PHASES.filter((k) => r[k]?.error);
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
  const cores = PHASES.filter((k) => r[k]?._cores);
  if (cores.length) {
    lines.push("");
    lines.push("Average cores busy per phase (of " + m.nproc + "): " + cores.map((k) => `${k}: workerd ${r[k]._cores.workerd}, raw workerd ${r[k]._cores.raw_workerd ?? 0}, bench client ${r[k]._cores.bench_client}, wrangler node ${r[k]._cores.wrangler_node}, peer ${r[k]._cores.peer}`).join("; ") + ". (Everything else on the machine, i.e. other people's jobs, is in latest.json as `other`; it is approximate, processes that end mid-phase make it swing.)");
  }
  const timed = PHASES.filter((k) => typeof r[k]?._seconds === "number");
  if (timed.length) {
    lines.push("");
    lines.push("Phase durations: " + timed.map((k) => `${k} ${f0(r[k]._seconds)} s`).join(", ") + `; whole run ${f0(r.total_seconds)} s.`);
  }
  lines.push("");
  if (r.dev_proxy_resets || r.connection_resets || r.socket_open_retries) {
    lines.push("");
    lines.push(`Transport retries: wrangler dev's proxy answered "Your worker restarted mid-request" ${r.dev_proxy_resets} time(s) (workerd did not restart; its connection to the user Worker dropped under load), ${r.connection_resets} keep-alive connection(s) were reset and ${r.socket_open_retries ?? 0} socket upgrade(s) timed out or were reset; the bench repeated those (all are idempotent: sends carry a client_msg_id, creations accept 409).`);
  }
  if (r.setup_shed_retries) lines.push(`${r.setup_shed_retries} 429/503 answer(s) to setup and probe requests were waited out (Retry-After, scaled) and repeated.`);
  lines.push("");
  lines.push(`Medians over repeats. Retry-After from 429/503 is honoured at ${r.settings.retry_after_scale}× scale (compressed). ${r.quick ? `--quick: smaller N, fewer repeats; push collapse window compressed to ${r.settings.push.collapseSeconds} s (PUSH_COLLAPSE_SECONDS) and ${r.settings.push.windowSeconds} s of sending.` : ""}`);
  lines.push("");
  return lines.join("\n");
}

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Horizontal bars of each ratio with its target tick; green when the target is met. */
export function renderSvg(r) {
  const rows = r.summary.filter((x) => !x.id.startsWith("raw-") && x.ratio !== null && x.target);
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
