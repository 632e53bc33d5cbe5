/**
 * Limits of the wire contract: what a client may send and what it can count on.
 * Server tuning (batch sizes, timeouts, fan-out widths) lives in src/config/tuning.ts;
 * README "Limits" mirrors both.
 */
export const LIMITS = {
  /** Serialized `body` of one message or to-device entry. */
  maxBodyBytes: 64 * 1024,
  /** Whole request body (and one socket frame). */
  maxRequestBytes: 256 * 1024,
  /** Page size for history, sync and to-device reads. */
  defaultPageSize: 100,
  maxPageSize: 500,
  /** v1.1: members of one conversation, and users one membership request may add or remove. */
  maxMembers: 100_000,
  maxMembersPerRequest: 1000,
  /** Members listed inline in a conversation summary; larger conversations page GET …/members. */
  maxMembersListed: 1000,
  /** Conversations named in one POST /v1/cursors. */
  maxCursorConversations: 100,
  /** v1.1: entries per conversation in a sync `timeline`. */
  maxTimelineLimit: 50,
  /** Devices per user; registering one more evicts the least recently seen. */
  maxDevicesPerUser: 50,
  /** Per-device queue: entries kept per device (oldest dropped and counted) and their TTL. */
  maxToDeviceEntries: 1000,
  toDeviceTtlMs: 7 * 24 * 3600 * 1000,
  /** Open sockets per conversation (spread over shard objects) and inbox sockets per user. */
  maxSocketsPerConversation: 100_000,
  maxInboxSocketsPerUser: 100,
  /** Attachments per message, and the inline preview's size. */
  maxAttachments: 10,
  maxPreviewChars: 4096,
  /** v1.1 socket tickets: lifetime of a one-time ticket. */
  ticketTtlSeconds: 60,
  /** Bearer tokens longer than this are refused with 401 (before any signature check). */
  maxTokenBytes: 8 * 1024,
} as const;
