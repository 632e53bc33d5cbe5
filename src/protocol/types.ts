/** Wire types of PROTOCOL.md v1, imported by the server and the client SDK alike. */

export type EntryType = "message" | "member";
export type Membership = "member" | "left";
export type GapReason = "retention" | "not_member";

export interface SenderRef {
  user: string;
  device: string;
}

/** Metadata of a media object a message references; the bytes are fetched lazily from /v1/media/:media_id. */
export interface Attachment {
  media_id: string;
  size: number;
  mime: string;
  sha256: string;
  /** Optional inline placeholder supplied by the uploader (blurhash or a tiny data URL). */
  preview?: string;
}

export interface MediaUpload extends Attachment {}

/** One log entry. `member` entries carry `{added, removed, by}` in `body`. */
export interface Message {
  seq: number;
  msg_id: string;
  type: EntryType;
  sender: SenderRef;
  client_msg_id: string | null;
  body: unknown;
  created_at: string;
  /** Present when the message references media (metadata only). */
  attachments?: Attachment[];
}

export interface MemberChangeBody {
  added: string[];
  removed: string[];
  by: string;
  created?: true;
}

export interface Gap {
  from: number;
  to: number;
  reason: GapReason;
}

export interface RetentionPolicy {
  max_age_seconds?: number;
  max_messages?: number;
}

export interface ConversationSummary {
  id: string;
  epoch: string;
  head_seq: number;
  floor_seq: number;
  members: string[];
  retention: RetentionPolicy;
  created_at: string;
}

export interface SendResult {
  seq: number;
  msg_id: string;
  created_at: string;
  duplicate: boolean;
}

export interface MessagePage {
  conversation_id: string;
  epoch: string;
  head_seq: number;
  floor_seq: number;
  messages: Message[];
  gaps: Gap[];
  has_more: boolean;
  next_after?: number;
  next_before?: number;
}

export interface SyncConversation {
  id: string;
  epoch: string;
  head_seq: number;
  floor_seq: number;
  received: number;
  read: number;
  unread: number;
  last_activity_at: string | null;
  membership: Membership;
}

export interface SyncResponse {
  checkpoint: string;
  has_more: boolean;
  conversations: SyncConversation[];
}

export type PushProvider = "webhook" | "webpush" | "apns" | "fcm";

export interface PushTarget {
  provider: PushProvider;
  token: string;
  [extra: string]: unknown;
}

export interface DeviceInfo {
  user_id: string;
  device_id: string;
  push: PushTarget | null;
}

export interface ToDeviceEntry {
  id: number;
  from: SenderRef;
  body: unknown;
  created_at: string;
}

export interface ToDevicePage {
  entries: ToDeviceEntry[];
  has_more: boolean;
  /** Entries this device lost to the per-device cap or TTL since it was registered. */
  dropped: number;
}

export interface CursorsResponse {
  received: Record<string, number>;
  read: Record<string, number>;
}
