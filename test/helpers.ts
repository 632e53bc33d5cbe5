/** Test helpers: tokens, a typed JSON client over SELF, unique names per test, DO introspection. */
import { env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { sign } from "hono/jwt";
import { expect } from "vitest";
import type { Env } from "../src/env";
import type { ErrorBody, ErrorCode } from "../src/protocol/errors";
import type {
  ConversationSummary,
  CursorsResponse,
  MessagePage,
  SendResult,
  SyncConversation,
  SyncResponse,
} from "../src/protocol/types";

export const SECRET = "test-secret";
export const BASE = "https://example.test";

/** The bindings of the Worker under test, typed as the server sees them. */
export const testEnv = env as unknown as Env;

let counter = 0;
/** A fresh id per call, so tests never share objects. */
export function uid(prefix = "t"): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

export async function token(user: string, device: string, extra: Record<string, unknown> = {}, secret = SECRET): Promise<string> {
  return sign({ sub: user, did: device, exp: Math.floor(Date.now() / 1000) + 3600, ...extra }, secret, "HS256");
}

export interface Res<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = any>(method: string, path: string, opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<Res<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await SELF.fetch(BASE + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Asserts the contract's error shape: status, code and a human message. */
export function expectError(res: Res<unknown>, status: number, code: ErrorCode): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { error: { code } } });
  const body = res.body as ErrorBody;
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message.length).toBeGreaterThan(0);
}

/** A device acting through the HTTP API. */
export class Device {
  private constructor(readonly user: string, readonly device: string, readonly jwt: string) {}

  static async of(user: string, device = "phone"): Promise<Device> {
    return new Device(user, device, await token(user, device));
  }

  get<T = any>(path: string) {
    return request<T>("GET", path, { token: this.jwt });
  }
  post<T = any>(path: string, body?: unknown) {
    return request<T>("POST", path, { token: this.jwt, body: body ?? {} });
  }
  delete<T = any>(path: string) {
    return request<T>("DELETE", path, { token: this.jwt });
  }

  /** Registers this device (POST /v1/devices) so per-user fan-outs see it. */
  async register(): Promise<void> {
    const res = await this.post("/v1/devices", {});
    if (res.status !== 200) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  async createConversation(members: string[], extra: Record<string, unknown> = {}): Promise<string> {
    const res = await this.post<ConversationSummary>("/v1/conversations", { members, ...extra });
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id;
  }

  send(conv: string, text: string, clientMsgId = uid("m")) {
    return this.post<SendResult>(`/v1/conversations/${conv}/messages`, { client_msg_id: clientMsgId, body: { text } });
  }

  /** Sends and insists on a fresh 201; returns the seq. */
  async sendOk(conv: string, text = "hi", clientMsgId = uid("m")): Promise<number> {
    const res = await this.send(conv, text, clientMsgId);
    if (res.status !== 201) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.seq;
  }

  async members(conv: string, change: { add?: string[]; remove?: string[] }): Promise<ConversationSummary> {
    const res = await this.post<ConversationSummary>(`/v1/conversations/${conv}/members`, change);
    if (res.status !== 200) throw new Error(`members failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  summary(conv: string) {
    return this.get<ConversationSummary>(`/v1/conversations/${conv}`);
  }

  page(conv: string, query = "") {
    return this.get<MessagePage>(`/v1/conversations/${conv}/messages${query ? `?${query}` : ""}`);
  }

  sync(query = "") {
    return this.get<SyncResponse>(`/v1/sync${query ? `?${query}` : ""}`);
  }

  cursors(body: { received?: Record<string, number>; read?: Record<string, number> }) {
    return this.post<CursorsResponse>("/v1/cursors", body);
  }

  /** Full sync (all pages) and the entry for one conversation. */
  async syncEntry(conv: string): Promise<SyncConversation | undefined> {
    let since: string | undefined;
    for (let i = 0; i < 100; i++) {
      const res = await this.sync(since ? `since=${encodeURIComponent(since)}&limit=500` : "limit=500");
      if (res.status !== 200) throw new Error(`sync failed: ${res.status} ${JSON.stringify(res.body)}`);
      const hit = res.body.conversations.find((c) => c.id === conv);
      if (hit) return hit;
      if (!res.body.has_more) return undefined;
      since = res.body.checkpoint;
    }
    throw new Error("sync did not finish");
  }
}

// ---- Durable Object introspection ----

export function convStub(conv: string) {
  return testEnv.CONVERSATIONS.get(testEnv.CONVERSATIONS.idFromName(conv));
}

export function userStub(user: string) {
  return testEnv.USERS.get(testEnv.USERS.idFromName(user));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Notification work a conversation still owes its members: members owed an
 * exact view, plus one when a tick is due (the head or floor moved since the last one).
 */
export function outboxSize(conv: string): Promise<number> {
  return runInDurableObject(convStub(conv), (_obj, state) => {
    const sql = state.storage.sql;
    const targets = Number(sql.exec<{ n: number }>("SELECT count(*) AS n FROM notify_targets").one().n);
    const meta = sql.exec<{ tick_head: number; tick_floor: number; head_seq: number; floor_seq: number }>(
      "SELECT tick_head, tick_floor, head_seq, floor_seq FROM conversation",
    ).toArray()[0];
    const head = Number(sql.exec<{ seq: number | null }>("SELECT max(seq) AS seq FROM entries").one().seq ?? 0);
    const dirty = meta !== undefined && (Math.max(head, meta.head_seq) > meta.tick_head || meta.floor_seq > meta.tick_floor);
    return targets + (dirty ? 1 : 0);
  });
}

/** Poke calls a user's UserDO has received so far. */
export async function pokes(user: string): Promise<number> {
  return (await userStub(user).stats()).pokes;
}

/**
 * Drains a conversation's outbox now (runs its alarm) and waits until every
 * member's UserDO confirmed, so sync reflects the log.
 */
export async function flush(conv: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await runDurableObjectAlarm(convStub(conv));
    if ((await outboxSize(conv)) === 0) return;
    await sleep(5);
  }
  throw new Error(`outbox of ${conv} did not drain`);
}

/** Creates `count` messages from `dev`, sequentially; returns their seqs. */
export async function sendMany(dev: Device, conv: string, count: number, prefix = "m"): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) seqs.push(await dev.sendOk(conv, `${prefix}${i}`));
  return seqs;
}

/** Seqs of a page's messages. */
export function seqs(page: MessagePage): number[] {
  return page.messages.map((m) => m.seq);
}

/** Inclusive integer range. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
