/**
 * Hostile input (issue 7): malformed, oversized, mistyped, out-of-range and
 * unicode-junk requests against every endpoint of PROTOCOL.md, bad tokens of
 * every kind, requests by non-members and against other users' devices, and
 * junk frames on live and inbox sockets.
 *
 * Expected of every case: no 5xx (a 503 with Retry-After is load shedding, not
 * a failure), every 4xx carries the contract's JSON error body with a code from
 * the table at its status (426 `invalid_request` for plain requests to socket
 * paths), no bad request or bad token is accepted, and nothing changes: the
 * Durable Objects' rows are snapshotted before and after and compared.
 *
 * Random junk is sampled with fast-check from a printed seed; replay with
 * HOSTILE_SEED=<seed> (VITE_HOSTILE_SEED inside the Workers pool).
 */
import { runInDurableObject } from "cloudflare:test";
import { sign } from "hono/jwt";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../src/protocol/errors";
import {
  changeMembersSchema,
  createConversationSchema,
  cursorsSchema,
  registerDeviceSchema,
  sendMessageSchema,
  toDeviceAckSchema,
  toDeviceSendSchema,
} from "../src/protocol/schemas";
import { convStub, Device, flush, SECRET, uid, userStub } from "./helpers";
import {
  BAD_IDS,
  BAD_PATH_SEGMENTS,
  BAD_QUERY_INTS,
  CONTENT_TYPES,
  junk,
  padded,
  RAW_BODIES,
  RAW_NUMBERS,
  WRONG_TYPES,
  type Case,
} from "./hostile/cases";
import { badTokens } from "./hostile/tokens";
import { directFetch } from "./model/direct";
import { TestSocket } from "./sockets";

const viteEnv = (import.meta as unknown as { env?: Record<string, string | undefined> }).env ?? {};
const seedSetting = viteEnv.HOSTILE_SEED ?? viteEnv.VITE_HOSTILE_SEED;
const SEED = seedSetting ? Number(seedSetting) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
const JUNK_PER_KIND = 120;
const CONCURRENCY = 4;
const REQUEST_TIMEOUT_MS = 15_000;

const slow: string[] = [];
const counts = { requests: 0, frames: 0, fiveXX: 0, shed: 0, byStatus: new Map<number, number>() };

interface Outcome {
  status: number;
  text: string;
  retryAfter: string | null;
}

async function send(c: Case): Promise<Outcome> {
  const headers = new Headers();
  if (c.auth) headers.set("authorization", c.auth);
  for (const [k, v] of Object.entries(c.headers ?? {})) headers.set(k, v);
  const res = await directFetch(c.path, { method: c.method, headers, ...(c.body !== undefined ? { body: c.body } : {}) });
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "hostile test");
  }
  const text = res.status === 101 ? "" : await res.text();
  counts.requests += 1;
  counts.byStatus.set(res.status, (counts.byStatus.get(res.status) ?? 0) + 1);
  return { status: res.status, text, retryAfter: res.headers.get("retry-after") };
}

/** The contract's verdict on one response; null when it is fine. */
function judge(c: Case, o: Outcome): string | null {
  if (o.status === 503) {
    counts.shed += 1;
    return o.retryAfter ? null : "503 without Retry-After";
  }
  if (o.status >= 500) {
    counts.fiveXX += 1;
    return `${o.status} ${o.text.slice(0, 200)}`;
  }
  if (o.status < 400) return `accepted with ${o.status}: ${o.text.slice(0, 200)}`;
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(o.text) as typeof body;
  } catch {
    return `${o.status} without a JSON body: ${o.text.slice(0, 100)}`;
  }
  const code = body.error?.code;
  if (typeof code !== "string" || !(code in ERROR_STATUS)) return `${o.status} with unknown code ${JSON.stringify(code)}`;
  if (typeof body.error?.message !== "string" || body.error.message.length === 0) return `${o.status} ${code} without a message`;
  const status = ERROR_STATUS[code as keyof typeof ERROR_STATUS];
  const okStatus = status === o.status || (o.status === 426 && code === "invalid_request");
  if (!okStatus) return `${o.status} with code ${code} (expects ${status})`;
  if (o.status === 429 && !o.retryAfter) return "429 without Retry-After";
  if (c.expect && !c.expect.includes(o.status)) return `expected ${c.expect.join("/")}, got ${o.status} ${code}`;
  return null;
}

