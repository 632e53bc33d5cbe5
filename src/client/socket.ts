/**
 * The SDK's view of a WebSocket, so tests and non-browser hosts can supply
 * their own (the Workers test pool upgrades through `SELF.fetch`).
 */
import { HttpError, NetworkError } from "./errors";

/** Callbacks the SDK registers before the socket is handed over. */
export interface SocketHandlers {
  message(data: string): void;
  close(code: number, reason: string): void;
}

/** An open socket. */
export interface ClientSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * Opens `url` (ws:// or wss://) and resolves once it is open. Rejects with
 * HttpError when the factory can see a refused upgrade's response (status,
 * `Retry-After`, epoch), or with NetworkError otherwise (a browser only
 * reports "closed").
 */
export type SocketFactory = (url: string, handlers: SocketHandlers) => Promise<ClientSocket>;

interface EventTargetLike {
  addEventListener(type: string, listener: (ev: { data?: unknown; code?: number; reason?: string }) => void): void;
}
interface WebSocketLike extends ClientSocket, EventTargetLike {}
type WebSocketCtor = new (url: string) => WebSocketLike;

/**
 * A SocketFactory over the standard `WebSocket` constructor (browsers, Deno,
 * Node 22+).
 *
 * @example
 * const client = new OfflineClient({ baseUrl, token, storage, socketFactory: webSocketFactory() });
 */
export function webSocketFactory(ctor?: WebSocketCtor): SocketFactory {
  const Ctor = ctor ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  return (url, handlers) =>
    new Promise<ClientSocket>((resolve, reject) => {
      if (!Ctor) return reject(new NetworkError("WebSocket is not available"));
      let open = false;
      let ws: WebSocketLike;
      try {
        ws = new Ctor(url);
      } catch (err) {
        return reject(new NetworkError("WebSocket constructor failed", err));
      }
      ws.addEventListener("open", () => {
        open = true;
        resolve(ws);
      });
      ws.addEventListener("message", (ev) => {
        if (typeof ev.data === "string") handlers.message(ev.data);
      });
      ws.addEventListener("close", (ev) => {
        if (!open) reject(new NetworkError(`socket closed before opening (${ev.code ?? 1006})`));
        else handlers.close(ev.code ?? 1006, ev.reason ?? "");
      });
      // `error` is always followed by `close`, which does the work.
      ws.addEventListener("error", () => undefined);
    });
}

/**
 * A SocketFactory that upgrades through a fetch function (Cloudflare Workers'
 * `fetch` with `Upgrade: websocket`, or the test pool's `SELF.fetch`). A refused
 * upgrade rejects with the server's HttpError.
 *
 * @example
 * const socketFactory = fetchSocketFactory((req) => SELF.fetch(req));
 */
export function fetchSocketFactory(fetcher: (req: Request) => Promise<Response>): SocketFactory {
  return async (url, handlers) => {
    const httpUrl = url.replace(/^ws(s?):/, "http$1:");
    let res: Response;
    try {
      res = await fetcher(new Request(httpUrl, { headers: { upgrade: "websocket" } }));
    } catch (err) {
      throw new NetworkError("upgrade request failed", err);
    }
    const ws = (res as Response & { webSocket?: (WebSocketLike & { accept(): void }) | null }).webSocket;
    if (!ws) throw await HttpError.from(res);
    ws.accept();
    ws.addEventListener("message", (ev) => {
      if (typeof ev.data === "string") handlers.message(ev.data);
    });
    ws.addEventListener("close", (ev) => {
      // Reciprocate so the server's close handshake completes (1005/1006 cannot be sent).
      const code = ev.code ?? 1000;
      try {
        ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, ev.reason ?? "");
      } catch {
        // already closed
      }
      handlers.close(code, ev.reason ?? "");
    });
    return ws;
  };
}
