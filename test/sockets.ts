/**
 * The one WebSocket client of the test suites: collects frames and waits for
 * them by predicate. Two transports: `self` goes through SELF.fetch (the
 * deployed shape, assets layer included); `direct` calls the Worker's fetch
 * handler (src/index.ts) in-process, for the high-volume suites (model,
 * hostile), because SELF.fetch latency grows with every call in a file in this
 * pool version (see test/model/direct.ts). Every socket opened is closed when
 * its file ends, so a passing run leaves no dangling peers behind.
 */
import { SELF } from "cloudflare:test";
import { afterAll } from "vitest";
import { BASE } from "./helpers";
import { directFetch } from "./model/direct";

export type Frame = { type: string; [k: string]: any };
export type Transport = "self" | "direct";

const open = new Set<TestSocket>();

afterAll(async () => {
  await Promise.all([...open].map((s) => s.closeAndWait()));
});

export class TestSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: Array<() => void> = [];
  #taken = 0;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const data = typeof e.data === "string" ? e.data : "";
      this.frames.push(data === "pong" ? { type: "pong" } : (JSON.parse(data) as Frame));
      this.#wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      open.delete(this);
      this.#wake();
    });
  }

  /** Opens a socket; returns the HTTP response instead when the upgrade is refused. */
  static async open(path: string, token?: string, opts: { transport?: Transport; headers?: Record<string, string> } = {}): Promise<TestSocket | Response> {
    const headers: Record<string, string> = { upgrade: "websocket", ...opts.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = opts.transport === "direct" ? await directFetch(path, { headers }) : await SELF.fetch(BASE + path, { headers });
    if (!res.webSocket) return res;
    res.webSocket.accept();
    const socket = new TestSocket(res.webSocket);
    open.add(socket);
    return socket;
  }

  static async must(path: string, token?: string, opts: { transport?: Transport } = {}): Promise<TestSocket> {
    const s = await TestSocket.open(path, token, opts);
    if (s instanceof Response) throw new Error(`upgrade refused: ${s.status} ${await s.text()}`);
    return s;
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred(frames)` is true (or throws after `ms`). */
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

  /** The next frame of `type` not yet returned by `next` (frames are consumed in order). */
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

  /** Closes and waits for the server's close frame (bounded). */
  async closeAndWait(ms = 1000): Promise<void> {
    this.close();
    await this.until(() => this.closed !== null, ms).catch(() => undefined);
    open.delete(this);
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
