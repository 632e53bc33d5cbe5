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
 * - cursors only move forward (effective values), unread counts exact;
 * - sync (full and incremental, paged) reports each conversation as the model does;
 * - live sockets get catch-up + every new visible entry once, in order, and a
 *   removed member's socket gets its leave entry, then close 4003;
 * - socket attachments (what survives hibernation) name exactly the open sockets.
 *
 * Eviction (`abortAllDurableObjects`) kills every object and socket; stubs are
 * made fresh for each call (helpers.convStub), and the model keeps going.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { ConversationSummary, CursorsResponse, Gap, Message, MessagePage, SendResult, SyncConversation, SyncResponse } from "../../src/protocol/types";
import { convStub, flush, token, uid } from "../helpers";
import { DirectDevice as Device, DirectSocket as TestSocket, type Frame } from "./direct";
import { ConvModel, expectedSyncRow, type ExpectedPage, type ExpectedSyncRow } from "./model";
import type { Schedule, Step } from "./steps";

export const stats = { schedules: 0, steps: 0, requests: 0, checks: 0, pollMs: 0, settleMs: 0, applyMs: 0, socketMs: 0 };

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
}

interface SyncView {
  checkpoint: string | null;
  rows: Map<string, SyncConversation>;
}

type Snapshot = {
  head: number;
  floor: number;
  entries: { seq: number; type: string; sender_user: string; sender_device: string; client_msg_id: string | null }[];
  members: { user_id: string; active: number; read_seq: number; unread: number }[];
  cursors: { user_id: string; device_id: string; received: number }[];
  sockets: unknown[];
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

export class World {
  readonly users: string[];
  readonly devices: Device[][];
  readonly convs: ConvModel[] = [];
  readonly epochs: string[] = [];
  readonly sockets = new Map<string, OpenSocket>();
  readonly views = new Map<string, SyncView>();
  /** Successful sends per (user, device, conv index): the cmids a retry may pick. */
  readonly sent = new Map<string, string[]>();
  readonly trace: string[] = [];
  #n = 0;

  private constructor(users: string[], devices: Device[][]) {
    this.users = users;
    this.devices = devices;
  }

  static async create(schedule: Schedule): Promise<World> {
    const tag = uid("mdl");
    const users = [0, 1, 2, 3].map((i) => `${tag}u${i}`);
    const devices = await Promise.all(users.map(async (u) => [new Device(u, "d0", await token(u, "d0")), new Device(u, "d1", await token(u, "d1"))]));
    const w = new World(users, devices);
    // Conversation 0: u0 and u1, kept forever. Conversation 1: u1, u0, u2 with retention max_messages.
    const specs = [
      { creator: 0, members: [1], retention: null },
      { creator: 1, members: [0, 2], retention: schedule.maxMessages },
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
    await w.settle();
    return w;
  }

  dev(u: number, d: number): Device {
    return this.devices[u]![d]!;
  }

  // ---------------------------------------------------------------- steps

  async apply(step: Step): Promise<void> {
    stats.steps += 1;
    this.trace.push(JSON.stringify(step));
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
        return this.#sync(step.u, step.d, step.limit, step.full);
      case "page":
        return this.#page(step);
      case "catchup":
        return this.#catchup(step.u, step.d, step.c, step.limit);
      case "ack":
        return this.#ack(step);
      case "member":
        return this.#member(step);
      case "retention":
        await runDurableObjectAlarm(convStub(this.convs[step.c]!.id));
        return;
      case "evict":
        return this.#evict();
      case "attachments":
        return this.#checkAttachments(step.c, await this.#snapshot(step.c));
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
    if (socket && !socket.mustClose) {
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
      } else {
        same((res.body as unknown as { error: { code: string } }).error.code, "forbidden", `send ${cmid} error code`);
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
    const opened = await TestSocket.open(`/v1/conversations/${conv.id}/live${query}`, dev.jwt);
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
    });
  }

  async #close(u: number, d: number, c: number): Promise<void> {
    const s = this.#socket(u, d, c);
    if (!s) return;
    await this.#checkSocket(s);
    s.ws.close();
    this.sockets.delete(`${u}/${d}/${c}`);
  }

  async #sync(u: number, d: number, limit: number, full: boolean): Promise<void> {
    const dev = this.dev(u, d);
    const key = `${u}/${d}`;
    const view = this.views.get(key) ?? { checkpoint: null, rows: new Map<string, SyncConversation>() };
    if (full) {
      view.checkpoint = null;
      view.rows.clear();
    }
    for (let i = 0; ; i++) {
      check(i < 50, "sync did not finish in 50 pages");
      const q = new URLSearchParams({ limit: String(limit) });
      if (view.checkpoint !== null) q.set("since", view.checkpoint);
      const res = await dev.get<SyncResponse>(`/v1/sync?${q}`);
      stats.requests += 1;
      same(res.status, 200, `sync ${q}`);
      check(res.body.conversations.length <= limit, "sync page over its limit");
      for (const row of res.body.conversations) view.rows.set(row.id, row);
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
    const cursor = conv.received.get(`${dev.user}/${dev.device}`) ?? 0;
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
      return same({ status: res.status, code: (res.body as unknown as { error: { code: string } }).error?.code }, { status: 403, code: "forbidden" }, "cursor by stranger");
    }
    const want: { received?: Record<string, number>; read?: Record<string, number> } = { received: {}, read: {} };
    if (received !== null) want.received = { [conv.id]: conv.ackReceived(dev.user, dev.device, received) };
    if (read !== null) want.read = { [conv.id]: conv.ackRead(dev.user, read) };
    same({ status: res.status, body: res.body }, { status: 200, body: want }, `cursors ${JSON.stringify(body)} by ${dev.user}/${dev.device}`);
    this.#noteCursor(dev, conv);
  }

  /** The client keeps the effective cursors it was told (received does not move its sync checkpoint). */
  #noteCursor(dev: Device, conv: ConvModel): void {
    const row = this.views.get(`${this.users.indexOf(dev.user)}/${dev.device === "d0" ? 0 : 1}`)?.rows.get(conv.id);
    if (row) row.received = conv.received.get(`${dev.user}/${dev.device}`) ?? 0;
  }

  async #ack(step: Extract<Step, { k: "ack" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const received = step.received === null ? null : step.received % (conv.head + 3);
    const read = step.read === null ? null : step.read % (conv.head + 3);
    const socket = step.socket && received !== null ? this.#socket(step.u, step.d, step.c) : undefined;
    if (socket && !socket.mustClose) {
      socket.ws.send({ type: "ack", seq: received });
      const frame = await socket.ws.next("acked");
      stats.requests += 1;
      same(frame.seq, conv.ackReceived(dev.user, dev.device, received!), `socket ack ${received}`);
      this.#noteCursor(dev, conv);
      return;
    }
    if (received === null && read === null) return;
    return this.#ackHttp(dev, step.c, received, read);
  }

  async #member(step: Extract<Step, { k: "member" }>): Promise<void> {
    const conv = this.convs[step.c]!;
    const dev = this.dev(step.u, step.d);
    const target = this.users[step.target]!;
    const change = step.add ? { add: [target] } : { remove: [target] };
    const res = await dev.post<ConversationSummary>(`/v1/conversations/${conv.id}/members`, change);
    stats.requests += 1;
    if (!conv.isActive(dev.user)) {
      return same({ status: res.status, code: (res.body as unknown as { error: { code: string } }).error?.code }, { status: 403, code: "forbidden" }, "members change by non-member");
    }
    const entry = conv.changeMembers({ user: dev.user, device: dev.device }, change.add ?? [], change.remove ?? []);
    same({ status: res.status, head_seq: res.body.head_seq, members: res.body.members }, { status: 200, head_seq: conv.head, members: conv.activeMembers() }, `members ${JSON.stringify(change)}`);
    if (entry) this.#appended(step.c, entry.seq, entry.change?.removed ?? []);
  }

  async #evict(): Promise<void> {
    await abortAllDurableObjects();
    // Every object restarts and every socket is gone; clients drop theirs.
    for (const s of this.sockets.values()) s.ws.close();
    this.sockets.clear();
  }

  // ---------------------------------------------------------------- invariants after every step

  /** Drains both outboxes (and lets retention run), then applies retention to the model. */
  async settle(): Promise<void> {
    for (const conv of this.convs) {
      await flush(conv.id);
      conv.enforceRetention();
    }
  }

  async #snapshot(c: number): Promise<Snapshot> {
    stats.requests += 1;
    return runInDurableObject(convStub(this.convs[c]!.id), (_obj, state) => {
      const sql = state.storage.sql;
      const meta = sql.exec<{ head_seq: number; floor_seq: number }>("SELECT head_seq, floor_seq FROM conversation").one();
      return {
        head: meta.head_seq,
        floor: meta.floor_seq,
        entries: sql
          .exec<{ seq: number; type: string; sender_user: string; sender_device: string; client_msg_id: string | null }>(
            "SELECT seq, type, sender_user, sender_device, client_msg_id FROM entries ORDER BY seq",
          )
          .toArray(),
        members: sql.exec<{ user_id: string; active: number; read_seq: number; unread: number }>("SELECT user_id, active, read_seq, unread FROM members ORDER BY user_id").toArray(),
        cursors: sql.exec<{ user_id: string; device_id: string; received: number }>("SELECT user_id, device_id, received FROM device_cursors ORDER BY user_id, device_id").toArray(),
        sockets: state
          .getWebSockets()
          .filter((ws) => ws.readyState === WebSocket.OPEN)
          .map((ws) => ws.deserializeAttachment() as unknown),
      };
    });
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

  async #checkSocket(s: OpenSocket): Promise<void> {
    const ws = s.ws;
    const conv = this.convs[s.conv]!;
    try {
      await ws.until(() => ws.seqs().length >= s.expected.length, 5000);
    } catch {
      // fall through: the comparison below reports what is missing
    }
    same(ws.seqs(), s.expected, `live socket ${s.user}/${s.device} on ${conv.id}: every visible entry once, in order`);
    const gapSeqs: number[] = [];
    for (const f of ws.frames.filter((x: Frame) => x.type === "messages")) {
      for (const g of f.gaps as Gap[]) for (let q = g.from; q <= g.to; q++) gapSeqs.push(q);
    }
    same(gapSeqs, s.expectedGaps, `live socket ${s.user}/${s.device} catch-up gaps`);
    same(ws.frames.filter((f: Frame) => f.type === "error"), [], `live socket ${s.user}/${s.device} error frames`);
  }

  async checkAll(): Promise<void> {
    const s0 = Date.now();
    await this.settle();
    stats.settleMs += Date.now() - s0;
    const k0 = Date.now();
    for (const [key, s] of [...this.sockets]) {
      await this.#checkSocket(s);
      if (s.mustClose) {
        try {
          await s.ws.until(() => s.ws.closed !== null, 5000);
        } catch {
          // reported below
        }
        same(s.ws.closed?.code, 4003, `socket of removed ${s.user} closes with 4003`);
        this.sockets.delete(key);
      }
    }
    stats.socketMs += Date.now() - k0;
    for (let c = 0; c < this.convs.length; c++) {
      let snap = await this.#snapshot(c);
      this.#checkLog(c, snap);
      // A socket closed by the client may take a moment to leave the server's OPEN set.
      const p0 = Date.now();
      for (let i = 0; i < 40 && snap.sockets.length > [...this.sockets.values()].filter((s) => s.conv === c && !s.mustClose).length; i++) {
        await new Promise((r) => setTimeout(r, 50));
        snap = await this.#snapshot(c);
      }
      stats.pollMs += Date.now() - p0;
      this.#checkAttachments(c, snap);
    }
  }

  closeAll(): void {
    for (const s of this.sockets.values()) s.ws.close();
    this.sockets.clear();
  }
}

/** Runs one schedule; on failure the error names the step and the trace so far. */
export async function runSchedule(schedule: Schedule): Promise<void> {
  stats.schedules += 1;
  const w = await World.create(schedule);
  try {
    for (const [i, step] of schedule.steps.entries()) {
      try {
        const a0 = Date.now();
        await w.apply(step);
        stats.applyMs += Date.now() - a0;
        await w.checkAll();
      } catch (err) {
        throw new Error(
          `step ${i + 1}/${schedule.steps.length} ${JSON.stringify(step)} (max_messages ${schedule.maxMessages}):\n${err instanceof Error ? err.message : String(err)}\ntrace:\n  ${w.trace.join("\n  ")}`,
        );
      }
    }
  } finally {
    w.closeAll();
  }
}
