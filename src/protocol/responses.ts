/**
 * Response schemas of the wire contract, for the OpenAPI document and for the
 * tests that check real responses against it. The TypeScript interfaces in
 * ./types.ts describe the same shapes; test/openapi.test.ts fails if they drift.
 */
import * as z from "zod";
import { ERROR_STATUS } from "./errors";

const seq = z.number().int().min(0);
const isoTime = z.string().meta({ format: "date-time" }).describe("ISO 8601 timestamp");

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]]),
      message: z.string(),
      epoch: z.string().optional(),
      retry_after: z.number().int().optional().describe("seconds; 429 and 503 only, as in the Retry-After header"),
    }),
    epoch: z.string().optional().describe("409 epoch_mismatch: the conversation's current epoch"),
  })
  .meta({ id: "Error" });

export const senderSchema = z.object({ user: z.string(), device: z.string() });

export const attachmentSchema = z
  .object({
    media_id: z.string(),
    size: z.number().int(),
    mime: z.string(),
    sha256: z.string().describe("hex"),
    preview: z.string().optional(),
  })
  .meta({ id: "Attachment" });

export const messageSchema = z
  .object({
    seq,
    msg_id: z.string(),
    type: z.enum(["message", "member"]),
    sender: senderSchema,
    client_msg_id: z.string().nullable(),
    body: z.unknown().describe("the sender's JSON; member entries: {added, removed, by, created?}"),
    created_at: isoTime,
    attachments: z.array(attachmentSchema).optional(),
  })
  .meta({ id: "Message" });

export const gapSchema = z.object({ from: seq, to: seq, reason: z.enum(["retention", "not_member"]) }).meta({ id: "Gap" });

export const retentionSchema = z.object({
  max_age_seconds: z.number().int().optional(),
  max_messages: z.number().int().optional(),
});

export const conversationSummarySchema = z
  .object({
    id: z.string(),
    epoch: z.string(),
    head_seq: seq,
    floor_seq: seq,
    members: z.array(z.string()).describe("current members by user id (the first 1,000 when members_truncated)"),
    member_count: z.number().int().min(0),
    members_truncated: z.literal(true).optional().describe("page the rest with GET /v1/conversations/{id}/members?after="),
    retention: retentionSchema,
    created_at: isoTime,
  })
  .meta({ id: "ConversationSummary" });

export const memberPageSchema = z
  .object({
    conversation_id: z.string(),
    members: z.array(z.string()),
    member_count: z.number().int().min(0),
    has_more: z.boolean(),
    next_after: z.string().nullable(),
  })
  .meta({ id: "MemberPage" });

export const sendResultSchema = z.object({ seq, msg_id: z.string(), created_at: isoTime, duplicate: z.boolean() }).meta({ id: "SendResult" });

export const messagePageSchema = z
  .object({
    conversation_id: z.string(),
    epoch: z.string(),
    head_seq: seq,
    floor_seq: seq,
    messages: z.array(messageSchema),
    gaps: z.array(gapSchema),
    has_more: z.boolean(),
    next_after: seq.optional(),
    next_before: seq.optional(),
  })
  .meta({ id: "MessagePage" });

export const syncTimelineSchema = z
  .object({
    messages: z.array(messageSchema).describe("the newest ≤ timeline_limit visible entries after this device's received cursor, ascending"),
    gaps: z.array(gapSchema),
    limited: z.boolean().describe("visible entries exist between received and the first returned entry"),
    next_before: seq.nullable().describe("the first returned seq when limited (page on with ?before=), else null"),
  })
  .meta({ id: "SyncTimeline" });

export const syncConversationSchema = z
  .object({
    id: z.string(),
    epoch: z.string(),
    head_seq: seq,
    floor_seq: seq,
    received: seq,
    read: seq,
    unread: seq,
    last_activity_at: isoTime.nullable(),
    membership: z.enum(["member", "left"]),
    timeline: syncTimelineSchema.optional().describe("present when timeline_limit > 0"),
  })
  .meta({ id: "SyncConversation" });

export const syncResponseSchema = z
  .object({
    checkpoint: z.string(),
    has_more: z.boolean(),
    conversations: z.array(syncConversationSchema),
  })
  .meta({ id: "SyncResponse" });

export const receiptCountsSchema = z
  .object({
    conversation_id: z.string(),
    seq,
    members: z.number().int().min(0).describe("current members other than the entry's sender"),
    delivered: z.object({ users: z.number().int().min(0), devices: z.number().int().min(0) }),
    read: z.object({ users: z.number().int().min(0) }),
  })
  .meta({ id: "Receipts" });

export const socketTicketSchema = z
  .object({ ticket: z.string(), expires_in: z.number().int().describe("seconds") })
  .meta({ id: "SocketTicket" });

export const deviceInfoSchema = z
  .object({
    user_id: z.string(),
    device_id: z.string(),
    push: z.object({ provider: z.enum(["webhook", "webpush", "apns", "fcm"]), token: z.string() }).catchall(z.unknown()).nullable(),
  })
  .meta({ id: "DeviceInfo" });

export const cursorsResponseSchema = z
  .object({ received: z.record(z.string(), seq), read: z.record(z.string(), seq) })
  .meta({ id: "Cursors" });

export const queuedSchema = z.object({ queued: z.number().int(), duplicate: z.boolean() }).meta({ id: "Queued" });

export const toDevicePageSchema = z
  .object({
    entries: z.array(z.object({ id: z.number().int(), from: senderSchema, body: z.unknown(), created_at: isoTime })),
    has_more: z.boolean(),
    dropped: z.number().int(),
  })
  .meta({ id: "ToDevicePage" });

export const remainingSchema = z.object({ remaining: z.number().int() });

export const expiredReceiptsSchema = z
  .object({
    conversation_id: z.string(),
    floor_seq: seq,
    expired: z.array(
      z.object({ user: z.string(), device: z.string().nullable(), entries: z.number().int(), last_seq: seq, updated_at: isoTime }),
    ),
  })
  .meta({ id: "ExpiredReceipts" });
