/**
 * One reconnecting socket (a conversation's live socket or the inbox): the
 * connect sequence (ticket, URL, upgrade), validated frames processed one at a
 * time, and full-jitter reconnects. What the frames mean is the owner's
 * business (ChannelSpec). Every failure falls back to the durable log over
 * HTTP: sockets are an optimisation.
 */
import { parseFrame, type ParsedFrame } from "../protocol/frame-schemas";
import type { ApiTransport } from "./api";
import { backoffDelay, type BackoffOptions } from "./backoff";
import type { Emitter } from "./emitter";
import { HttpError, NetworkError, ProtocolError, StoppedError } from "./errors";
import type { ClientSocket, SocketFactory } from "./socket";

/** What every channel of one client shares. */
export interface ChannelHost {
  api: ApiTransport;
  factory: SocketFactory;
  /** ws(s):// origin of the service. */
  wsBase: string;
  events: Emitter;
  backoff: BackoffOptions | undefined;
  random: () => number;
  /** The abort signal of the current online period; undefined while offline. */
  signal(): AbortSignal | undefined;
}

/**
 * The owner's answer to a refused connect or a close: reconnect after a
 * backoff; "wait" for the next sync pass to open it again; or "stop" until
 * `allow()` (e.g. not a member).
 */
export type Verdict = "reconnect" | "wait" | "stop";

export interface ChannelSpec<F extends { type: string }> {
  /** null for the inbox; shown in `socket` events. */
  conversationId: string | null;
  schemas: Parameters<typeof parseFrame<F>>[0];
  /** Path and query of the next connect (read per connect: a live socket's `after` moves). */
  target(): { path: string; params: URLSearchParams };
  /** Whether the channel should be up at all (online, and for a live socket: on screen). */
  wanted(): boolean;
  opened(): void;
  frame(frame: F): void | Promise<void>;
  /** A frame type this SDK does not know (newer servers may add some). */
  unknown(type: string): void;
  /** A known frame arrived malformed and was dropped (after the `error` event). */
  dropped(): void;
  /** After a socket closed or failed: pending work on it must not wait forever. */
  lost(reason: string): void;
  connectFailed(err: unknown): Verdict;
  closed(code: number): Verdict;
  /** Runs before each reconnect; a failure postpones the reconnect. */
  beforeReconnect(): Promise<void>;
}

export class SocketChannel<F extends { type: string }> {
  readonly #host: ChannelHost;
  readonly #spec: ChannelSpec<F>;
  #socket: ClientSocket | null = null;
  /** Bumped per connection attempt and close; callbacks of an older one are ignored. */
  #gen = 0;
  #connecting = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #attempt = 0;
  /** Frames are handled one after the other, in arrival order. */
  #chain: Promise<void> = Promise.resolve();
  /** Stopped by a verdict: no reconnect until `allow()`. */
  #stopped = false;

  constructor(host: ChannelHost, spec: ChannelSpec<F>) {
    this.#host = host;
    this.#spec = spec;
  }

  get connected(): boolean {
    return this.#socket !== null;
  }

  /** Connects unless connected, connecting, waiting to reconnect, or stopped. */
  open(): void {
    if (this.#socket || this.#connecting || this.#timer !== null || this.#stopped || !this.#spec.wanted()) return;
    const gen = ++this.#gen;
    this.#connecting = true;
    this.#connect(gen).catch((err: unknown) => {
      if (gen !== this.#gen) return;
      this.#connecting = false;
      this.#follow(this.#spec.connectFailed(err), err);
    });
  }