async function runAll(cases: Case[]): Promise<string[]> {
  const problems: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      try {
        const t0 = Date.now();
        const outcome = await Promise.race([
          send(c),
          new Promise<null>((resolve) => setTimeout(() => resolve(null), REQUEST_TIMEOUT_MS)),
        ]);
        if (outcome === null) {
          problems.push(`${c.name} [${c.method} ${c.path.slice(0, 120)}]: no answer within ${REQUEST_TIMEOUT_MS} ms`);
          continue;
        }
        if (Date.now() - t0 > 400) slow.push(`${c.name} ${Date.now() - t0} ms`);
        const verdict = judge(c, outcome);
        if (verdict) problems.push(`${c.name} [${c.method} ${c.path.slice(0, 120)}]: ${verdict}`);
      } catch (err) {
        problems.push(`${c.name} [${c.method} ${c.path.slice(0, 120)}]: threw ${String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return problems;
}

async function mustOpen(path: string, jwt: string): Promise<TestSocket> {
  const s = await TestSocket.open(path, jwt, { transport: "direct" });
  if (s instanceof Response) throw new Error(`upgrade refused: ${s.status} ${await s.text()}`);
  return s;
}

// ---------------------------------------------------------------- the world under attack

interface World {
  alice: Device;
  /** Alice tokens with distinct device ids (never registered), spreading the per-device rate limit. */
  aliceTokens: string[];
  bob: Device;
  carol: Device;
  conv: string;
  head: number;
  carolConv: string;
  epoch: string;
  /** Ids hostile create requests name: none of them may exist afterwards. */
  newIds: string[];
}

let w: World;

async function snapshot(): Promise<unknown> {
  const conv = (id: string) =>
    runInDurableObject(convStub(id), (_o, state) => {
      const sql = state.storage.sql;
      return {
        conversation: sql.exec("SELECT id, epoch, head_seq, floor_seq, msg_count, member_count, max_age_seconds, max_messages FROM conversation").toArray(),
        entries: sql.exec("SELECT seq, msg_id, type, sender_user, sender_device, client_msg_id, body FROM entries ORDER BY seq").toArray(),
        intervals: sql.exec("SELECT * FROM intervals ORDER BY user_id, from_seq").toArray(),
        members: sql.exec("SELECT * FROM members ORDER BY user_id").toArray(),
        cursors: sql.exec("SELECT * FROM device_cursors ORDER BY user_id, device_id").toArray(),
      };
    });
  const user = (name: string) =>
    runInDurableObject(userStub(name), (_o, state) => {
      const sql = state.storage.sql;
      return {
        meta: sql.exec("SELECT queue_seq FROM user_meta").toArray(),
        devices: sql.exec("SELECT device_id, push_provider, push_token, push_json, dropped FROM devices ORDER BY device_id").toArray(),
        conversations: sql.exec("SELECT conversation_id, epoch, head_seq, floor_seq, read_seq, unread, membership, member_seq, change_pos FROM conversations ORDER BY conversation_id").toArray(),
        received: sql.exec("SELECT * FROM received ORDER BY device_id, conversation_id").toArray(),
        queue: sql.exec("SELECT device_id, id, from_user, from_device, body FROM queue ORDER BY device_id, id").toArray(),
        queueSends: sql.exec("SELECT from_user, from_device, client_msg_id, queued FROM queue_sends ORDER BY from_user, from_device, client_msg_id").toArray(),
      };
    });
  const created = await Promise.all(
    w.newIds.map((id) => runInDurableObject(convStub(id), (_o, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'conversation'").toArray().length > 0
      ? state.storage.sql.exec("SELECT id FROM conversation").toArray().length
      : 0)),
  );
  return {
    conv: await conv(w.conv),
    carolConv: await conv(w.carolConv),
    alice: await user(w.alice.user),
    bob: await user(w.bob.user),
    carol: await user(w.carol.user),
    created: created.reduce((a, b) => a + b, 0),
  };
}

beforeAll(async () => {
  const alice = await Device.of(uid("alice"), "a-phone");
  const aliceLaptop = await Device.of(alice.user, "a-laptop");
  const bob = await Device.of(uid("bob"), "b-phone");
  const carol = await Device.of(uid("carol"), "c-phone");
  for (const d of [alice, aliceLaptop, bob, carol]) await d.register();
  const conv = await alice.createConversation([bob.user]);
  const carolConv = await carol.createConversation([]);
  await alice.sendOk(conv, "one");
  await bob.sendOk(conv, "two");
  expect((await bob.post("/v1/to-device", { user: alice.user, client_msg_id: "seed1", body: { k: 1 } })).status).toBe(202);
  expect((await alice.cursors({ received: { [conv]: 2 }, read: { [conv]: 2 } })).status).toBe(200);
  await flush(conv);
  await flush(carolConv);
  const summary = await alice.summary(conv);
  const aliceTokens = await Promise.all(Array.from({ length: 40 }, (_, i) => sign({ sub: alice.user, did: `ah${i}`, exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET, "HS256")));
  w = { alice, aliceTokens, bob, carol, conv, head: summary.body.head_seq, carolConv, epoch: summary.body.epoch, newIds: [] };
});

// ---------------------------------------------------------------- case generation

let rot = 0;
/** An Authorization header of alice (a rotating device id, so the rate limit never hides a verdict). */
const alice = () => `Bearer ${w.aliceTokens[rot++ % w.aliceTokens.length]}`;
const json = { "content-type": "application/json" };

interface Template {
  name: string;
  method: string;
  path: string;
  body?: Record<string, unknown>;
  upgrade?: boolean;
}

/** Valid requests of alice, one per endpoint; the hostile cases are these with one thing wrong. */
function templates(): Template[] {
  const { conv } = w;
  const newId = uid("hnew");
  w.newIds.push(newId);
  return [
    { name: "register device", method: "POST", path: "/v1/devices", body: { push: { provider: "webhook", token: "tok" } } },
    { name: "delete device", method: "DELETE", path: "/v1/devices/a-laptop" },
    { name: "create conversation", method: "POST", path: "/v1/conversations", body: { id: newId, members: [w.bob.user] } },
    { name: "summary", method: "GET", path: `/v1/conversations/${conv}` },
    { name: "members", method: "POST", path: `/v1/conversations/${conv}/members`, body: { add: [w.carol.user] } },
    { name: "send", method: "POST", path: `/v1/conversations/${conv}/messages`, body: { client_msg_id: "hostile-send", body: { text: "x" } } },
    { name: "page", method: "GET", path: `/v1/conversations/${conv}/messages?after=0` },
    { name: "expired receipts", method: "GET", path: `/v1/conversations/${conv}/expired` },
    { name: "sync", method: "GET", path: "/v1/sync" },
    { name: "to-device send", method: "POST", path: "/v1/to-device", body: { user: w.bob.user, client_msg_id: "hostile-td", body: { k: 1 } } },
    { name: "to-device list", method: "GET", path: "/v1/to-device" },
    { name: "to-device ack", method: "POST", path: "/v1/to-device/ack", body: { up_to: 1_000_000 } },
    { name: "cursors", method: "POST", path: "/v1/cursors", body: { received: { [conv]: 3 }, read: { [conv]: 3 } } },
    { name: "live socket", method: "GET", path: `/v1/conversations/${conv}/live?after=0`, upgrade: true },
    { name: "inbox socket", method: "GET", path: "/v1/inbox", upgrade: true },
  ];
}

function fromTemplate(t: Template, auth: string, name: string, expectStatus?: number[]): Case {
  return {
    name: `${t.name}: ${name}`,
    method: t.method,
    path: t.path,
    auth,
    headers: { ...(t.body ? json : {}), ...(t.upgrade ? { upgrade: "websocket" } : {}) },
    ...(t.body ? { body: JSON.stringify(t.body) } : {}),
    ...(expectStatus ? { expect: expectStatus } : {}),
  };
}

async function tokenCases(): Promise<Case[]> {
  const cases: Case[] = [];
  const tokens = await badTokens(w.alice.user, w.alice.device);
  for (const t of templates()) {
    for (const bad of tokens) cases.push(fromTemplate(t, bad.header, `bad token: ${bad.name}`, [401]));
    // A query token is only for WebSocket upgrades; on plain requests it is no credential.
    const good = w.aliceTokens[0]!;
    const sep = t.path.includes("?") ? "&" : "?";
    if (!t.upgrade) cases.push({ ...fromTemplate(t, "", "access_token on a plain request", [401]), path: `${t.path}${sep}access_token=${good}` });
    else {
      for (const bad of tokens.slice(0, 12)) {
        const raw = bad.header.replace(/^Bearer /, "");
        cases.push({ ...fromTemplate(t, "", `bad query token: ${bad.name}`, [401]), path: `${t.path}${sep}access_token=${encodeURIComponent(raw)}` });
      }
    }
  }
  // Admin endpoints: a device token, bad tokens and junk are no admin token.
  for (const path of ["/admin/api/metrics", "/admin/api/metrics.json", `/admin/api/users/${w.alice.user}`, `/admin/api/conversations/${w.conv}`, "/admin/api/push"]) {
    // (A trailing space is no mutation: header values are trimmed by the Fetch API.)
    for (const auth of [alice(), "", "Bearer test-admin-", "Bearer TEST-ADMIN", "Bearer test-admi", "Basic dGVzdC1hZG1pbg==", ...tokens.slice(0, 5).map((t) => t.header)]) {
      cases.push({ name: `admin ${path}: not the admin token`, method: "GET", path, auth, expect: [401] });
    }
  }
  return cases;
}

/** Authenticated but not allowed: non-members, other users' devices, taken ids, unknown objects. */
function authzCases(): Case[] {
  const { conv, carolConv } = w;
  const carol = `Bearer ${w.carol.jwt}`;
  const bob = `Bearer ${w.bob.jwt}`;
  const c = (name: string, method: string, path: string, auth: string, body: unknown, expectStatus: number[], headers: Record<string, string> = {}): Case => ({
    name,
    method,
    path,
    auth,
    headers: { ...(body !== undefined ? json : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    expect: expectStatus,
  });
  const up = { upgrade: "websocket" };
  return [
    c("non-member summary", "GET", `/v1/conversations/${conv}`, carol, undefined, [403]),
    c("non-member page", "GET", `/v1/conversations/${conv}/messages?after=0`, carol, undefined, [403]),
    c("non-member page with a stale epoch (no epoch leak)", "GET", `/v1/conversations/${conv}/messages?after=0&epoch=zzz`, carol, undefined, [403]),
    c("non-member backward page", "GET", `/v1/conversations/${conv}/messages?before=3`, carol, undefined, [403]),
    c("non-member send", "POST", `/v1/conversations/${conv}/messages`, carol, { client_msg_id: "intruder", body: { text: "hi" } }, [403]),
    c("non-member adds self", "POST", `/v1/conversations/${conv}/members`, carol, { add: [w.carol.user] }, [403]),
    c("non-member removes a member", "POST", `/v1/conversations/${conv}/members`, carol, { remove: [w.alice.user] }, [403]),
    c("non-member cursors", "POST", "/v1/cursors", carol, { received: { [conv]: 1 }, read: { [conv]: 1 } }, [403]),
    c("non-member cursors mixed with own conversation", "POST", "/v1/cursors", carol, { read: { [carolConv]: 1, [conv]: 1 } }, [403]),
    c("non-member expired receipts", "GET", `/v1/conversations/${conv}/expired`, carol, undefined, [403]),
    c("non-member live socket", "GET", `/v1/conversations/${conv}/live?after=0`, carol, undefined, [403], up),
    c("member spoofing identity headers on a foreign socket", "GET", `/v1/conversations/${carolConv}/live`, alice(), undefined, [403], { ...up, "x-od-user": w.carol.user, "x-od-device": "c-phone" }),
    c("member spoofing identity headers on a page", "GET", `/v1/conversations/${carolConv}/messages?after=0`, alice(), undefined, [403], { "x-od-user": w.carol.user }),
    c("to-device to a user sharing no conversation", "POST", "/v1/to-device", carol, { user: w.alice.user, client_msg_id: "td-intruder", body: {} }, [403]),
    c("to-device to a user sharing no conversation, named device", "POST", "/v1/to-device", carol, { user: w.alice.user, device: "a-phone", client_msg_id: "td-intruder2", body: {} }, [403]),
    c("to-device to an unknown device", "POST", "/v1/to-device", alice(), { user: w.bob.user, device: "no-such-device", client_msg_id: "td-unknown", body: {} }, [404]),
    c("delete another user's device (by its name)", "DELETE", "/v1/devices/a-phone", bob, undefined, [404]),
    c("delete another user's device (by its name, 2)", "DELETE", "/v1/devices/a-laptop", carol, undefined, [404]),
    c("delete an unknown device", "DELETE", "/v1/devices/never-registered", alice(), undefined, [404]),
    c("create with a taken id", "POST", "/v1/conversations", carol, { id: conv, members: [w.carol.user] }, [409]),
    c("create with a taken id (own)", "POST", "/v1/conversations", alice(), { id: conv, members: [] }, [409]),
    c("stale epoch", "GET", `/v1/conversations/${conv}/messages?after=0&epoch=stale`, alice(), undefined, [409]),
    c("stale epoch on a socket", "GET", `/v1/conversations/${conv}/live?after=0&epoch=stale`, alice(), undefined, [409], up),
    c("after beyond head", "GET", `/v1/conversations/${conv}/messages?after=${w.head + 1}`, alice(), undefined, [400]),
    c("after beyond head on a socket", "GET", `/v1/conversations/${conv}/live?after=${w.head + 1}`, alice(), undefined, [400], up),
    c("after and before together", "GET", `/v1/conversations/${conv}/messages?after=0&before=2`, alice(), undefined, [400]),
    c("unknown conversation summary", "GET", `/v1/conversations/${uid("nope")}`, alice(), undefined, [404]),
    c("unknown conversation page", "GET", `/v1/conversations/${uid("nope")}/messages`, alice(), undefined, [404]),
    c("unknown conversation send", "POST", `/v1/conversations/${uid("nope")}/messages`, alice(), { client_msg_id: "x", body: 1 }, [404]),
    c("unknown conversation members", "POST", `/v1/conversations/${uid("nope")}/members`, alice(), { add: [w.bob.user] }, [404]),
    c("unknown conversation socket", "GET", `/v1/conversations/${uid("nope")}/live`, alice(), undefined, [404], up),
    c("cursor for an unknown conversation", "POST", "/v1/cursors", alice(), { received: { [uid("nope")]: 1 } }, [404]),
    c("cursor named __proto__", "POST", "/v1/cursors", alice(), { received: { ["__proto__"]: 1 } }, [404]),
    c("cursor named constructor", "POST", "/v1/cursors", alice(), { read: { constructor: 1 } }, [404]),
    c("cursor: one unknown among valid ones changes nothing", "POST", "/v1/cursors", alice(), { received: { [conv]: 3, [uid("nope")]: 1 } }, [404]),
    c("sync with a checkpoint from the future", "GET", "/v1/sync?since=c1.zzzzzz", alice(), undefined, [400]),
    c("plain request to a live socket path", "GET", `/v1/conversations/${conv}/live`, alice(), undefined, [426]),
    c("plain request to the inbox path", "GET", "/v1/inbox", alice(), undefined, [426]),
    c("plain request to a socket path, no token", "GET", "/v1/inbox", "", undefined, [426, 401]),
  ];
}

function pathCases(): Case[] {
  const cases: Case[] = [];
  const { conv } = w;
  const shapes: [string, string, (seg: string) => string, boolean][] = [
    ["summary", "GET", (s) => `/v1/conversations/${s}`, false],
    ["members", "POST", (s) => `/v1/conversations/${s}/members`, false],
    ["send", "POST", (s) => `/v1/conversations/${s}/messages`, false],
    ["page", "GET", (s) => `/v1/conversations/${s}/messages?after=0`, false],
    ["expired", "GET", (s) => `/v1/conversations/${s}/expired`, false],
    ["live", "GET", (s) => `/v1/conversations/${s}/live`, true],
    ["delete device", "DELETE", (s) => `/v1/devices/${s}`, false],
    ["admin user", "GET", (s) => `/admin/api/users/${s}`, false],
  ];
  const bodies: Record<string, string> = { members: JSON.stringify({ add: [w.bob.user] }), send: JSON.stringify({ client_msg_id: "p", body: 1 }) };
  for (const [name, method, path, upgrade] of shapes) {
    for (const seg of BAD_PATH_SEGMENTS) {
      const admin = name.startsWith("admin");
      cases.push({
        name: `${name}: bad path id ${seg.slice(0, 20)}`,
        method,
        path: path(seg),
        auth: admin ? "Bearer test-admin" : alice(),
        headers: { ...(bodies[name] ? json : {}), ...(upgrade ? { upgrade: "websocket" } : {}) },
        ...(bodies[name] ? { body: bodies[name] } : {}),
        // A segment that does not route is 404; one that routes is refused as a bad id.
        expect: [400, 404],
      });
    }
  }
  // Extra path segments and methods nobody serves.
  for (const [method, path] of [
    ["GET", `/v1/conversations/${conv}/messages/1`],
    ["GET", "/v1/conversations/"],
    ["GET", "/v1/"],
    ["GET", "/v1/devices"],
    ["GET", "/v1/to-device/ack"],
    ["GET", "/v1/cursors"],
    ["POST", "/v1/sync"],
    ["PUT", "/v1/devices"],
    ["PATCH", `/v1/conversations/${conv}`],
    ["DELETE", `/v1/conversations/${conv}`],
    ["DELETE", `/v1/conversations/${conv}/messages`],
    ["PUT", `/v1/conversations/${conv}/members`],
    ["OPTIONS", "/v1/sync"],
    ["DELETE", "/v1/to-device"],
    ["POST", "/healthz"],
    ["GET", "/v2/sync"],
    ["GET", "/%00"],
  ] as const) {
    cases.push({ name: `no such route ${method}`, method, path, auth: alice(), expect: [404] });
  }
  // URL normalisation turns %2e%2e into ..: this lands on the admin API, which wants the admin token.
  cases.push({ name: "dot-dot into the admin API", method: "GET", path: "/v1/%2e%2e/admin/api/metrics", auth: alice(), expect: [401, 404] });
  return cases;
}

function queryCases(): Case[] {
  const { conv } = w;
  const cases: Case[] = [];
  const q = (name: string, path: string, upgrade = false, expectStatus = [400]) =>
    cases.push({ name, method: "GET", path, auth: alice(), headers: upgrade ? { upgrade: "websocket" } : {}, expect: expectStatus });
  for (const v of BAD_QUERY_INTS) {
    q(`page after=${v.slice(0, 12)}`, `/v1/conversations/${conv}/messages?after=${v}`);
    q(`page before=${v.slice(0, 12)}`, `/v1/conversations/${conv}/messages?before=${v}`);
    q(`page limit=${v.slice(0, 12)}`, `/v1/conversations/${conv}/messages?after=0&limit=${v}`);
    q(`sync limit=${v.slice(0, 12)}`, `/v1/sync?limit=${v}`);
    q(`to-device limit=${v.slice(0, 12)}`, `/v1/to-device?limit=${v}`);
    q(`live after=${v.slice(0, 12)}`, `/v1/conversations/${conv}/live?after=${v}`, true);
  }
  for (const v of ["0", "501", "1000000"]) {
    q(`page limit=${v}`, `/v1/conversations/${conv}/messages?after=0&limit=${v}`);
    q(`sync limit=${v}`, `/v1/sync?limit=${v}`);
    q(`to-device limit=${v}`, `/v1/to-device?limit=${v}`);
  }
  q("page before=0", `/v1/conversations/${conv}/messages?before=0`);
  for (const dup of ["after=0&after=1", "after=0&limit=1&limit=2", "before=2&before=3", "after=0&epoch=a&epoch=b"]) {
    q(`page duplicate keys ${dup}`, `/v1/conversations/${conv}/messages?${dup}`);
  }
  q("sync duplicate limit", "/v1/sync?limit=1&limit=2");
  q("sync duplicate since", "/v1/sync?since=c1.0&since=c1.1");
  q("to-device duplicate limit", "/v1/to-device?limit=1&limit=2");
  q("live duplicate after", `/v1/conversations/${conv}/live?after=0&after=1`, true);
  for (const e of ["", "x".repeat(65), "%00"]) {
    q(`page epoch=${e.slice(0, 10)}`, `/v1/conversations/${conv}/messages?after=0&epoch=${e}`, false, e === "%00" ? [409] : [400]);
    q(`live epoch=${e.slice(0, 10)}`, `/v1/conversations/${conv}/live?after=0&epoch=${e}`, true, e === "%00" ? [409] : [400]);
  }
  for (const s of ["", "garbage", "c1.", "c1.-1", "c1.%20", "c2.0", "C1.0", "c1.0.0", "c1.zzzzzzzzzzzz", "c1.%F0%9F%99%82", "x".repeat(129), "c1.1e3", "%ED%A0%80"]) {
    q(`sync since=${s.slice(0, 16)}`, `/v1/sync?since=${s}`);
  }
  return cases;
}

interface BodyTarget {
  name: string;
  path: string;
  base: Record<string, unknown>;
  schema: { safeParse(v: unknown): { success: boolean } };
  fields: { key: string; values: unknown[]; raw?: boolean }[];
}

function bodyTargets(): BodyTarget[] {
  const { conv } = w;
  const ids = [...BAD_IDS, ...WRONG_TYPES];
  const newId = uid("hnew");
  w.newIds.push(newId);
  return [
    {
      name: "register device",
      path: "/v1/devices",
      base: { push: { provider: "webhook", token: "tok" } },
      schema: registerDeviceSchema,
      fields: [
        {
          key: "push",
          values: [
            ...WRONG_TYPES,
            { provider: "sms", token: "x" },
            { provider: "webhook" },
            { provider: "webhook", token: "" },
            { provider: "webhook", token: 5 },
            { provider: "webhook", token: "x".repeat(4097) },
            { provider: ["webhook"], token: "x" },
            { provider: "WEBHOOK", token: "x" },
          ],
        },
      ],
    },
    {
      name: "create conversation",
      path: "/v1/conversations",
      base: { id: newId, members: [w.bob.user] },
      schema: createConversationSchema,
      fields: [
        { key: "id", values: ids },
        { key: "members", values: [...WRONG_TYPES, ...BAD_IDS.map((b) => [w.bob.user, b]), Array.from({ length: 1001 }, (_, i) => `m${i}`)] },
        { key: "retention", values: [...WRONG_TYPES.filter((v) => typeof v !== "object" || v === null || Array.isArray(v))] },
        { key: "retention.max_messages", values: [...WRONG_TYPES, 1e13] },
        { key: "retention.max_age_seconds", values: [...WRONG_TYPES, 101 * 365 * 86400] },
        { key: "retention.max_messages", values: RAW_NUMBERS, raw: true },
      ],
    },
    {
      name: "members",
      path: `/v1/conversations/${conv}/members`,
      base: { add: [w.carol.user] },
      schema: changeMembersSchema,
      fields: [
        { key: "add", values: [...WRONG_TYPES, ...BAD_IDS.map((b) => [w.carol.user, b]), Array.from({ length: 1001 }, (_, i) => `m${i}`)] },
        { key: "remove", values: [...WRONG_TYPES, ...BAD_IDS.map((b) => [b])] },
      ],
    },
    {
      name: "send",
      path: `/v1/conversations/${conv}/messages`,
      base: { client_msg_id: "hostile-send", body: { text: "x" } },
      schema: sendMessageSchema,
      fields: [{ key: "client_msg_id", values: ids }, { key: "body", values: [undefined] }],
    },
    {
      name: "to-device send",
      path: "/v1/to-device",
      base: { user: w.bob.user, client_msg_id: "hostile-td", body: { k: 1 } },
      schema: toDeviceSendSchema,
      fields: [
        { key: "user", values: ids },
        { key: "device", values: ids },
        { key: "client_msg_id", values: ids },
        { key: "body", values: [undefined] },
      ],
    },
    {
      name: "to-device ack",
      path: "/v1/to-device/ack",
      base: { up_to: 1_000_000 },
      schema: toDeviceAckSchema,
      fields: [
        { key: "up_to", values: [...WRONG_TYPES, undefined] },
        { key: "up_to", values: RAW_NUMBERS, raw: true },
      ],
    },
    {
      name: "cursors",
      path: "/v1/cursors",
      base: { received: { [conv]: 3 }, read: { [conv]: 3 } },
      schema: cursorsSchema,
      fields: [
        { key: "received", values: WRONG_TYPES },
        { key: "read", values: WRONG_TYPES },
        { key: `received.${conv}`, values: WRONG_TYPES },
        { key: `read.${conv}`, values: WRONG_TYPES },
        { key: `received.${conv}`, values: RAW_NUMBERS, raw: true },
        { key: "received", values: [...BAD_IDS.filter((b) => b !== "").map((b) => ({ [b]: 1 })), Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`c${i}`, 1]))] },
      ],
    },
  ];
}

/** Sets `a.b` in a copy of `base`; `undefined` deletes the key. */
function withField(base: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(base);
  const parts = key.split(".");
  let obj: Record<string, unknown> = copy;
  for (const p of parts.slice(0, -1)) {
    if (typeof obj[p] !== "object" || obj[p] === null) obj[p] = {};
    obj = obj[p] as Record<string, unknown>;
  }
  const last = parts[parts.length - 1]!;
  if (value === undefined) delete obj[last];
  else obj[last] = value;
  return copy;
}

const RAW_MARK = "__RAW_NUMBER__";

function bodyCases(seed: number): Case[] {
  const cases: Case[] = [];
  const j = junk(seed, JUNK_PER_KIND);
  for (const t of bodyTargets()) {
    const post = (name: string, body: string | Uint8Array, contentType: string | null = "application/json", expectStatus?: number[]) =>
      cases.push({ name: `${t.name}: ${name}`, method: "POST", path: t.path, auth: alice(), headers: contentType ? { "content-type": contentType } : {}, body, ...(expectStatus ? { expect: expectStatus } : {}) });
    for (const f of t.fields) {
      for (const v of f.values) {
        if (f.raw) {
          const text = JSON.stringify(withField(t.base, f.key, RAW_MARK)).replace(`"${RAW_MARK}"`, String(v));
          post(`${f.key} = raw ${String(v)}`, text, "application/json", [400]);
          continue;
        }
        const body = withField(t.base, f.key, v);
        if (t.schema.safeParse(JSON.parse(JSON.stringify(body))).success) continue; // only bad input here
        post(`${f.key} = ${JSON.stringify(v)?.slice(0, 40)}`, JSON.stringify(body));
      }
    }
    // Whole bodies that are not the endpoint's object, with every content-type.
    for (const raw of RAW_BODIES) {
      for (const ct of [CONTENT_TYPES[0]!, CONTENT_TYPES[1]!, null]) {
        const label = typeof raw === "string" ? JSON.stringify(raw.slice(0, 16)) : `bytes ${[...raw.slice(0, 6)].join(",")}`;
        post(`raw body ${label} as ${ct}`, raw, ct, [400, 413]);
      }
    }
    for (const ct of CONTENT_TYPES) post(`broken JSON as ${ct}`, '{"client_msg_id": "x", "body": ', ct, [400]);
    // Oversized: the whole request over 256 KiB.
    post("300 KiB request", padded(300 * 1024, t.base), "application/json", [413]);
    post("300 KiB request, no content-type", padded(300 * 1024, t.base), null, [413]);
    // Random junk (fast-check): strings, JSON values and objects, kept only when the schema refuses them.
    for (const s of j.strings) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(s);
      } catch {
        post(`junk string ${JSON.stringify(s.slice(0, 12))}`, s, "application/json", [400]);
        continue;
      }
      if (!t.schema.safeParse(parsed).success && !(typeof parsed === "string" && parsed.trim() === "")) post(`junk JSON text ${JSON.stringify(s.slice(0, 12))}`, s);
    }
    for (const v of [...j.values, ...j.objects]) {
      if (t.schema.safeParse(v).success) continue;
      post(`junk value ${JSON.stringify(v)?.slice(0, 24)}`, JSON.stringify(v));
    }
    for (const n of j.ints) {
      const key = t.fields[0]!.key;
      const body = withField(t.base, key, n);
      if (t.schema.safeParse(JSON.parse(JSON.stringify(body))).success) continue;
      post(`${key} = junk number ${n}`, JSON.stringify(body));
    }
  }
  // Message and queue bodies over 64 KiB serialized (the request itself is under 256 KiB).
  const big = { text: "x".repeat(65 * 1024) };
  const surrogates = { text: "\ud800".repeat(22 * 1024) }; // 6 bytes per escaped lone surrogate when serialized
  cases.push({ name: "send: 65 KiB body", method: "POST", path: `/v1/conversations/${w.conv}/messages`, auth: alice(), headers: json, body: JSON.stringify({ client_msg_id: "big", body: big }), expect: [413] });
  cases.push({ name: "send: body of lone surrogates over 64 KiB serialized", method: "POST", path: `/v1/conversations/${w.conv}/messages`, auth: alice(), headers: json, body: JSON.stringify({ client_msg_id: "big2", body: surrogates }), expect: [413] });
  cases.push({ name: "to-device: 65 KiB body", method: "POST", path: "/v1/to-device", auth: alice(), headers: json, body: JSON.stringify({ user: w.bob.user, client_msg_id: "big", body: big }), expect: [413] });
  // Non-members with nasty bodies: refused before (or whatever) the body is looked at, never a 5xx.
  const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
  cases.push({ name: "non-member send with a 20,000-deep body", method: "POST", path: `/v1/conversations/${w.conv}/messages`, auth: `Bearer ${w.carol.jwt}`, headers: json, body: `{"client_msg_id":"deep","body":${deep}}`, expect: [403, 400] });
  cases.push({ name: "to-device to a stranger with a 20,000-deep body", method: "POST", path: "/v1/to-device", auth: `Bearer ${w.carol.jwt}`, headers: json, body: `{"user":"${w.alice.user}","client_msg_id":"deep","body":${deep}}`, expect: [403, 400] });
  // /dev/token (mounted only with DEV_MODE): junk bodies never mint anything.
  for (const body of ['{"user": "a b", "device": "d"}', '{"user": "a"}', "[]", "not json", '{"user": 1, "device": 2}']) {
    cases.push({ name: `dev token junk ${body}`, method: "POST", path: "/dev/token", auth: "", headers: json, body, expect: [400, 404] });
  }
  return cases;
}

// ---------------------------------------------------------------- tests

describe("hostile input", () => {
  it("every bad request is refused with a contract error, no 5xx, no state change", async () => {
    const started = Date.now();
    console.log(`hostile: seed ${SEED} (replay with HOSTILE_SEED=${SEED}; VITE_HOSTILE_SEED in the Workers pool)`);
    const before = await snapshot();
    const groups: [string, Case[]][] = [
      ["tokens", await tokenCases()],
      ["authorization", authzCases()],
      ["paths", pathCases()],
      ["queries", queryCases()],
      ["bodies", bodyCases(SEED)],
    ];
    const problems: string[] = [];
    for (const [name, cases] of groups) {
      const t0 = Date.now();
      problems.push(...(await runAll(cases)));
      console.log(`hostile: ${name}: ${cases.length} cases in ${((Date.now() - t0) / 1000).toFixed(1)} s; slow so far: ${slow.slice(-15).join("; ")}`);
    }
    await flush(w.conv);
    const after = await snapshot();
    const statuses = [...counts.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(" ");
    console.log(`hostile: ${counts.requests.toLocaleString("en-US")} requests, ${counts.fiveXX} 5xx, ${counts.shed} shed (503), ${problems.length} problems; statuses ${statuses}; ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (slow.length > 0) console.log(`hostile: ${slow.length} slow cases: ${slow.slice(0, 60).join("; ")}`);
    if (problems.length > 0) console.log(`hostile problems (first 40 of ${problems.length}):\n  ${problems.slice(0, 40).join("\n  ")}`);
    expect(problems.slice(0, 40)).toEqual([]);
    expect(after).toEqual(before);
  }, 120_000);

  it("junk frames on live and inbox sockets get error frames, no 5xx, no state change", async () => {
    const before = await snapshot();
    const live = await mustOpen(`/v1/conversations/${w.conv}/live`, w.alice.jwt);
    await live.next("live");
    const inbox = await mustOpen("/v1/inbox", w.alice.jwt);
    await inbox.next("hello");
    const j = junk(SEED + 7, 60);
    const frames: (string | ArrayBuffer)[] = [
      new Uint8Array([1, 2, 3]).buffer,
      new TextEncoder().encode('{"type":"send","client_msg_id":"bin","body":1}').buffer as ArrayBuffer,
      new Uint8Array(300 * 1024).buffer,
      "x".repeat(300 * 1024),
      JSON.stringify({ type: "send", client_msg_id: "huge", body: "x".repeat(300 * 1024) }),
      JSON.stringify({ type: "send", client_msg_id: "big", body: "x".repeat(65 * 1024) }),
      "",
      "pong",
      "PING",
      "{",
      "null",
      "[]",
      "42",
      '"send"',
      "{}",
      '{"type":5}',
      '{"type":null}',
      '{"type":"__proto__"}',
      '{"type":"constructor"}',
      '{"type":"SEND","client_msg_id":"x","body":1}',
      '{"type":"send"}',
      '{"type":"send","client_msg_id":"ok"}',
      '{"type":"send","client_msg_id":5,"body":1}',
      '{"type":"send","client_msg_id":"a b","body":1}',
      `{"type":"send","client_msg_id":"${"x".repeat(65)}","body":1}`,
      '{"type":"send","client_msg_id":"\\ud800","body":1}',
      '{"type":"ack"}',
      '{"type":"ack","seq":-1}',
      '{"type":"ack","seq":1.5}',
      '{"type":"ack","seq":"1"}',
      '{"type":"ack","seq":null}',
      '{"type":"ack","seq":1e999}',
      '{"type":"ack","seq":NaN}',
      `{"type":"ack","seq":${2 ** 53 + 2}}`,
      '{"type":"ack","seq":[1]}',
      ...j.strings.filter((s) => s !== "ping"),
    ];
    // Junk JSON values too, but never a well-formed send/ack (that would be a legitimate action).
    for (const v of j.values) {
      const s = JSON.stringify(v);
      if (s !== "ping" && !(typeof v === "object" && v !== null && "type" in v)) frames.push(s);
    }
    for (const f of frames) live.send(f);
    for (const f of frames.slice(0, 40)) inbox.send(f);
    counts.frames += frames.length + Math.min(40, frames.length);
    // Each junk frame gets exactly one error frame (or, for "ping" look-alikes, nothing); the socket stays up.
    await live.until((fs) => fs.filter((f) => f.type === "error").length >= frames.length - 1, 20_000).catch(() => undefined);
    await inbox.until((fs) => fs.filter((f) => f.type === "error").length >= Math.min(40, frames.length) - 1, 20_000).catch(() => undefined);
    const liveErrors = live.frames.filter((f) => f.type === "error");
    const inboxErrors = inbox.frames.filter((f) => f.type === "error");
    const codes = new Set(Object.keys(ERROR_STATUS));
    console.log(`hostile: ${counts.frames} socket frames, ${liveErrors.length} live error frames, ${inboxErrors.length} inbox error frames`);
    expect(live.closed).toBeNull();
    expect(inbox.closed).toBeNull();
    for (const e of [...liveErrors, ...inboxErrors]) {
      expect(codes.has(e.code as string), `error frame code ${String(e.code)}`).toBe(true);
      expect(typeof e.message).toBe("string");
    }
    // Everything but the (already-pong) "pong"-like frames got an error.
    expect(liveErrors.length).toBeGreaterThanOrEqual(frames.length - 1);
    expect(live.frames.filter((f) => f.type === "sent" || f.type === "acked" || f.type === "message")).toEqual([]);
    live.close();
    inbox.close();
    await flush(w.conv);
    expect(await snapshot()).toEqual(before);
  }, 60_000);

  it("a body that is not valid UTF-8 is refused, not stored with replacement characters", async () => {
    // PROTOCOL.md: "JSON everywhere, UTF-8"; RFC 8259 §8.1: JSON text exchanged between systems MUST be UTF-8.
    const a = await Device.of(uid("utf8a"));
    const conv = await a.createConversation([]);
    const head = (await a.summary(conv)).body.head_seq;
    const prefix = new TextEncoder().encode('{"client_msg_id":"utf8","body":{"text":"');
    const bytes = new Uint8Array([...prefix, 0xff, 0xfe, 0xc3, 0x28, ...new TextEncoder().encode('"}}')]);
    const res = await directFetch(`/v1/conversations/${conv}/messages`, { method: "POST", headers: { authorization: `Bearer ${a.jwt}`, ...json }, body: bytes });
    const text = await res.text();
    expect({ status: res.status, code: (JSON.parse(text) as { error?: { code?: string } }).error?.code }, text).toEqual({ status: 400, code: "invalid_request" });
    expect((await a.summary(conv)).body.head_seq).toBe(head);
  });

  it("a member's deeply nested (but small) message body does not poison the history for everyone", async () => {
    // 5,000 levels of [] is 10 KB: under every size limit. Either refuse it (4xx) or serve it back.
    const a = await Device.of(uid("deepa"));
    const b = await Device.of(uid("deepb"));
    await b.register();
    const conv = await a.createConversation([b.user]);
    const depth = 5_000;
    const raw = `{"client_msg_id":"deep","body":${"[".repeat(depth)}${"]".repeat(depth)}}`;
    const sent = await directFetch(`/v1/conversations/${conv}/messages`, { method: "POST", headers: { authorization: `Bearer ${a.jwt}`, ...json }, body: raw });
    expect(sent.status, await sent.text()).not.toBeGreaterThanOrEqual(500);
    if (sent.status >= 400) return; // refused: fine
    const page = await b.page(conv, "after=0");
    expect(page.status, `history of ${conv} after one nested message: ${JSON.stringify(page.body).slice(0, 200)}`).toBe(200);
    const td = await directFetch("/v1/to-device", { method: "POST", headers: { authorization: `Bearer ${a.jwt}`, ...json }, body: `{"user":"${b.user}","client_msg_id":"deep","body":${"[".repeat(depth)}${"]".repeat(depth)}}` });
    expect(td.status).not.toBeGreaterThanOrEqual(500);
    if (td.status === 202) {
      const list = await b.get("/v1/to-device");
      expect(list.status, `to-device queue of ${b.user} after one nested entry`).toBe(200);
    }
  }, 60_000);
});
