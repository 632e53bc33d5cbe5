/**
 * Runs one schedule (test/model/steps.ts) against the real Worker and Durable
 * Objects and checks, after every step, the service against the in-memory model
 * (test/model/model.ts):
 *
 * - seqs gapless and increasing, the log equal to the model's above the floor,
 *   no (device, client_msg_id) twice, retries answered with the original seq;
 * - reads only inside membership intervals, with `not_member` / `retention`
 *   gaps exactly where the model puts them; strangers get 403;
 * - a device that pages from its cursor gets every visible entry after it once;
 * - cursors only move forward (effective values); every member's derived
 *   unread (its exact view, as its UserDO computes it) is exact;
 * - every member's UserDO index (what sync serves) converges to the model after
 *   the drain: head, floor, read, unread, membership, last activity, and each
 *   device's `received` — through the notification tree when the conversation
 *   is sharded (NOTIFY_FANOUT) and through faults and evictions;
 * - sync (full and incremental, paged) reports each conversation as the model
 *   does; a full sync lists them newest activity first; with `timeline_limit`
 *   each row's timeline is the model's (entries, gaps, `limited`, `next_before`);
 * - receipts are the counts derived from the model's cursors; strangers and
 *   seqs outside the asker's intervals get 403;
 * - live sockets (in the conversation or in live shards) get catch-up + every
 *   new visible entry once, in order, and a removed member's socket gets its
 *   leave entry, then close 4003; a socket that an eviction killed got a prefix;
 * - socket attachments (what survives hibernation) name exactly the open sockets,
 *   in the conversation and in its live shards.
 *
 * Faults (test/model/faults.ts) make object-to-object calls fail; evictions
 * abort every object (`abortAllDurableObjects`) or one (`ctx.abort()`), also in
 * the middle of a drain (`crash`). The model does not change for either: the
 * durable state must converge to it all the same.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type {
  ConversationSummary,
  CursorsResponse,
  Gap,
  Message,
  MessagePage,
  ReceiptCounts,
  SendResult,
  SyncConversation,
  SyncResponse,
} from "../../src/protocol/types";
import type { ConversationDO } from "../../src/conversation/conversation-do";
import { nodeName } from "../../src/fanout/tree";
import { fromView, unreadOf } from "../../src/user/conversation-state";
import { token, uid } from "../helpers";
import { TestSocket, type Frame } from "../sockets";
import { DirectDevice as Device } from "./direct";
import { armFault, clearFaults, installFaults, pendingFaults, rawStub } from "./faults";
import { ConvModel, expectedSyncRow, type ExpectedPage, type ExpectedSyncRow } from "./model";
import { FAULT_TARGETS, TARGET_USERS, type EvictScope, type Schedule, type Step } from "./steps";

export const stats = {
  schedules: 0,
  /** Schedules started and not yet ended: 0 whenever a test ends, or one acts under the next test. */
  running: 0,
  steps: 0,
  requests: 0,
  checks: 0,
  faultsArmed: 0,
  evictions: 0,
  timelines: 0,
  receipts: 0,
  pollMs: 0,
  settleMs: 0,
  applyMs: 0,
  socketMs: 0,
  indexMs: 0,
  createMs: 0,
};

/** Users: 0..2 act, 3 is a stranger (never a member), 4 and 5 are the crowd (members only). */
const USERS = 6;
const STRANGER = 3;

interface OpenSocket {
  ws: TestSocket;
  user: string;
  device: string;
  conv: number;
  /** Seqs this socket must have received, in order (catch-up, then live). */
  expected: number[];
  /** Seqs the catch-up must have reported as gaps. */
  expectedGaps: number[];
  /** Set when this user was removed: the socket must close with 4003. */
  mustClose: boolean;
  /** An eviction may have killed it: then it must have got a prefix of `expected`, and the client drops it. */
  evicted: boolean;
}

interface SyncView {
  checkpoint: string | null;
  rows: Map<string, SyncConversation>;
}

type Snapshot = {
  head: number;
  floor: number;
  entries: { seq: number; type: string; sender_user: string; sender_device: string; client_msg_id: string | null; created_at: number }[];
  members: { user_id: string; active: number; read_seq: number; unread: number }[];
  cursors: { user_id: string; device_id: string; received: number }[];
  sockets: unknown[];
  shards: number[];
};

type IndexSnapshot = {
  rows: { conversation_id: string; head_seq: number; floor_seq: number; read_seq: number; unread: number; membership: string; last_activity_at: number | null }[];
  received: { device_id: string; conversation_id: string; seq: number }[];
};

function check(cond: boolean, message: string): void {
  stats.checks += 1;
  if (!cond) throw new Error(message);
}

