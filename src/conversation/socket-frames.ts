/**
 * Frames a live socket may send: `send` and `ack`, handled by the same use
 * cases as POST …/messages and POST /v1/cursors. A refused frame gets an
 * `error` frame (with the frame's client_msg_id, so a client can match it).
 */
import { identityOf, parseFrame, sendFrame } from "../platform/sockets";
import type { ErrorFrame } from "../protocol/frames";
import { LIMITS } from "../protocol/limits";
import { ackFrameSchema, sendMessageSchema } from "../protocol/schemas";
import { moveCursors } from "../usecases/cursors";
import { sendMessage } from "../usecases/messages";
import type { Ports } from "../usecases/ports";

function errorFrame(code: ErrorFrame["code"], message: string, clientMsgId?: string): ErrorFrame {
  return { type: "error", code, message, ...(clientMsgId !== undefined ? { client_msg_id: clientMsgId } : {}) };
}

function firstIssue(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const issue = issues[0];
  return issue ? `${issue.path.map(String).join(".") || "frame"}: ${issue.message}` : "invalid frame";
}

export async function handleFrame(ws: WebSocket, message: string | ArrayBuffer, ports: Ports, conversationId: string): Promise<void> {
  const who = identityOf(ws);
  if (!who) return void ws.close(1011, "unknown socket");
  const size = typeof message === "string" ? message.length : message.byteLength;
  if (size > LIMITS.maxRequestBytes) return void sendFrame(ws, errorFrame("payload_too_large", "frame is over 256 KiB"));
  const frame = parseFrame(message);
  if (!frame) return void sendFrame(ws, errorFrame("invalid_request", "frames are JSON objects"));
  const sender = { user: who.user, device: who.device };
  if (frame.type === "send") {
    const clientMsgId = typeof frame.client_msg_id === "string" ? frame.client_msg_id : undefined;
    const parsed = sendMessageSchema.safeParse(frame);
    if (!parsed.success) return void sendFrame(ws, errorFrame("invalid_request", firstIssue(parsed.error.issues), clientMsgId));
    const res = await sendMessage(ports, sender, conversationId, parsed.data);
    if (!res.ok) return void sendFrame(ws, errorFrame(res.code, res.message, clientMsgId));
    sendFrame(ws, { type: "sent", client_msg_id: parsed.data.client_msg_id, seq: res.value.seq, duplicate: res.value.duplicate });
    return;
  }
  if (frame.type === "ack") {
    const parsed = ackFrameSchema.safeParse(frame);
    if (!parsed.success) return void sendFrame(ws, errorFrame("invalid_request", firstIssue(parsed.error.issues)));
    const res = await moveCursors(ports, sender, new Map([[conversationId, parsed.data.seq]]), new Map());
    if (!res.ok) return void sendFrame(ws, errorFrame(res.code, res.message));
    sendFrame(ws, { type: "acked", seq: res.value.received[conversationId] ?? 0 });
    return;
  }
  sendFrame(ws, errorFrame("invalid_request", `unknown frame type ${JSON.stringify(frame.type)}`));
}
