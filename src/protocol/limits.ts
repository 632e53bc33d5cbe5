/** Every bound of the service in one place; README "Limits" mirrors this file. */
export const LIMITS = {
  /** Serialized `body` of one message or to-device entry. */
  maxBodyBytes: 64 * 1024,
  /** Whole request body. */
  maxRequestBytes: 256 * 1024,
  /** Page size for history, sync and to-device reads. */
  defaultPageSize: 100,
  maxPageSize: 500,
  /** Members of one conversation. */
  maxMembers: 1000,
  /** Conversations named in one POST /v1/cursors. */
  maxCursorConversations: 100,
  /** Devices per user; registering one more evicts the least recently seen. */
  maxDevicesPerUser: 50,
  /** Per-device queue: entries kept per device (oldest dropped and counted) and their TTL. */
  maxToDeviceEntries: 1000,
  toDeviceTtlMs: 7 * 24 * 3600 * 1000,
  /** Open sockets per object: live sockets per conversation, inbox sockets per user. */
  maxSocketsPerConversation: 5000,
  maxInboxSocketsPerUser: 100,
  /** Attachments per message, and the inline preview's size. */
  maxAttachments: 10,
  maxPreviewChars: 4096,
  /** Media sweeps: objects deleted per alarm run; how long an upload may stay unreferenced. */
  mediaSweepBatch: 100,
  mediaOrphanGraceMs: 24 * 3600 * 1000,
  /** Outbox drain: members poked per alarm run, concurrent pokes, delay that coalesces a burst. */
  outboxBatch: 100,
  outboxConcurrency: 16,
  outboxCoalesceMs: 25,
  outboxMaxBackoffMs: 60_000,
} as const;