function same<T>(actual: T, expected: T, what: string): void {
  stats.checks += 1;
  try {
    expect(actual).toEqual(expected);
  } catch (err) {
    const show = (v: unknown) => JSON.stringify(v)?.slice(0, 1500);
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}\n  actual:   ${show(actual)}\n  expected: ${show(expected)}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errorCode = (body: unknown) => (body as { error?: { code?: string } } | null)?.error?.code;

export class World {
  readonly users: string[];
  readonly devices: Device[][];
  readonly convs: ConvModel[] = [];
  readonly epochs: string[] = [];
  readonly sockets = new Map<string, OpenSocket>();
  readonly views = new Map<string, SyncView>();
  /** Successful sends per (user, device, conv index): the cmids a retry may pick. */
  readonly sent = new Map<string, string[]>();
  /** Devices their UserDO knows (registered on first sync or cursor move; gone when deleted). */
  readonly known = new Set<string>();
  /** Users whose UserDO still owes conversations a "forget this device" call. */
  readonly forgetting = new Set<string>();
  readonly trace: string[] = [];
  /** What the runner is waiting for (named in a hang report). */
  phase = "";
  #n = 0;

  private constructor(users: string[], devices: Device[][]) {
    this.users = users;
    this.devices = devices;
  }

  static async create(schedule: Schedule): Promise<World> {
    const c0 = Date.now();
    const tag = uid("mdl");
    const users = Array.from({ length: USERS }, (_, i) => `${tag}u${i}`);
    const devices = await Promise.all(users.map(async (u) => [new Device(u, "d0", await token(u, "d0")), new Device(u, "d1", await token(u, "d1"))]));
    const w = new World(users, devices);
    clearFaults();
    // Conversation 0: u0 and u1, kept forever. Conversation 1: u1, u0, u2 (+ the crowd) with retention max_messages.
    const crowd = [4, 5].slice(0, schedule.crowd ?? 0);
    const specs = [
      { creator: 0, members: [1], retention: null },
      { creator: 1, members: [0, 2, ...crowd], retention: schedule.maxMessages },
    ];
    for (const [i, spec] of specs.entries()) {
      const id = `${tag}c${i}`;
      const creator = devices[spec.creator]![0]!;
      const body = { id, members: spec.members.map((m) => users[m]!), ...(spec.retention !== null ? { retention: { max_messages: spec.retention } } : {}) };
      const res = await creator.post<ConversationSummary>("/v1/conversations", body);
      check(res.status === 201, `create ${id}: ${res.status} ${JSON.stringify(res.body)}`);
      w.epochs.push(res.body.epoch);
      w.convs.push(new ConvModel(id, spec.retention, { user: creator.user, device: creator.device }, body.members));
    }
    await installFaults(w.convs[0]!.id);
    await w.settle();
    stats.createMs += Date.now() - c0;
    return w;
  }

  dev(u: number, d: number): Device {
    return this.devices[u]![d]!;
  }

  #key(dev: Device): string {
    return `${dev.user}/${dev.device}`;
  }

  // ---------------------------------------------------------------- steps

  async apply(step: Step): Promise<void> {
    stats.steps += 1;
    this.trace.push(JSON.stringify(step));
    this.phase = `step ${step.k}`;
    switch (step.k) {
      case "send":
        return this.#send(step.u, step.d, step.c, `k${++this.#n}`, step.socket);
      case "retry":
        return this.#retry(step);
      case "open":
        return this.#open(step.u, step.d, step.c, step.after);
      case "close":
        return this.#close(step.u, step.d, step.c);
      case "sync":
        return this.#sync(step.u, step.d, step.limit, step.full, step.timeline ?? 0);
      case "page":
        return this.#page(step);
      case "catchup":
        return this.#catchup(step.u, step.d, step.c, step.limit);
      case "ack":
        return this.#ack(step);
      case "member":
        return this.#member(step);
      case "retention":
        await runDurableObjectAlarm(rawStub("CONVERSATIONS", this.convs[step.c]!.id));
        return;
      case "evict":
        return this.#evict(step.scope ?? "all", step.c ?? 0, step.u ?? 0);
      case "attachments":
        return this.#checkAttachments(step.c, await this.#snapshot(step.c));
      case "receipts":
        return this.#receipts(step);
      case "deleteDevice":
        return this.#deleteDevice(step.u, step.d, step.back === true ? { c: step.c ?? 0, at: step.at ?? null } : null);
      case "fault": {
        const t = FAULT_TARGETS[step.target % FAULT_TARGETS.length]!;
        const times = ((step.times - 1) % t.maxTimes) + 1;
        stats.faultsArmed += 1;
        armFault(t.binding, t.method, times, step.retryable);
        return;
      }
      case "crash":
        return this.#crash(step);
    }
  }

  #socket(u: number, d: number, c: number): OpenSocket | undefined {
    return this.sockets.get(`${u}/${d}/${c}`);
  }

  /** A new entry: every open socket whose user may see it must get it; removed users' sockets must close. */
  #appended(c: number, seq: number, removed: string[] = []): void {
    const conv = this.convs[c]!;
    for (const s of this.sockets.values()) {
      if (s.conv !== c || s.mustClose) continue;
      if (conv.inIntervals(s.user, seq)) s.expected.push(seq);
      if (removed.includes(s.user)) s.mustClose = true;
    }
  }

  async #send(u: number, d: number, c: number, cmid: string, viaSocket: boolean): Promise<void> {
    const conv = this.convs[c]!;
    const dev = this.dev(u, d);
    const prior = conv.sends.get(`${dev.user}/${dev.device}/${cmid}`);
    const socket = viaSocket ? this.#socket(u, d, c) : undefined;
    let status: number;
    let seq: number | undefined;
    let duplicate: boolean | undefined;
    let createdAt: string | undefined;
    if (socket && !socket.mustClose && !socket.evicted) {
      socket.ws.send({ type: "send", client_msg_id: cmid, body: { text: cmid } });
      const frame = await socket.ws.next("sent");
      stats.requests += 1;
      same(frame.client_msg_id, cmid, "sent frame client_msg_id");
      status = frame.duplicate ? 200 : 201;
      seq = frame.seq as number;
      duplicate = frame.duplicate as boolean;
    } else {
      const res = await dev.post<SendResult>(`/v1/conversations/${conv.id}/messages`, { client_msg_id: cmid, body: { text: cmid } });
      stats.requests += 1;
      status = res.status;
      if (res.status < 300) {
        seq = res.body.seq;
        duplicate = res.body.duplicate;
        createdAt = res.body.created_at;
      } else {
        same(errorCode(res.body), "forbidden", `send ${cmid} error code`);
      }
    }
    if (prior !== undefined) {
      // Same device + client_msg_id again: the original seq, never a second entry (even after leaving).
      same({ status, seq, duplicate }, { status: 200, seq: prior, duplicate: true }, `retry of ${cmid} in ${conv.id}`);
      return;
    }
    if (!conv.isActive(dev.user)) {
      same(status, 403, `send by non-member ${dev.user} to ${conv.id}`);
      return;
    }
    const entry = conv.send(dev.user, dev.device, cmid);
    same({ status, seq, duplicate }, { status: 201, seq: entry.seq, duplicate: false }, `send ${cmid} to ${conv.id}`);
    if (createdAt !== undefined) conv.createdAt.set(entry.seq, Date.parse(createdAt));
    const key = `${u}/${d}/${c}`;
    this.sent.set(key, [...(this.sent.get(key) ?? []), cmid]);
    this.#appended(c, entry.seq);
  }

  async #retry(step: Extract<Step, { k: "retry" }>): Promise<void> {
    // Either a cmid this device used here (→ duplicate), or one it used in the other
    // conversation (idempotency is per conversation → a fresh entry here).
    const from = step.crossConversation ? 1 - step.c : step.c;
    const used = this.sent.get(`${step.u}/${step.d}/${from}`) ?? [];
    if (used.length === 0) return this.#send(step.u, step.d, step.c, `k${++this.#n}`, step.socket);
    return this.#send(step.u, step.d, step.c, used[step.pick % used.length]!, step.socket);
  }

  async #open(u: number, d: number, c: number, afterPos: number | null): Promise<void> {
    const conv = this.convs[c]!;
    const dev = this.dev(u, d);
    if (this.#socket(u, d, c)) return;
    const after = afterPos === null ? null : afterPos % (conv.head + 2);
    const query = after === null ? "" : `?after=${after}`;
    const opened = await TestSocket.open(`/v1/conversations/${conv.id}/live${query}`, dev.jwt, { transport: "direct" });
    stats.requests += 1;
    if (!conv.isActive(dev.user)) {
      check(opened instanceof Response, `live socket for non-member ${dev.user} was accepted`);
      if (opened instanceof Response) {
        same(opened.status, 403, "live socket refusal status");
        await opened.body?.cancel();
      }
      if (!(opened instanceof Response)) opened.close();
      return;
    }
    if (after !== null && after > conv.head) {
      check(opened instanceof Response && opened.status === 400, `live after=${after} beyond head ${conv.head} must be 400`);
      if (opened instanceof Response) await opened.body?.cancel();
      else opened.close();
      return;
    }
    if (opened instanceof Response) throw new Error(`live socket refused for member ${dev.user}: ${opened.status} ${await opened.text()}`);
    const start = after ?? conv.head;
    const hello = await opened.next("hello");
    same(hello, { type: "hello", conversation_id: conv.id, epoch: this.epochs[c], head_seq: conv.head, floor_seq: conv.floor }, "hello frame");
    await opened.next("live");
    const expectedGaps: number[] = [];
    for (let s = start + 1; s <= conv.head; s++) if (!conv.visible(dev.user, s)) expectedGaps.push(s);
    this.sockets.set(`${u}/${d}/${c}`, {
      ws: opened,
      user: dev.user,
      device: dev.device,
      conv: c,
      expected: conv.visibleSeqs(dev.user).filter((s) => s > start),
      expectedGaps,
      mustClose: false,
      evicted: false,
    });
  }

  async #close(u: number, d: number, c: number): Promise<void> {
    const s = this.#socket(u, d, c);
    if (!s) return;
    await this.#checkSocket(s);
    s.ws.close();
    this.sockets.delete(`${u}/${d}/${c}`);
  }

  async #sync(u: number, d: number, limit: number, full: boolean, timeline: number): Promise<void> {
    const dev = this.dev(u, d);
    const key = `${u}/${d}`;
    const view = this.views.get(key) ?? { checkpoint: null, rows: new Map<string, SyncConversation>() };
    if (full) {
      view.checkpoint = null;
      view.rows.clear();
    }
    const listing = view.checkpoint === null;
    const order: SyncConversation[] = [];
    for (let i = 0; ; i++) {
      check(i < 50, "sync did not finish in 50 pages");
      const q = new URLSearchParams({ limit: String(limit) });
      if (view.checkpoint !== null) q.set("since", view.checkpoint);
      if (timeline > 0) q.set("timeline_limit", String(timeline));
      const res = await dev.get<SyncResponse>(`/v1/sync?${q}`);
      stats.requests += 1;
      same(res.status, 200, `sync ${q}`);
      this.known.add(this.#key(dev));
      check(res.body.conversations.length <= limit, "sync page over its limit");
      for (const row of res.body.conversations) {
        this.#checkTimeline(dev, row, timeline);
        view.rows.set(row.id, row);
        order.push(row);
      }
      view.checkpoint = res.body.checkpoint;
      if (!res.body.has_more) break;
    }
    this.views.set(key, view);
    // The device's merged view (previous state + what changed since its checkpoint) is the model's.
    const expected: ExpectedSyncRow[] = this.convs.filter((c) => c.everMember(dev.user)).map((c) => expectedSyncRow(c, dev.user, dev.device));
    const actual = expected.map((e) => {
      const row = view.rows.get(e.id);
      return row && { id: row.id, head_seq: row.head_seq, floor_seq: row.floor_seq, received: row.received, read: row.read, unread: row.unread, membership: row.membership };
    });
    same(actual, expected, `${full ? "full" : "incremental"} sync of ${dev.user}/${dev.device}`);
    same([...view.rows.keys()].sort(), expected.map((e) => e.id).sort(), "sync lists exactly the user's conversations");
    if (listing) {
      // A full sync (no `since`) lists the inbox by last_activity_at, newest first (ties by id).
      const activity = (r: SyncConversation) => (r.last_activity_at === null ? 0 : Date.parse(r.last_activity_at));
      const sorted = [...order].sort((a, b) => activity(b) - activity(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      same(order.map((r) => r.id), sorted.map((r) => r.id), `full sync of ${dev.user}/${dev.device} is newest activity first`);
    }
  }

  /** A sync row's v1.1 timeline is the model's for this device's `received` (which the row states). */
  #checkTimeline(dev: Device, row: SyncConversation, k: number): void {
    if (k === 0) return same(row.timeline, undefined, `sync row ${row.id} without timeline_limit has no timeline`);
    const conv = this.convs.find((c) => c.id === row.id);
    if (!conv) return;
    stats.timelines += 1;
    const t = row.timeline;
    check(t !== undefined, `sync row ${row.id} for ${dev.user}/${dev.device} lacks its timeline (timeline_limit=${k})`);
    const exp = conv.timeline(dev.user, row.received, k);
    same(
      { seqs: t!.messages.map((m) => m.seq), gaps: t!.gaps, limited: t!.limited, next_before: t!.next_before },
      { seqs: exp.seqs, gaps: exp.gaps, limited: exp.limited, next_before: exp.next_before },
      `timeline of ${conv.id} for ${dev.user}/${dev.device} at received=${row.received}, timeline_limit=${k}`,
    );
    for (const m of t!.messages) this.#entryMatches(conv, m);
  }

  #pageExpectation(page: MessagePage, conv: ConvModel, user: string, exp: ExpectedPage, backward: boolean): void {
    same(
      {
        head_seq: page.head_seq,
        floor_seq: page.floor_seq,
        epoch: page.epoch,
        seqs: page.messages.map((m) => m.seq),
        gaps: page.gaps,
        has_more: page.has_more,
        next: backward ? page.next_before : page.next_after,
      },
      {
        head_seq: conv.head,
        floor_seq: conv.floor,
        epoch: this.epochs[this.convs.indexOf(conv)],
        seqs: exp.seqs,
        gaps: exp.gaps,
        has_more: exp.hasMore,
        next: exp.boundary,
      },
      `page of ${conv.id} for ${user}`,
    );
    for (const m of page.messages) this.#entryMatches(conv, m);
  }

  #entryMatches(conv: ConvModel, m: Message): void {
    const e = conv.entry(m.seq);
    check(e !== undefined, `seq ${m.seq} served but not in the model`);
    const body = m.body as { added?: string[]; removed?: string[] };
    same(
      { type: m.type, sender: m.sender, client_msg_id: m.client_msg_id, ...(m.type === "member" ? { added: body.added, removed: body.removed } : {}) },
      {
        type: e!.type,
        sender: { user: e!.user, device: e!.device },
        client_msg_id: e!.cmid,
        ...(e!.type === "member" ? ConvModel.changeBody(e!) : {}),
      },
      `entry ${m.seq} of ${conv.id}`,
    );
  }

  async #page(step: Extract<Step, { k: "page" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const q = new URLSearchParams({ limit: String(step.limit) });
    const pos = step.pos === null ? null : step.pos % (conv.head + 2);
    if (!step.backward) q.set("after", String(pos ?? 0));
    else if (pos !== null) q.set("before", String(pos + 1));
    if (step.badEpoch) q.set("epoch", "stale-epoch");
    const res = await dev.get<MessagePage>(`/v1/conversations/${conv.id}/messages?${q}`);
    stats.requests += 1;
    const err = (res.body as unknown as { error?: { code: string }; epoch?: string }) ?? {};
    if (!conv.everMember(dev.user)) return same({ status: res.status, code: err.error?.code }, { status: 403, code: "forbidden" }, `page by stranger ${dev.user}`);
    if (step.badEpoch) {
      return same({ status: res.status, code: err.error?.code, epoch: err.epoch }, { status: 409, code: "epoch_mismatch", epoch: this.epochs[step.c] }, "stale epoch");
    }
    if (!step.backward && (pos ?? 0) > conv.head) return same({ status: res.status, code: err.error?.code }, { status: 400, code: "invalid_request" }, "after beyond head");
    same(res.status, 200, `page ${q}: ${JSON.stringify(res.body).slice(0, 300)}`);
    const exp = step.backward ? conv.pageBackward(dev.user, pos === null ? null : pos + 1, step.limit) : conv.pageForward(dev.user, pos ?? 0, step.limit);
    this.#pageExpectation(res.body, conv, dev.user, exp, step.backward);
  }

  /** A device back from offline: pages forward from its `received` cursor to the end, then acks. */
  async #catchup(u: number, d: number, c: number, limit: number): Promise<void> {
    const conv = this.convs[c]!;
    const dev = this.dev(u, d);
    if (!conv.everMember(dev.user)) return;
    const cursor = conv.received.get(this.#key(dev)) ?? 0;
    const got: number[] = [];
    let after = cursor;
    for (let i = 0; ; i++) {
      check(i < 200, "catch-up did not finish");
      const res = await dev.get<MessagePage>(`/v1/conversations/${conv.id}/messages?after=${after}&limit=${limit}`);
      stats.requests += 1;
      same(res.status, 200, `catch-up page after=${after}`);
      this.#pageExpectation(res.body, conv, dev.user, conv.pageForward(dev.user, after, limit), false);
      got.push(...res.body.messages.map((m) => m.seq));
      if (!res.body.has_more) break;
      after = res.body.next_after!;
    }
    same(got, conv.visibleSeqs(dev.user).filter((s) => s > cursor), `catch-up of ${dev.user}/${dev.device} from ${cursor}: every visible entry once`);
    const last = got.at(-1);
    if (last !== undefined) await this.#ackHttp(dev, c, last, null);
  }

  async #ackHttp(dev: Device, c: number, received: number | null, read: number | null): Promise<void> {
    const conv = this.convs[c]!;
    const body: { received?: Record<string, number>; read?: Record<string, number> } = {};
    if (received !== null) body.received = { [conv.id]: received };
    if (read !== null) body.read = { [conv.id]: read };
    const res = await dev.post<CursorsResponse>("/v1/cursors", body);
    stats.requests += 1;
    if (!conv.everMember(dev.user)) {
      return same({ status: res.status, code: errorCode(res.body) }, { status: 403, code: "forbidden" }, "cursor by stranger");
    }
    const want: { received?: Record<string, number>; read?: Record<string, number> } = { received: {}, read: {} };
    if (received !== null) want.received = { [conv.id]: conv.ackReceived(dev.user, dev.device, received) };
    if (read !== null) want.read = { [conv.id]: conv.ackRead(dev.user, read) };
    same({ status: res.status, body: res.body }, { status: 200, body: want }, `cursors ${JSON.stringify(body)} by ${dev.user}/${dev.device}`);
    this.known.add(this.#key(dev));
    this.#noteCursor(dev, conv);
  }

  /** The client keeps the effective cursors it was told (received does not move its sync checkpoint). */
  #noteCursor(dev: Device, conv: ConvModel): void {
    const row = this.views.get(`${this.users.indexOf(dev.user)}/${dev.device === "d0" ? 0 : 1}`)?.rows.get(conv.id);
    if (row) row.received = conv.received.get(this.#key(dev)) ?? 0;
  }

  async #ack(step: Extract<Step, { k: "ack" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const received = step.received === null ? null : step.received % (conv.head + 3);
    const read = step.read === null ? null : step.read % (conv.head + 3);
    const socket = step.socket && received !== null ? this.#socket(step.u, step.d, step.c) : undefined;
    if (socket && !socket.mustClose && !socket.evicted) {
      socket.ws.send({ type: "ack", seq: received });
      const frame = await socket.ws.next("acked");
      stats.requests += 1;
      same(frame.seq, conv.ackReceived(dev.user, dev.device, received!), `socket ack ${received}`);
      this.known.add(this.#key(dev));
      this.#noteCursor(dev, conv);
      return;
    }
    if (received === null && read === null) return;
    return this.#ackHttp(dev, step.c, received, read);
  }

  async #member(step: Extract<Step, { k: "member" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const target = this.users[TARGET_USERS[step.target % TARGET_USERS.length]!]!;
    const change = step.add ? { add: [target] } : { remove: [target] };
    const res = await dev.post<ConversationSummary>(`/v1/conversations/${conv.id}/members`, change);
    stats.requests += 1;
    if (!conv.isActive(dev.user)) {
      return same({ status: res.status, code: errorCode(res.body) }, { status: 403, code: "forbidden" }, "members change by non-member");
    }
    const entry = conv.changeMembers({ user: dev.user, device: dev.device }, change.add ?? [], change.remove ?? []);
    same({ status: res.status, head_seq: res.body.head_seq, members: res.body.members }, { status: 200, head_seq: conv.head, members: conv.activeMembers() }, `members ${JSON.stringify(change)}`);
    if (entry) this.#appended(step.c, entry.seq, entry.change?.removed ?? []);
  }

  async #receipts(step: Extract<Step, { k: "receipts" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const seq = step.pos % (conv.head + 2);
    const res = await dev.get<ReceiptCounts>(`/v1/conversations/${conv.id}/receipts?seq=${seq}`);
    stats.requests += 1;
    const got = { status: res.status, code: errorCode(res.body) };
    const what = `receipts of ${conv.id} seq=${seq} asked by ${dev.user}`;
    if (seq < 1) return same(got, { status: 400, code: "invalid_request" }, what);
    if (!conv.everMember(dev.user)) return same(got, { status: 403, code: "forbidden" }, what);
    if (seq > conv.head) return same(got, { status: 400, code: "invalid_request" }, what);
    if (!conv.inIntervals(dev.user, seq)) return same(got, { status: 403, code: "forbidden" }, what);
    stats.receipts += 1;
    same({ status: res.status, body: res.body }, { status: 200, body: conv.receipts(seq) }, what);
  }

  async #deleteDevice(u: number, d: number, back: { c: number; at: number | null } | null): Promise<void> {
    const dev = this.dev(u, d);
    const res = await dev.delete<unknown>(`/v1/devices/${dev.device}`);
    stats.requests += 1;
    const key = this.#key(dev);
    if (!this.known.has(key)) return same({ status: res.status, code: errorCode(res.body) }, { status: 404, code: "not_found" }, `delete of unknown device ${key}`);
    same(res.status, 204, `delete device ${key}`);
    this.known.delete(key);
    for (const conv of this.convs) conv.forgetDevice(dev.user, dev.device);
    // The phone is gone; if it comes back it is a new device with no sync state.
    this.views.delete(`${u}/${d}`);
    this.forgetting.add(dev.user);
    // Back at once: its first ack races the conversations forgetting the old cursor (the UserDO alarm).
    if (back === null) return;
    const head = this.convs[back.c]!.head;
    await this.#ackHttp(dev, back.c, back.at === null ? head : back.at % (head + 1), null);
  }

  /**
   * A send, its drain under way (the conversation's alarm handler, started the
   * way the pool starts alarms), and objects dying `delay`×5 ms into it.
   * runDurableObjectAlarm removes the alarm before it runs the handler, and
   * unlike the platform it does not run an interrupted handler again; the
   * platform does (alarms are at-least-once: a handler that throws or whose
   * object is reset is retried). So when the handler did not finish, the alarm
   * is set again, as the platform's retry would.
   */
  async #crash(step: Extract<Step, { k: "crash" }>): Promise<void> {
    await this.#send(step.u, step.d, step.c, `k${++this.#n}`, false);
    const stub = () => rawStub("CONVERSATIONS", this.convs[step.c]!.id);
    const drain = runDurableObjectAlarm(stub()).then(
      () => true,
      () => false,
    );
    if (step.delay > 0) await sleep(step.delay * 5);
    // Not abortAllDurableObjects() here (see #abortEach).
    if (step.scope === "all") await this.#abortEach();
    else await this.#evict(step.scope, step.c, step.u);
    this.phase = "waiting for the interrupted drain";
    if (!(await drain)) {
      await runInDurableObject(stub(), async (_obj, state) => {
        if ((await state.storage.getAlarm()) === null) await state.storage.setAlarm(Date.now());
      });
    }
  }

  /**
   * `ctx.abort()` in the middle of a drain for every object it touches: the
   * conversations, their notification tree nodes and live shards, then the
   * members' UserDOs, one after the other, callers before callees: a second
   * kind of eviction beside `#evict("all")` (abortAllDurableObjects, every
   * object at once). It was written to dodge a pool stall that aborting leaves
   * and UserDOs together provoked; the stall's cause was a log line from an
   * aborted object (test/quiet-events.ts). The `user` scope kills one UserDO.
   */
  async #abortEach(): Promise<void> {
    stats.evictions += 1;
    this.phase = "aborting every object";
    const abort = (stub: DurableObjectStub) => runInDurableObject(stub, (_obj, state) => state.abort("model: evicted")).catch(() => undefined);
    const stubs: DurableObjectStub[] = [];
    for (const conv of this.convs) {
      const shape = await runInDurableObject(rawStub("CONVERSATIONS", conv.id) as DurableObjectStub<ConversationDO>, async (obj, state) => {
        const st = await obj.stats();
        const shards = state.storage.sql.exec<{ shard: number }>("SELECT shard FROM live_shards").toArray().map((r) => r.shard);
        return { fanout: st.ok ? st.value.notify.fanout : 0, leaves: st.ok ? st.value.notify.leaves : 0, shards };
      });
      stubs.push(rawStub("CONVERSATIONS", conv.id));
      for (const shard of shape.shards) stubs.push(rawStub("LIVE", `${conv.id}/live/${shard}`));
      if (shape.leaves > 1) {
        // Every node of the tree (src/fanout/tree.ts): level 0 are the leaves, each level above F times fewer.
        for (let level = 0, width = shape.leaves; ; level++, width = Math.ceil(width / shape.fanout)) {
          for (let index = 0; index < width; index++) stubs.push(rawStub("NOTIFY", nodeName(conv.id, shape.fanout, { level, index })));
          if (width <= shape.fanout) break;
        }
      }
    }
    for (const [i, user] of this.users.entries()) if (i !== STRANGER && this.convs.some((c) => c.everMember(user))) stubs.push(rawStub("USERS", user));
    // One after the other, callers before callees.
    for (const stub of stubs) await abort(stub);
    for (const s of this.sockets.values()) s.evicted = true;
    await installFaults(this.convs[0]!.id);
  }

  async #evict(scope: EvictScope, c: number, u: number): Promise<void> {
    stats.evictions += 1;
    this.phase = `evicting (${scope})`;
    const conv = this.convs[c]!;
    const abort = async (stub: DurableObjectStub) => {
      await runInDurableObject(stub, (_obj, state) => state.abort("model: evicted")).catch(() => undefined);
    };
    if (scope === "all") {
      await abortAllDurableObjects();
      // Every object restarts and every socket is gone; clients drop theirs.
      for (const s of this.sockets.values()) s.ws.close();
      this.sockets.clear();
    } else if (scope === "conv") {
      await abort(rawStub("CONVERSATIONS", conv.id));
      for (const s of this.sockets.values()) if (s.conv === c) s.evicted = true;
    } else if (scope === "user") {
      await abort(rawStub("USERS", this.users[u]!));
    } else {
      const shards = await runInDurableObject(rawStub("CONVERSATIONS", conv.id), (_obj, state) =>
        state.storage.sql.exec<{ shard: number }>("SELECT shard FROM live_shards").toArray().map((r) => r.shard),
      );
      for (const shard of shards) await abort(rawStub("LIVE", `${conv.id}/live/${shard}`));
      for (const s of this.sockets.values()) if (s.conv === c) s.evicted = true;
    }
    // Restarted objects may hold a fresh env: wrap it again.
    await installFaults(this.convs[0]!.id);
  }

  // ---------------------------------------------------------------- invariants after every step

  /** Drains every outbox and the device forgets, lets retention run, then applies retention to the model. */
  async settle(): Promise<void> {
    for (const conv of this.convs) await this.#drainConversation(conv.id);
    for (const user of [...this.forgetting]) {
      await this.#drainForgets(user);
      this.forgetting.delete(user);
    }
    for (const conv of this.convs) conv.enforceRetention();
  }

  /** Runs the conversation's alarm until no member is owed a view or a tick (retries wait out their backoff). */
  async #drainConversation(id: string): Promise<void> {
    this.phase = `draining ${id}`;
    const stub = rawStub("CONVERSATIONS", id);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ran = await runDurableObjectAlarm(stub);
      const owed = await runInDurableObject(stub, async (_obj, state) => {
        const sql = state.storage.sql;
        const t = sql.exec<{ n: number; next: number | null }>("SELECT count(*) AS n, min(next_at) AS next FROM notify_targets").one();
        const m = sql.exec<{ tick_head: number; tick_floor: number; head_seq: number; floor_seq: number }>("SELECT tick_head, tick_floor, head_seq, floor_seq FROM conversation").one();
        const head = Number(sql.exec<{ seq: number | null }>("SELECT max(seq) AS seq FROM entries").one().seq ?? 0);
        const dirty = Math.max(head, m.head_seq) > m.tick_head || m.floor_seq > m.tick_floor;
        return { targets: Number(t.n), next: t.next === null ? null : Number(t.next), dirty, alarm: await state.storage.getAlarm() };
      });
      if (owed.targets === 0 && !owed.dirty) return;
      if (Date.now() > deadline) {
        throw new Error(`${id} did not drain in 20 s: ${JSON.stringify(owed)} (alarm ran: ${ran}; faults left: ${pendingFaults().join(", ") || "none"})`);
      }
      await sleep(Math.min(50, Math.max(5, (owed.next ?? 0) - Date.now())));
    }
  }

  /** Runs a UserDO's alarm until every conversation forgot its deleted devices. */
  async #drainForgets(user: string): Promise<void> {
    this.phase = `draining device forgets of ${user}`;
    const stub = rawStub("USERS", user);
    const deadline = Date.now() + 20_000;
    for (;;) {
      await runDurableObjectAlarm(stub);
      const left = await runInDurableObject(stub, (_obj, state) =>
        state.storage.sql.exec<{ n: number; next: number | null }>("SELECT count(*) AS n, min(next_at) AS next FROM device_forget WHERE done_at IS NULL").one(),
      );
      if (Number(left.n) === 0) return;
      if (Date.now() > deadline) throw new Error(`${user} did not finish forgetting devices in 20 s: ${JSON.stringify(left)}`);
      await sleep(Math.min(50, Math.max(5, Number(left.next ?? 0) - Date.now())));
    }
  }

  async #snapshot(c: number): Promise<Snapshot> {
    stats.requests += 1;
    const conv = this.convs[c]!;
    this.phase = `snapshot of ${conv.id}`;
    const snap = await runInDurableObject(rawStub("CONVERSATIONS", conv.id) as DurableObjectStub<ConversationDO>, async (obj, state) => {
      const sql = state.storage.sql;
      const rows = sql.exec<{ user_id: string; active: number; read_seq: number }>("SELECT user_id, active, read_seq FROM members ORDER BY user_id").toArray();
      // Unread is derived: the member's exact view, as its UserDO computes it.
      const members = await Promise.all(
        rows.map(async (m) => {
          const view = await obj.memberView(m.user_id);
          return { ...m, unread: view ? unreadOf(fromView(view)) : 0 };
        }),
      );
      // The head is not rewritten per send (the newest entry is the truth): ask the object.
      const meta = await obj.stats();
      if (!meta.ok) throw new Error(meta.message);
      return {
        head: meta.value.head_seq,
        floor: meta.value.floor_seq,
        entries: sql
          .exec<Snapshot["entries"][number]>("SELECT seq, type, sender_user, sender_device, client_msg_id, created_at FROM entries ORDER BY seq")
          .toArray(),
        members,
        cursors: sql.exec<{ user_id: string; device_id: string; received: number }>("SELECT user_id, device_id, received FROM device_cursors ORDER BY user_id, device_id").toArray(),
        sockets: state
          .getWebSockets()
          .filter((ws) => ws.readyState === WebSocket.OPEN)
          .map((ws) => ws.deserializeAttachment() as unknown),
        shards: sql.exec<{ shard: number }>("SELECT shard FROM live_shards ORDER BY shard").toArray().map((r) => r.shard),
      };
    });
    // Sockets handed to live shards live there (src/fanout/live-shard-do.ts).
    for (const shard of snap.shards) {
      const more = await runInDurableObject(rawStub("LIVE", `${conv.id}/live/${shard}`), (_obj, state) =>
        state
          .getWebSockets()
          .filter((ws) => ws.readyState === WebSocket.OPEN)
          .map((ws) => ws.deserializeAttachment() as unknown),
      );
      snap.sockets.push(...more);
    }
    for (const e of snap.entries) if (!conv.createdAt.has(e.seq)) conv.createdAt.set(e.seq, e.created_at);
    return snap;
  }

  #checkLog(c: number, snap: Snapshot): void {
    const conv = this.convs[c]!;
    same({ head: snap.head, floor: snap.floor }, { head: conv.head, floor: conv.floor }, `${conv.id} head/floor`);
    // Gapless and increasing: exactly floor+1..head, and the model's entries.
    same(
      snap.entries.map((e) => [e.seq, e.type, e.sender_user, e.sender_device, e.client_msg_id]),
      conv.entries.map((e) => [e.seq, e.type, e.user, e.device, e.cmid]),
      `${conv.id} log`,
    );
    const keys = snap.entries.filter((e) => e.client_msg_id !== null).map((e) => `${e.sender_user}/${e.sender_device}/${e.client_msg_id}`);
    check(new Set(keys).size === keys.length, `${conv.id}: a (device, client_msg_id) is in the log twice`);
    // Membership, read cursors and exact unread counts.
    same(
      snap.members.map((m) => [m.user_id, m.active === 1, m.read_seq, m.unread]),
      [...conv.intervals.keys()].sort().map((u) => [u, conv.isActive(u), conv.read.get(u) ?? 0, conv.unread(u)]),
      `${conv.id} members / read / unread`,
    );
    same(
      snap.cursors.filter((r) => r.received > 0).map((r) => [`${r.user_id}/${r.device_id}`, r.received]),
      [...conv.received].filter(([, v]) => v > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      `${conv.id} received cursors`,
    );
  }

  /** Hibernation-equivalent: the attachments of the open sockets name exactly the model's sockets. */
  #checkAttachments(c: number, snap: Snapshot): void {
    const want = [...this.sockets.values()]
      .filter((s) => s.conv === c && !s.mustClose)
      .map((s) => ({ v: 1, user: s.user, device: s.device }))
      .sort((a, b) => (a.user + a.device < b.user + b.device ? -1 : 1));
    // The identity that must survive hibernation; other fields are the object's own business.
    const got = (snap.sockets as { v: unknown; user: string; device: string }[])
      .map((a) => ({ v: a?.v, user: a?.user, device: a?.device }))
      .sort((a, b) => (a.user + a.device < b.user + b.device ? -1 : 1));
    same(got, want, `${this.convs[c]!.id} socket attachments`);
  }

  /** Every member's UserDO index (what sync serves) is the model's, and so is each device's `received`. */
  async #checkIndexes(): Promise<void> {
    for (const [i, user] of this.users.entries()) {
      if (i === STRANGER || !this.convs.some((c) => c.everMember(user))) continue;
      this.phase = `index of ${user}`;
      const snap: IndexSnapshot = await runInDurableObject(rawStub("USERS", user), (_obj, state) => {
        const sql = state.storage.sql;
        return {
          rows: sql
            .exec<IndexSnapshot["rows"][number]>(
              "SELECT conversation_id, head_seq, floor_seq, read_seq, unread, membership, last_activity_at FROM conversations ORDER BY conversation_id",
            )
            .toArray(),
          received: sql.exec<IndexSnapshot["received"][number]>("SELECT device_id, conversation_id, seq FROM received WHERE seq > 0 ORDER BY device_id, conversation_id").toArray(),
        };
      });
      stats.requests += 1;
      const mine = new Set(this.convs.map((c) => c.id));
      const actual = snap.rows
        .filter((r) => mine.has(r.conversation_id))
        .map((r) => {
          const conv = this.convs.find((c) => c.id === r.conversation_id)!;
          const known = conv.lastActivity(user);
          return {
            id: r.conversation_id,
            head_seq: r.head_seq,
            floor_seq: r.floor_seq,
            read: r.read_seq,
            unread: r.unread,
            membership: r.membership,
            ...(known !== undefined ? { last_activity_at: r.last_activity_at } : {}),
          };
        });
      const expected = this.convs
        .filter((c) => c.everMember(user))
        .map((c) => {
          const e = expectedSyncRow(c, user, "");
          const known = c.lastActivity(user);
          return {
            id: c.id,
            head_seq: e.head_seq,
            floor_seq: e.floor_seq,
            read: e.read,
            unread: e.unread,
            membership: e.membership,
            ...(known !== undefined ? { last_activity_at: known } : {}),
          };
        })
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      same(actual, expected, `index of ${user} (what sync serves) after the drain`);
      const received = snap.received.filter((r) => mine.has(r.conversation_id)).map((r) => [r.device_id, r.conversation_id, r.seq]);
      const want: [string, string, number][] = [];
      for (const d of ["d0", "d1"]) for (const c of this.convs) {
        const r = c.received.get(`${user}/${d}`) ?? 0;
        if (r > 0) want.push([d, c.id, r]);
      }
      same(received, want, `received cursors in the index of ${user}`);
    }
  }

  async #checkSocket(s: OpenSocket): Promise<void> {
    const ws = s.ws;
    const conv = this.convs[s.conv]!;
    this.phase = `live socket ${s.user}/${s.device} on ${conv.id}`;
    try {
      await ws.until(() => ws.seqs().length >= s.expected.length || (s.evicted && ws.closed !== null), 5000);
    } catch {
      // fall through: the comparison below reports what is missing
    }
    const what = `live socket ${s.user}/${s.device} on ${conv.id}`;
    if (s.evicted && ws.closed !== null && !s.mustClose) {
      // Killed by an eviction: whatever arrived is a prefix of what was due, and the client reconnects.
      const got = ws.seqs();
      same(got, s.expected.slice(0, got.length), `${what} (evicted): a prefix of every visible entry, in order`);
      return;
    }
    same(ws.seqs(), s.expected, `${what}: every visible entry once, in order${ws.closed ? ` (closed ${JSON.stringify(ws.closed)})` : ""}`);
    const gapSeqs: number[] = [];
    for (const f of ws.frames.filter((x: Frame) => x.type === "messages")) {
      for (const g of f.gaps as Gap[]) for (let q = g.from; q <= g.to; q++) gapSeqs.push(q);
    }
    same(gapSeqs, s.expectedGaps, `${what} catch-up gaps`);
    same(ws.frames.filter((f: Frame) => f.type === "error"), [], `${what} error frames`);
  }

  async checkAll(): Promise<void> {
    const s0 = Date.now();
    await this.settle();
    stats.settleMs += Date.now() - s0;
    const k0 = Date.now();
    for (const [key, s] of [...this.sockets]) {
      await this.#checkSocket(s);
      if (s.evicted && s.ws.closed !== null && !s.mustClose) {
        this.sockets.delete(key);
        continue;
      }
      if (s.mustClose) {
        try {
          await s.ws.until(() => s.ws.closed !== null, 5000);
        } catch {
          // reported below
        }
        same(s.ws.closed?.code, 4003, `socket of removed ${s.user} closes with 4003`);
        this.sockets.delete(key);
        continue;
      }
      check(s.ws.closed === null, `live socket ${s.user}/${s.device} closed without cause: ${JSON.stringify(s.ws.closed)}`);
    }
    stats.socketMs += Date.now() - k0;
    for (let c = 0; c < this.convs.length; c++) {
      let snap = await this.#snapshot(c);
      this.#checkLog(c, snap);
      // A socket closed by the client may take a moment to leave the server's OPEN set.
      const p0 = Date.now();
      for (let i = 0; i < 40 && snap.sockets.length > [...this.sockets.values()].filter((s) => s.conv === c && !s.mustClose).length; i++) {
        await sleep(50);
        snap = await this.#snapshot(c);
      }
      stats.pollMs += Date.now() - p0;
      this.#checkAttachments(c, snap);
    }
    const i0 = Date.now();
    await this.#checkIndexes();
    stats.indexMs += Date.now() - i0;
  }

  closeAll(): void {
    for (const s of this.sockets.values()) s.ws.close();
    this.sockets.clear();
    clearFaults();
  }
}

