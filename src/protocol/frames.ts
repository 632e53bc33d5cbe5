/** WebSocket frames of PROTOCOL.md (JSON text; the text frame `ping` is answered `pong`). */
import type { ErrorCode } from "./errors";
import type { Gap, Membership, Message } from "./types";

// ---- /v1/conversations/:id/live ----

export interface HelloFrame {
  type: "hello";
  conversation_id: string;
  epoch: string;
  head_seq: number;
  floor_seq: number;
}
export interface MessagesFrame {
  type: "messages";
  messages: Message[];
  gaps: Gap[];
  has_more: boolean;
}
export interface LiveFrame {
  type: "live";
}
export interface MessageFrame {
  type: "message";
  message: Message;
}
export interface SentFrame {
  type: "sent";
  client_msg_id: string;
  seq: number;
  duplicate: boolean;
}
/** Extension: confirms an `ack` with the device's effective `received` cursor. */
export interface AckedFrame {
  type: "acked";
  seq: number;
}
export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  /** The client frame's `client_msg_id`, when it had one, so a failed send can be matched. */
  client_msg_id?: string;
}

/**
 * v1.1: how far the socket user's newest message got (at most one per second
 * per socket). Counts for an older seq are at least these.
 */
export interface ReceiptFrame {
  type: "receipt";
  seq: number;
  /** Extension: current members other than the sender. */
  members: number;
  delivered: { users: number; devices: number };
  read: { users: number };
}

export type LiveServerFrame = HelloFrame | MessagesFrame | LiveFrame | MessageFrame | SentFrame | AckedFrame | ReceiptFrame | ErrorFrame;

export interface SendFrame {
  type: "send";
  client_msg_id: string;
  body: unknown;
}
export interface AckFrame {
  type: "ack";
  seq: number;
}
export type LiveClientFrame = SendFrame | AckFrame;

// ---- /v1/inbox ----

/** Extension: first frame on an inbox socket, the user's current sync checkpoint. */
export interface InboxHelloFrame {
  type: "hello";
  checkpoint: string;
}
export interface PokeFrame {
  type: "poke";
  conversation_id: string;
  head_seq: number;
  checkpoint: string;
}
export interface ReadFrame {
  type: "read";
  conversation_id: string;
  read: number;
}
export interface MembershipFrame {
  type: "membership";
  conversation_id: string;
  membership: Membership;
}
/** Extension: entries were queued for this device (GET /v1/to-device fetches them). */
export interface ToDeviceFrame {
  type: "to_device";
  pending: number;
}
export type InboxServerFrame = InboxHelloFrame | PokeFrame | ReadFrame | MembershipFrame | ToDeviceFrame | ErrorFrame;

/** Close code for a live socket whose user stopped being a member. */
export const CLOSE_NOT_MEMBER = 4003;
