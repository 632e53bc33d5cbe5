/** Test helpers: tokens, a typed JSON client over SELF, unique names per test. */
import { SELF } from "cloudflare:test";
import { sign } from "hono/jwt";

export const SECRET = "test-secret";
export const BASE = "https://example.test";

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

  async createConversation(members: string[], extra: Record<string, unknown> = {}): Promise<string> {
    const res = await this.post("/v1/conversations", { members, ...extra });
    if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  }

  async send(conv: string, text: string, clientMsgId = uid("m")) {
    return this.post(`/v1/conversations/${conv}/messages`, { client_msg_id: clientMsgId, body: { text } });
  }
}
