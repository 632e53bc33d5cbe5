/**
 * Operator API: the token gate, the Prometheus exposition of the nine signals,
 * each signal moving when its cause happens, and the per-user / per-conversation
 * views. Metrics are buffered per isolate and flushed to the MetricsDO shards
 * (merged by the admin API; test/metrics.test.ts checks the merge), so a
 * signal is read by polling (bounded) rather than after a blind sleep.
 */
import { env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { MetricsSnapshot } from "../src/observability/metrics-do";
import { SIGNALS, type SignalName } from "../src/observability/signals";
import { BASE, Device, expectError, request, sleep, uid, userStub } from "./helpers";
import { TestSocket } from "./sockets";

const ADMIN = "test-admin";
const PREFIX = "offline_delivery_";
const POLL_MS = 3000;

/** GET with the admin token (or another token; null sends no authorization header). */
function admin<T = any>(path: string, token: string | null = ADMIN) {
  return request<T>("GET", path, token === null ? {} : { token });
}

async function snapshot(): Promise<MetricsSnapshot> {
  const res = await admin<MetricsSnapshot>("/admin/api/metrics.json");
  expect(res.status).toBe(200);
  return res.body;
}

/** Sum of a counter over all its label sets. */
function counter(snap: MetricsSnapshot, name: SignalName): number {
  return snap.counters.filter((c) => c.name === name).reduce((s, c) => s + c.value, 0);
}

function histogramCount(snap: MetricsSnapshot, name: SignalName): number {
  return snap.histograms.find((h) => h.name === name)?.count ?? 0;
}

/**
 * Polls the snapshot until `read(snap)` exceeds `before` (at most POLL_MS);
 * returns the last value read so the caller's assertion names the signal.
 */
async function until(read: (s: MetricsSnapshot) => number, before: number): Promise<number> {
  const deadline = Date.now() + POLL_MS;
  let value = read(await snapshot());
  while (value <= before && Date.now() < deadline) {
    await sleep(50);
    value = read(await snapshot());
  }
  return value;
}

/** Runs a conversation's alarm until it has nothing scheduled. */
async function runConversationAlarms(conv: string): Promise<void> {
  const stub = env.CONVERSATIONS.get(env.CONVERSATIONS.idFromName(conv));
  for (let i = 0; i < 50; i++) {
    if (!(await runDurableObjectAlarm(stub))) return;
  }
  throw new Error(`alarm of ${conv} kept rescheduling`);
}

describe("admin token gate", () => {
  const paths = ["/admin/api/metrics", "/admin/api/metrics.json", "/admin/api/users/someone", "/admin/api/conversations/someconv", "/admin/api/push"];

  it("refuses a missing token with the contract's error body", async () => {
    for (const path of paths) expectError(await admin(path, null), 401, "unauthorized");
  });

  it("refuses a wrong token, a device token and a malformed header", async () => {
    const dev = await Device.of(uid("u"));
    for (const path of paths) {
      expectError(await admin(path, "not-the-admin-token"), 401, "unauthorized");
      expectError(await admin(path, dev.jwt), 401, "unauthorized");
      expectError(await request("GET", path, { headers: { authorization: ADMIN } }), 401, "unauthorized");
      expectError(await request("GET", path, { headers: { authorization: `Basic ${ADMIN}` } }), 401, "unauthorized");
    }
  });

  it("accepts the admin token", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    for (const path of ["/admin/api/metrics", "/admin/api/metrics.json", `/admin/api/users/${alice.user}`, `/admin/api/conversations/${conv}`, "/admin/api/push"]) {
      const res = await admin(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });

  it("serves the dashboard page without a token (it holds no data)", async () => {
    const res = await SELF.fetch(`${BASE}/admin`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/admin/api/metrics.json");
    // Self-contained: no external scripts, styles or images.
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=["']?https?:/i);
    for (const name of Object.keys(SIGNALS)) expect(html).toContain(name);
  });
});

describe("Prometheus exposition", () => {
  it("has HELP and TYPE for all metric names and parses as text format 0.0.4", async () => {
    const res = await SELF.fetch(`${BASE}/admin/api/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(res.headers.get("content-type")).toContain("version=0.0.4");
    const text = await res.text();
    expect(text.endsWith("\n")).toBe(true);
    const names = Object.keys(SIGNALS) as SignalName[];
    expect(names).toHaveLength(14); // the nine signals' metrics, plus media deletions
    const lines = text.trimEnd().split("\n");
    for (const name of names) {
      const spec = SIGNALS[name];
      const full = PREFIX + name;
      expect(lines).toContain(`# HELP ${full} ${spec.help}`);
      expect(lines).toContain(`# TYPE ${full} ${spec.type}`);
      // TYPE comes right after HELP and before any sample of the family.
      const help = lines.indexOf(`# HELP ${full} ${spec.help}`);
      expect(lines[help + 1]).toBe(`# TYPE ${full} ${spec.type}`);
      const firstSample = lines.findIndex((l) => !l.startsWith("#") && (l.startsWith(full + " ") || l.startsWith(full + "{") || l.startsWith(full + "_")));
      expect(firstSample).toBeGreaterThan(help + 1);
      if (spec.type === "histogram") {
        const buckets = lines.filter((l) => l.startsWith(`${full}_bucket{`));
        expect(buckets).toHaveLength(spec.buckets.length + 1);
        expect(buckets.at(-1)).toMatch(new RegExp(`^${full}_bucket\\{le="\\+Inf"\\} \\d+$`));
        // Cumulative buckets never decrease, and +Inf equals _count.
        const counts = buckets.map((l) => Number(l.split(" ").at(-1)));
        for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
        const count = lines.find((l) => l.startsWith(`${full}_count `));
        expect(Number(count?.split(" ")[1])).toBe(counts.at(-1));
        expect(lines.some((l) => l.startsWith(`${full}_sum `))).toBe(true);
      }
    }
    // Every line is a comment or a well-formed sample with a numeric value.
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? -?(\d+(\.\d+)?([eE][-+]?\d+)?|\+Inf|-Inf|NaN)$/;
    for (const line of lines) {
      if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
      expect(line).toMatch(sample);
      expect(line.startsWith(PREFIX)).toBe(true);
    }
  });
});

describe("each signal moves when its cause happens", () => {
  it("sync_requests_total, device_backlog_entries and sync_page_seconds rise with GET /v1/sync", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.sendOk(conv, "one");
    await alice.sendOk(conv, "two");
    const before = await snapshot();
    const res = await bob.sync();
    expect(res.status).toBe(200);
    expect(await until((s) => counter(s, "sync_requests_total"), counter(before, "sync_requests_total"))).toBeGreaterThan(counter(before, "sync_requests_total"));
    expect(await until((s) => histogramCount(s, "sync_page_seconds"), histogramCount(before, "sync_page_seconds"))).toBeGreaterThan(
      histogramCount(before, "sync_page_seconds"),
    );
    expect(await until((s) => histogramCount(s, "device_backlog_entries"), histogramCount(before, "device_backlog_entries"))).toBeGreaterThan(
      histogramCount(before, "device_backlog_entries"),
    );
  });

  it("sync_page_seconds count rises after a history page", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    await alice.sendOk(conv);
    const before = histogramCount(await snapshot(), "sync_page_seconds");
    expect((await alice.page(conv, "after=0")).status).toBe(200);
    expect(await until((s) => histogramCount(s, "sync_page_seconds"), before)).toBeGreaterThan(before);
  });

  it("duplicate_sends_total rises when a send repeats its client_msg_id", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const id = uid("m");
    await alice.sendOk(conv, "once", id);
    const before = counter(await snapshot(), "duplicate_sends_total");
    const again = await alice.send(conv, "once", id);
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(await until((s) => counter(s, "duplicate_sends_total"), before)).toBeGreaterThan(before);
  });

  it("cursor_advanced_entries_total rises by the distance a received cursor moves", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 3; i++) await alice.sendOk(conv, `m${i}`);
    const before = counter(await snapshot(), "cursor_advanced_entries_total");
    const res = await bob.cursors({ received: { [conv]: 4 } });
    expect(res.status).toBe(200);
    expect(res.body.received[conv]).toBe(4);
    const after = await until((s) => counter(s, "cursor_advanced_entries_total"), before + 3);
    expect(after - before).toBeGreaterThanOrEqual(4);
  });

  it("duplicate_deliveries_total rises when a page below the acked cursor is read again", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 3; i++) await alice.sendOk(conv, `m${i}`);
    // Read once before the ack too: the object must not answer the second read with the cursor it saw here.
    expect((await bob.page(conv, "after=0")).status).toBe(200);
    expect((await bob.cursors({ received: { [conv]: 4 } })).status).toBe(200);
    const before = counter(await snapshot(), "duplicate_deliveries_total");
    const page = await bob.page(conv, "after=0");
    expect(page.status).toBe(200);
    expect(page.body.messages.length).toBe(4);
    const after = await until((s) => counter(s, "duplicate_deliveries_total"), before + 3);
    expect(after - before).toBeGreaterThanOrEqual(4);
  });

  it("socket_connects_total rises when a live socket and an inbox socket open", async () => {
    const alice = await Device.of(uid("alice"));
    const conv = await alice.createConversation([]);
    const before = await snapshot();
    const live = await TestSocket.must(`/v1/conversations/${conv}/live?after=0`, alice.jwt);
    await live.next("live");
    const labelled = (s: MetricsSnapshot, socket: string) =>
      s.counters.filter((c) => c.name === "socket_connects_total" && c.labels.socket === socket).reduce((n, c) => n + c.value, 0);
    expect(await until((s) => labelled(s, "live"), labelled(before, "live"))).toBeGreaterThan(labelled(before, "live"));
    const inbox = await TestSocket.must("/v1/inbox", alice.jwt);
    await inbox.next("hello");
    expect(await until((s) => labelled(s, "inbox"), labelled(before, "inbox"))).toBeGreaterThan(labelled(before, "inbox"));
    live.close();
    inbox.close();
  });

  it("oldest_undelivered_seconds is reported by a conversation after its outbox runs", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.sendOk(conv);
    await runConversationAlarms(conv);
    const snap = await snapshot();
    const gauge = snap.gauges.find((g) => g.name === "oldest_undelivered_seconds");
    expect(gauge).toBeDefined();
    expect(gauge!.sources).toBeGreaterThanOrEqual(1);
    expect(gauge!.value).toBeGreaterThanOrEqual(0);
  });

  it("retention_expired_total and retention_unavailable_total rise when retention removes what a device asks for", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    // Baseline first: the conversation's own alarm may start removing entries as soon as they exceed the policy.
    const before = await snapshot();
    const conv = await alice.createConversation([bob.user], { retention: { max_messages: 2 } });
    for (let i = 0; i < 5; i++) await alice.sendOk(conv, `m${i}`);
    await runConversationAlarms(conv);
    const stats = await admin(`/admin/api/conversations/${conv}`);
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ id: conv, head_seq: 6, floor_seq: 4, expired_total: 4, retention: { max_messages: 2 } });
    const page = await bob.page(conv, "after=0");
    expect(page.status).toBe(200);
    expect(page.body.messages.map((m) => m.seq)).toEqual([5, 6]);
    const expired = await until((s) => counter(s, "retention_expired_total"), counter(before, "retention_expired_total") + 3);
    expect(expired - counter(before, "retention_expired_total")).toBeGreaterThanOrEqual(4);
    const unavailable = await until((s) => counter(s, "retention_unavailable_total"), counter(before, "retention_unavailable_total"));
    expect(unavailable).toBeGreaterThan(counter(before, "retention_unavailable_total"));
    const after = await admin(`/admin/api/conversations/${conv}`);
    expect(after.body.unavailable_total).toBeGreaterThan(0);
  });

  it("push_sent_total and push_converted_total rise when an offline device is pushed and then syncs", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const reg = await bob.post("/v1/devices", { push: { provider: "webhook", token: uid("tok") } });
    expect(reg.status).toBe(200);
    const conv = await alice.createConversation([bob.user]);
    const before = await snapshot();
    await alice.sendOk(conv, "wake up");
    await runConversationAlarms(conv);
    // The push waits PUSH_AGGREGATE_MS after the first pending entry: run bob's alarm until it enqueued one.
    const deadline = Date.now() + 5000;
    let enqueued = 0;
    while (Date.now() < deadline) {
      await runDurableObjectAlarm(userStub(bob.user));
      enqueued = (await admin(`/admin/api/users/${bob.user}`)).body.pushes_enqueued;
      if (enqueued > 0) break;
      await sleep(100);
    }
    expect(enqueued).toBe(1);
    const sent = await until((s) => counter(s, "push_sent_total"), counter(before, "push_sent_total"));
    expect(sent).toBeGreaterThan(counter(before, "push_sent_total"));
    expect((await bob.sync()).status).toBe(200);
    const converted = await until((s) => counter(s, "push_converted_total"), counter(before, "push_converted_total"));
    expect(converted).toBeGreaterThan(counter(before, "push_converted_total"));
    expect((await admin(`/admin/api/users/${bob.user}`)).body.pushes_converted).toBe(1);
  });
});