/** A failure: which step, the schedule up to it (replayable as is), and what the service did. */
export class ScheduleFailure extends Error {
  constructor(
    readonly step: number,
    readonly schedule: Schedule,
    message: string,
  ) {
    super(message);
  }
}

/** `p`, or an error naming what the world was waiting for after `ms`. */
async function within<T>(ms: number, phase: () => string, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms / 1000} s, waiting on: ${phase()}`)), ms);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one schedule; on failure the error names the step, the schedule up to
 * that step (JSON) and the cause.
 */
export async function runSchedule(schedule: Schedule): Promise<void> {
  stats.schedules += 1;
  stats.running += 1;
  try {
    await runSteps(schedule);
  } finally {
    stats.running -= 1;
  }
}

async function runSteps(schedule: Schedule): Promise<void> {
  const w = await within(60_000, () => "creating the conversations", "the set-up", World.create(schedule));
  try {
    for (const [i, step] of schedule.steps.entries()) {
      try {
        const a0 = Date.now();
        await within(60_000, () => w.phase, "the step", w.apply(step));
        stats.applyMs += Date.now() - a0;
        await within(120_000, () => w.phase, "the checks after the step", w.checkAll());
      } catch (err) {
        const upTo: Schedule = { ...schedule, steps: schedule.steps.slice(0, i + 1) };
        throw new ScheduleFailure(
          i + 1,
          upTo,
          `step ${i + 1}/${schedule.steps.length} ${JSON.stringify(step)} (max_messages ${schedule.maxMessages}, crowd ${schedule.crowd ?? 0}):\n` +
            `${err instanceof Error ? err.message : String(err)}\n` +
            `faults not yet used: ${pendingFaults().join(", ") || "none"}\n` +
            `schedule up to this step (replay: MODEL_SCHEDULE='<this JSON>', or runSchedule(<this JSON>) in "model findings"):\n${JSON.stringify(upTo)}`,
        );
      }
    }
  } finally {
    w.closeAll();
  }
}
