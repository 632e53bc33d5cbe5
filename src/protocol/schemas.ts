/**
 * Request schemas. The Worker validates with them through Hono's validator;
 * the client SDK reuses the inferred types.
 */
import * as z from "zod";
import { ID_PATTERN, MEDIA_ID_PATTERN } from "./ids";
import { LIMITS } from "./limits";

export const id = z.string().regex(ID_PATTERN, "must match ^[A-Za-z0-9_-]{1,64}$");
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * A query-string integer: digits only, so "1e3", "0x10" and " 5" are refused.
 * Documented as what it is to a client, an integer in min..max (the string and
 * its pattern are how it travels, not what a generated client should type).
 */
const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,16}$/, "must be a non-negative integer")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .meta({ type: "integer", minimum: min, maximum: max, pattern: undefined });
const limit = queryInt(1, LIMITS.maxPageSize).optional();
/** Deeper bodies are refused: structured clone across the object boundary recurses per level. */
export const MAX_BODY_DEPTH = 64;

/** Nesting depth of a JSON value, without recursion (a hostile body must not blow our stack). */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    max = Math.max(max, d);
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** `body` may be any JSON value, including null, but must be present and at most MAX_BODY_DEPTH deep. */
const anyJson = z
  .custom<unknown>((v) => v !== undefined, { message: "body is required" })
  .refine((v) => jsonDepth(v, MAX_BODY_DEPTH) <= MAX_BODY_DEPTH, { message: `body nests deeper than ${MAX_BODY_DEPTH} levels` });

export const pushTargetSchema = z
  .object({
    provider: z.enum(["webhook", "webpush", "apns", "fcm"]),
    token: z.string().min(1).max(4096),
  })
  .catchall(z.unknown());

export const registerDeviceSchema = z.object({ push: pushTargetSchema.nullish() });

const retentionSchema = z
  .object({
    max_age_seconds: z.number().int().min(1).max(100 * 365 * 86400).optional(),
    max_messages: z.number().int().min(1).max(1e12).optional(),
  })
  ;

export const createConversationSchema = z
  .object({
    id: id.optional(),
    members: z.array(id).max(LIMITS.maxMembersPerRequest),
    retention: retentionSchema.optional(),
  })
  ;

export const changeMembersSchema = z
  .object({
    add: z.array(id).max(LIMITS.maxMembersPerRequest).optional(),
    remove: z.array(id).max(LIMITS.maxMembersPerRequest).optional(),
  })
  ;

export const mediaId = z.string().regex(MEDIA_ID_PATTERN, "is not a media id");

export const sendMessageSchema = z.object({
  client_msg_id: id,
  body: anyJson,
  attachments: z.array(mediaId).min(1).max(LIMITS.maxAttachments).optional(),
});

export const uploadQuerySchema = z.object({ preview: z.string().min(1).max(LIMITS.maxPreviewChars).optional() });

export const ackFrameSchema = z.object({ seq });

export const pageQuerySchema = z.object({
  after: queryInt(0, Number.MAX_SAFE_INTEGER).optional(),
  before: queryInt(1, Number.MAX_SAFE_INTEGER).optional(),
  limit,
  epoch: z.string().min(1).max(64).optional(),
});

export const liveQuerySchema = z.object({
  after: queryInt(0, Number.MAX_SAFE_INTEGER).optional().describe("catch up from after this seq (≤ head_seq); without it the socket starts at the head"),
  epoch: z.string().min(1).max(64).optional().describe("the epoch the client knows; a stale one is 409 epoch_mismatch"),
  access_token: z.string().optional().describe("the device JWT, for clients that cannot set headers (prefer a ticket)"),
  ticket: z.string().optional().describe("a one-time ticket from POST /v1/sockets/ticket"),
});

export const syncQuerySchema = z.object({
  since: z.string().min(1).max(256).optional(),
  limit,
  timeline_limit: queryInt(0, LIMITS.maxTimelineLimit).optional(),
});

export const receiptsQuerySchema = z.object({ seq: queryInt(1, Number.MAX_SAFE_INTEGER) });

export const membersQuerySchema = z.object({ after: id.optional(), limit: queryInt(1, LIMITS.maxMembersListed).optional() });

export const toDeviceSendSchema = z
  .object({ user: id, device: id.optional(), client_msg_id: id, body: anyJson })
  ;

export const toDeviceListSchema = z.object({ limit });

export const toDeviceAckSchema = z.object({ up_to: seq });

/**
 * `{"<conversation id>": seq}` parsed into a Map: ids such as `__proto__` or
 * `constructor` are valid and must not meet Object.prototype on the way.
 * The array of [id, seq] pairs is how it is checked, not what a client sends:
 * the document shows the object form (the keys `items`/`maxItems` of the
 * intermediate array are removed from it).
 */
const cursorMap = z
  .preprocess(
    (v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? Object.entries(v) : v),
    z
      .array(z.tuple([id, seq]))
      .max(LIMITS.maxCursorConversations, `at most ${LIMITS.maxCursorConversations} conversations per request`)
      .transform((entries) => new Map(entries)),
  )
  .meta({
    description: "conversation id → seq",
    type: "object",
    propertyNames: { type: "string", pattern: ID_PATTERN.source },
    additionalProperties: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    maxProperties: LIMITS.maxCursorConversations,
    items: undefined,
    maxItems: undefined,
  });

export const cursorsSchema = z.object({ received: cursorMap.optional(), read: cursorMap.optional() });

export type CreateConversationRequest = z.infer<typeof createConversationSchema>;
export type ChangeMembersRequest = z.infer<typeof changeMembersSchema>;
export type SendMessageRequest = z.infer<typeof sendMessageSchema>;
export type ToDeviceSendRequest = z.infer<typeof toDeviceSendSchema>;
export type CursorsRequest = z.infer<typeof cursorsSchema>;