describe("per-user and per-conversation views", () => {
  it("/admin/api/users/:id shows the backlog of each device", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"), "phone");
    const bobLaptop = await Device.of(bob.user, "laptop");
    await bob.register();
    await bobLaptop.register();
    const conv = await alice.createConversation([bob.user]);
    for (let i = 0; i < 3; i++) await alice.sendOk(conv, `m${i}`);
    await runConversationAlarms(conv);
    // phone has received everything; laptop nothing.
    expect((await bob.cursors({ received: { [conv]: 4 } })).status).toBe(200);
    const res = await admin(`/admin/api/users/${bob.user}`);
    expect(res.status).toBe(200);
    expect(res.body.conversations).toBe(1);
    const byDevice = Object.fromEntries((res.body.devices as { device_id: string; backlog_entries: number; oldest_undelivered_seconds: number }[]).map((d) => [d.device_id, d]));
    expect(byDevice.phone).toMatchObject({ device_id: "phone", backlog_entries: 0, online: false });
    expect(byDevice.laptop).toMatchObject({ device_id: "laptop", backlog_entries: 4 });
    expect(byDevice.laptop!.oldest_undelivered_seconds).toBeGreaterThanOrEqual(0);
  });

  it("/admin/api/conversations/:id shows the log, retention and delivery state", async () => {
    const alice = await Device.of(uid("alice"));
    const bob = await Device.of(uid("bob"));
    const conv = await alice.createConversation([bob.user]);
    await alice.sendOk(conv);
    const res = await admin(`/admin/api/conversations/${conv}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: conv, head_seq: 2, floor_seq: 0, members: 2, expired_total: 0, unavailable_total: 0, live_sockets: 0 });
    expect(typeof res.body.outbox_pending).toBe("number");
    expect(typeof res.body.oldest_undelivered_ms).toBe("number");
  });

  it("an unknown conversation is a contract error, an invalid id is refused", async () => {
    const res = await admin(`/admin/api/conversations/${uid("nothing")}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBeTypeOf("string");
    expect((await admin("/admin/api/users/bad%20id")).status).toBe(400);
  });

  it("/admin/api/push lists every provider's gate", async () => {
    const res = await admin<{ providers: { provider: string; stats: Record<string, number>; circuit_open: boolean; dead_letters: unknown[] }[] }>("/admin/api/push");
    expect(res.status).toBe(200);
    expect(res.body.providers.map((p) => p.provider)).toEqual(["webhook", "webpush", "apns", "fcm"]);
    for (const p of res.body.providers) {
      expect(p.stats).toMatchObject({ granted: expect.any(Number), denied: expect.any(Number), throttled: expect.any(Number), dead_letters: expect.any(Number) });
      expect(typeof p.circuit_open).toBe("boolean");
      expect(Array.isArray(p.dead_letters)).toBe(true);
    }
  });
});

describe("reconnect storm", () => {
  it("shed_total counts a 503 when a user opens more inbox sockets than allowed", async () => {
    const alice = await Device.of(uid("alice"));
    const before = counter(await snapshot(), "shed_total");
    const sockets: TestSocket[] = [];
    let refused: Response | null = null;
    for (let i = 0; i < 101 && !refused; i++) {
      const s = await TestSocket.open("/v1/inbox", alice.jwt);
      if (s instanceof Response) refused = s;
      else sockets.push(s);
    }
    expect(refused?.status).toBe(503);
    expect(sockets).toHaveLength(100);
    const labelled = (s: MetricsSnapshot) => s.counters.filter((c) => c.name === "shed_total" && c.labels.status === "503").reduce((n, c) => n + c.value, 0);
    const after = await until(labelled, before);
    expect(after).toBeGreaterThan(before);
    for (const s of sockets) s.close();
  });
});
