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
  /** Current members by user id; the first LIMITS.maxMembersListed when `members_truncated`. */
  members: string[];
  /** Extension (v1.1): how many current members there are. */
  member_count: number;
  /** Extension (v1.1): `members` is a prefix; page the rest with GET …/members?after=. */
  members_truncated?: true;
  retention: RetentionPolicy;
  created_at: string;
}

/** A page of a conversation's current members (GET /v1/conversations/:id/members). */
export interface MemberPage {
  conversation_id: string;
  members: string[];
  member_count: number;
  has_more: boolean;
  next_after: string | null;
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

/**
 * v1.1 `timeline`: the newest entries this device has not received, so one sync
 * can draw the inbox. `next_before` is the first returned seq when `limited`.
 */
export interface SyncTimeline {
  messages: Message[];
  gaps: Gap[];
  limited: boolean;
  next_before: number | null;
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
  /** Present when the request asked for `timeline_limit` > 0 (v1.1). */
  timeline?: SyncTimeline;
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

/** v1.1 receipts: how far one entry got, derived from the cursors the conversation mirrors. */
export interface ReceiptCounts {
  conversation_id: string;
  seq: number;
  /** Current members other than the entry's sender. */
  members: number;
  delivered: { users: number; devices: number };
  read: { users: number };
}

/** v1.1 socket ticket: one-time, bound to the caller's user and device. */
export interface SocketTicket {
  ticket: string;
  expires_in: number;
}

export interface CursorsResponse {
  received: Record<string, number>;
  read: Record<string, number>;
}