  async #connect(gen: number): Promise<void> {
    const { path, params } = this.#spec.target();
    const [key, value] = await this.#host.api.socketAuth(this.#host.signal());
    if (gen !== this.#gen) return; // closed while the ticket was on its way
    params.set(key, value);
    const socket = await this.#host.factory(`${this.#host.wsBase}${path}?${params}`, {
      message: (data) => this.#received(gen, data),
      close: (code, reason) => this.#closedByPeer(gen, code, reason),
    });
    if (gen === this.#gen) this.#connecting = false;
    if (gen !== this.#gen || !this.#spec.wanted()) {
      socket.close(1000, "client closing");
      return;
    }
    this.#socket = socket;
    this.#spec.opened();
  }

  /** Sends one frame; throws NetworkError when there is no open socket. */
  send(frame: object): void {
    if (!this.#socket) throw new NetworkError("socket not open");
    try {
      this.#socket.send(JSON.stringify(frame));
    } catch (err) {
      throw new NetworkError("socket send failed", err);
    }
  }

  /** The connection proved healthy: the next failure starts the backoff over. */
  healthy(): void {
    this.#attempt = 0;
  }

  /** Lifts a "stop" verdict (the conversation was shown again). */
  allow(): void {
    this.#stopped = false;
  }

  /** Closes for good (hide, stop); `open()` starts again. */
  close(): void {
    this.#gen++;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#connecting = false;
    const socket = this.#socket;
    try {
      socket?.close(1000, "client closing");
    } catch {
      // already closed
    }
    this.#teardown(socket !== null, "socket closed");
  }

  #teardown(wasOpen: boolean, reason: string): void {
    this.#socket = null;
    this.#spec.lost(reason);
    if (wasOpen) this.#host.events.emit("socket", { conversationId: this.#spec.conversationId, open: false });
  }

  #closedByPeer(gen: number, code: number, reason: string): void {
    if (gen !== this.#gen) return;
    this.#gen++;
    this.#connecting = false;
    this.#teardown(true, `socket closed (${code})`);
    if (!this.#spec.wanted()) return;
    // The backoff starts over only once the owner called it healthy: a socket dropped before that keeps backing off.
    this.#follow(this.#spec.closed(code), new NetworkError(`socket closed (${code} ${reason})`));
  }

  #follow(verdict: Verdict, err: unknown): void {
    if (verdict === "stop") this.#stopped = true;
    else if (verdict === "reconnect") this.#scheduleReconnect(err);
  }

  #received(gen: number, data: string): void {
    if (gen !== this.#gen || data === "pong") return;
    let parsed: ParsedFrame<F>;
    try {
      parsed = parseFrame(this.#spec.schemas, JSON.parse(data));
    } catch {
      parsed = { kind: "malformed", type: null, problem: "not JSON" };
    }
    if (parsed.kind === "unknown") return this.#spec.unknown(parsed.type);
    if (parsed.kind === "malformed") {
      this.#host.events.emit("error", new ProtocolError(`dropped a malformed ${parsed.type ?? "socket"} frame: ${parsed.problem}`));
      return this.#spec.dropped();
    }
    const frame = parsed.frame;
    this.#chain = this.#chain
      .then(() => (gen === this.#gen ? this.#spec.frame(frame) : undefined))
      .catch((err: unknown) => {
        if (gen !== this.#gen) return;
        // The app's handler or storage failed: drop the socket; the durable path retries.
        this.#host.events.emit("error", err);
        const socket = this.#socket;
        this.#closedByPeer(gen, 1011, "client error");
        try {
          socket?.close(1011, "client error");
        } catch {
          // already closed
        }
      });
  }

  #scheduleReconnect(err: unknown): void {
    if (this.#timer !== null || !this.#spec.wanted()) return;
    const delay = backoffDelay(this.#attempt++, err, this.#host.backoff, this.#host.random);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // The pass that follows tokenChanged() opens it again.
      if (!this.#spec.wanted() || this.#host.api.waitingForToken) return;
      this.#spec.beforeReconnect().then(
        () => this.open(),
        (e: unknown) => {
          if (!(e instanceof StoppedError)) this.#scheduleReconnect(e);
        },
      );
    }, delay);
  }
}

/** Whether a refused connect can heal by trying again (transient, or a ticket/token the next attempt replaces). */
export function worthRetrying(err: unknown): boolean {
  return !(err instanceof HttpError) || err.retryable || err.status === 401;
}
