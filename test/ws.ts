/** A WebSocket client for tests: collects frames and waits for them by predicate. */
import { SELF } from "cloudflare:test";
import { BASE } from "./helpers";

export type Frame = { type: string; [k: string]: any };

export class TestSocket {
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | null = null;
  #waiters: Array<() => void> = [];

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
  static async open(path: string, token?: string): Promise<TestSocket | Response> {
    const headers: Record<string, string> = { upgrade: "websocket" };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await SELF.fetch(BASE + path, { headers });
    if (!res.webSocket) return res;
    res.webSocket.accept();
    return new TestSocket(res.webSocket);
  }

  static async must(path: string, token?: string): Promise<TestSocket> {
    const s = await TestSocket.open(path, token);
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

  #taken = 0;

  /** The next frame of `type` not yet returned by `next` (frames are consumed in order). */
  async next(type: string, ms = 5000): Promise<Frame> {
    const find = () => this.frames.findIndex((x, i) => i >= this.#taken && x.type === type);
    await this.until(() => find() >= 0, ms);
    const index = find();
    this.#taken = index + 1;
    return this.frames[index]!;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
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
      if (f.type === "messages") for (const m of f.messages) out.push(m.seq);
      if (f.type === "message") out.push(f.message.seq);
    }
    return out;
  }
}
