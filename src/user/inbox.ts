/**
 * Inbox sockets: one per device connection, hibernating. An open one is what
 * "online" means for push. Frames: poke / read / membership when the index
 * changes, to_device when entries are queued for the device.
 */
import { LIMITS } from "../protocol/limits";
import { TUNING } from "../config/tuning";
import { errorResponse } from "../platform/errors";
import { acceptSocket, identityOf, openSockets, sendFrame, type SocketIdentity } from "../platform/sockets";
import type { InboxHelloFrame, InboxServerFrame } from "../protocol/frames";

export class Inbox {
  constructor(private readonly ctx: DurableObjectState) {}

  open(who: SocketIdentity, checkpoint: string): Response {
    if (this.ctx.getWebSockets().length >= LIMITS.maxInboxSocketsPerUser) {
      return errorResponse("overloaded", "too many inbox sockets for this user", { retryAfter: TUNING.socketCapRetrySeconds });
    }
    const hello: InboxHelloFrame = { type: "hello", checkpoint };
    return acceptSocket(this.ctx, who, [`d:${who.device}`], (ws) => sendFrame(ws, hello));
  }

  isOnline(device: string): boolean {
    return openSockets(this.ctx, `d:${device}`).length > 0;
  }

  /** Sends frames to every inbox socket; `read` frames skip the device that moved the cursor. */
  notify(frames: readonly InboxServerFrame[], actingDevice: string | null): void {
    if (frames.length === 0) return;
    const sockets = openSockets(this.ctx);
    for (const frame of frames) {
      const text = JSON.stringify(frame);
      for (const ws of sockets) {
        if (frame.type === "read" && actingDevice !== null && identityOf(ws)?.device === actingDevice) continue;
        sendFrame(ws, text);
      }
    }
  }

  /** One device's sockets only. */
  notifyDevice(device: string, frame: InboxServerFrame): void {
    for (const ws of openSockets(this.ctx, `d:${device}`)) sendFrame(ws, frame);
  }
}
