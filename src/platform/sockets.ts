/**
 * Hibernation-API socket plumbing shared by every Durable Object with sockets:
 * identity that survives hibernation, sends that never throw into fan-out, and
 * the close handshake the platform requires.
 */
import { log } from "./log";

/** Identity headers the Worker sets after authenticating an upgrade (never taken from clients). */
export const IDENTITY_HEADERS = { user: "x-od-user", device: "x-od-device" } as const;

/** Attachment versions let a deploy change the shape without misreading old sockets. */
export interface SocketIdentity {
  v: 1;
  user: string;
  device: string;
}

export function identityOf(ws: WebSocket): SocketIdentity | null {
  const a = ws.deserializeAttachment() as SocketIdentity | null;
  return a && a.v === 1 ? a : null;
}

/** The identity the Worker put on an upgrade request. */
export function identityFrom(request: Request): SocketIdentity {
  return { v: 1, user: request.headers.get(IDENTITY_HEADERS.user) ?? "", device: request.headers.get(IDENTITY_HEADERS.device) ?? "" };
}

/** Sockets that can still take frames: CLOSING and CLOSED ones are skipped. */
export function openSockets(ctx: DurableObjectState, tag?: string): WebSocket[] {
  return ctx.getWebSockets(tag).filter((ws) => ws.readyState === WebSocket.OPEN);
}

/** Sends one frame; a dead peer must not stop the fan-out to everyone else. */
export function sendFrame(ws: WebSocket, frame: unknown): boolean {
  try {
    ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
    return true;
  } catch (err) {
    log("socket_send_failed", { error: String(err) });
    return false;
  }
}

/**
 * Completes the close handshake the peer started. 1005/1006/1015 are reserved
 * (never sent on the wire) and `close()` throws on them, so they become 1000.
 */
export function reciprocateClose(ws: WebSocket, code: number, reason: string): void {
  closeSocket(ws, code === 1005 || code === 1006 || code === 1015 ? 1000 : code, reason);
}

export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}

/** Parses a client text frame as a JSON object, or null. */
export function parseFrame(message: string | ArrayBuffer): Record<string, unknown> | null {
  if (typeof message !== "string") return null;
  try {
    const value = JSON.parse(message) as unknown;
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Accepts the server end of a new socket with its identity; returns the client end's 101 response. */
export function acceptSocket(ctx: DurableObjectState, identity: SocketIdentity, tags: string[], greet: (ws: WebSocket) => void): Response {
  const { 0: client, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server, tags);
  server.serializeAttachment(identity);
  greet(server);
  return new Response(null, { status: 101, webSocket: client });
}
