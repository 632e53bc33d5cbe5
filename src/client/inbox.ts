/**
 * The inbox socket (one per device): hints that something changed, answered
 * by a sync pass. Its being open is what makes the device "online" for push.
 */
import { ERROR_STATUS } from "../protocol/errors";
import { inboxFrameSchemas } from "../protocol/frame-schemas";
import type { InboxServerFrame } from "../protocol/frames";
import type { Emitter } from "./emitter";
import { HttpError } from "./errors";
import { SocketChannel, type ChannelHost } from "./socket-channel";
import type { ClientStore } from "./store";

export interface InboxParts {
  host: ChannelHost;
  store: ClientStore;
  events: Emitter;
  wanted(): boolean;
  requestSync(): void;
}

export function inboxChannel(p: InboxParts): SocketChannel<InboxServerFrame> {
  const channel: SocketChannel<InboxServerFrame> = new SocketChannel(p.host, {
    conversationId: null,
    schemas: inboxFrameSchemas,
    target: () => ({ path: "/v1/inbox", params: new URLSearchParams() }),
    wanted: p.wanted,
    opened: () => {
      channel.healthy();
      p.events.emit("socket", { conversationId: null, open: true });
    },
    frame: async (frame) => {
      switch (frame.type) {
        case "hello":
          if (frame.checkpoint !== p.store.checkpoint) p.requestSync();
          return;
        case "poke":
          p.events.emit("poke", frame);
          p.requestSync();
          return;
        case "read": {
          const { conversation_id: id, read } = frame;
          await p.store.update(id, (s) => (read > s.read ? { ...s, read } : s));
          return;
        }
        case "membership":
        case "to_device":
          p.requestSync();
          return;
        case "error":
          p.events.emit("error", new HttpError(ERROR_STATUS[frame.code], frame.code, frame.message));
          return;
      }
    },
    // An unknown frame still means something changed: a sync finds out what.
    unknown: p.requestSync,
    dropped: p.requestSync,
    lost: () => undefined,
    // The inbox is only a hint channel: it always comes back.
    connectFailed: () => "reconnect",
    closed: () => "reconnect",
    // Pokes may have been missed while it was down.
    beforeReconnect: async () => p.requestSync(),
  });
  return channel;
}
