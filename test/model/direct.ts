/**
 * Requests straight into the Worker's fetch handler (src/index.ts) instead of
 * through `SELF`, for the high-volume suites (model, hostile).
 *
 * Why: in @cloudflare/vitest-pool-workers 0.15.1, `SELF.fetch` latency grows
 * with every call made in a test file (measured: GET /healthz 5 ms for the
 * first 100 calls, 42 ms for calls 300-400, ~300 ms after 1,000), while
 * `worker.fetch(request, env, ctx)` stays at ~0.1 ms. The Worker code under
 * test is the same; only the static-assets layer in front of it is skipped,
 * and no API path is served by assets (`not_found_handling = "none"`).
 */
import { createExecutionContext, env } from "cloudflare:test";
import worker from "../../src/index";
import type { Env } from "../../src/env";
import { BASE } from "../helpers";

export async function directFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const request = new Request(BASE + path, init);
  return worker.fetch(request, env as unknown as Env, createExecutionContext());
}

export interface Res<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function directJson<T>(method: string, path: string, token: string | null, body?: unknown): Promise<Res<T>> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await directFetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export type Frame = { type: string; [k: string]: unknown };

/** A WebSocket client over `directFetch` (same behaviour as test/ws.ts TestSocket). */
export class DirectSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: (() => void)[] = [];
  #taken = 0;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const data = typeof e.data === "string" ? e.data : "";
      this.frames.push(data === "pong" ? { type: "pong" } : (JSON.parse(data) as Frame));
      this.#wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.#wake();
    });
  }

  /** Opens a socket; returns the HTTP response instead when the upgrade is refused. */
  static async open(path: string, token?: string, headers: Record<string, string> = {}): Promise<DirectSocket | Response> {
    const h: Record<string, string> = { upgrade: "websocket", ...headers };
    if (token) h.authorization = `Bearer ${token}`;
    const res = await directFetch(path, { headers: h });
    if (!res.webSocket) return res;
    res.webSocket.accept();
    return new DirectSocket(res.webSocket);
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async until(pred: (frames: Frame[]) => boolean, ms = 5000): Promise<Frame[]> {
    const deadline = Date.now() + ms;
    while (!pred(this.frames)) {
      if (Date.now() > deadline) throw new Error(`timeout; frames so far: ${JSON.stringify(this.frames).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.frames;
  }

  /** The next frame of `type` not yet returned by `next`. */
  async next(type: string, ms = 5000): Promise<Frame> {
    const find = () => this.frames.findIndex((x, i) => i >= this.#taken && x.type === type);
    await this.until(() => find() >= 0, ms);
    const index = find();
    this.#taken = index + 1;
    return this.frames[index]!;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" || frame instanceof ArrayBuffer ? frame : JSON.stringify(frame));
  }

  close(): void {
    try {
      this.ws.close(1000, "bye");
    } catch {
      // already closed
    }
  }

  /** Seqs of every entry received (catch-up pages and live frames), in arrival order. */
  seqs(): number[] {
    const out: number[] = [];
    for (const f of this.frames) {
      if (f.type === "messages") for (const m of f.messages as { seq: number }[]) out.push(m.seq);
      if (f.type === "message") out.push((f.message as { seq: number }).seq);
    }
    return out;
  }
}

/** A device acting through the Worker (the subset of test/helpers.ts Device the model needs). */
export class DirectDevice {
  constructor(
    readonly user: string,
    readonly device: string,
    readonly jwt: string,
  ) {}

  get<T>(path: string) {
    return directJson<T>("GET", path, this.jwt);
  }
  post<T>(path: string, body: unknown = {}) {
    return directJson<T>("POST", path, this.jwt, body);
  }
}
