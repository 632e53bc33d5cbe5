/**
 * Schemas of the frames the server sends on sockets (./frames.ts describes the
 * same shapes), built from the history-page schemas so a message is the same
 * object on every path. Clients parse with these instead of trusting the wire.
 *
 * Frame types are open-ended: a newer server may add some. `parseFrame` tells
 * apart a frame of an unknown type (to be tolerated) from a known one with a
 * bad shape (to be dropped and reported).
 */
import * as z from "zod";
import { ERROR_STATUS, type ErrorCode } from "./errors";
import type { InboxServerFrame, LiveServerFrame } from "./frames";
import { gapSchema, messageSchema } from "./responses";

const seq = z.number().int().min(0);
const count = z.number().int().min(0);
const errorCode = z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]);

const errorFrameSchema = z.object({
  type: z.literal("error"),
  code: errorCode,
  message: z.string(),
  client_msg_id: z.string().optional(),
});

/** Frames of GET /v1/conversations/:id/live, by type. */
export const liveFrameSchemas = {
  hello: z.object({ type: z.literal("hello"), conversation_id: z.string(), epoch: z.string(), head_seq: seq, floor_seq: seq }),
  messages: z.object({ type: z.literal("messages"), messages: z.array(messageSchema), gaps: z.array(gapSchema), has_more: z.boolean() }),
  live: z.object({ type: z.literal("live") }),
  message: z.object({ type: z.literal("message"), message: messageSchema }),
  sent: z.object({ type: z.literal("sent"), client_msg_id: z.string(), seq, duplicate: z.boolean() }),
  acked: z.object({ type: z.literal("acked"), seq }),
  receipt: z.object({
    type: z.literal("receipt"),
    seq,
    members: count,
    delivered: z.object({ users: count, devices: count }),
    read: z.object({ users: count }),
  }),
  error: errorFrameSchema,
} satisfies { [K in LiveServerFrame["type"]]: z.ZodType<Extract<LiveServerFrame, { type: K }>> };

/** Frames of GET /v1/inbox, by type. */
export const inboxFrameSchemas = {
  hello: z.object({ type: z.literal("hello"), checkpoint: z.string() }),
  poke: z.object({ type: z.literal("poke"), conversation_id: z.string(), head_seq: seq, checkpoint: z.string() }),
  read: z.object({ type: z.literal("read"), conversation_id: z.string(), read: seq }),
  membership: z.object({ type: z.literal("membership"), conversation_id: z.string(), membership: z.enum(["member", "left"]) }),
  to_device: z.object({ type: z.literal("to_device"), pending: count }),
  error: errorFrameSchema,
} satisfies { [K in InboxServerFrame["type"]]: z.ZodType<Extract<InboxServerFrame, { type: K }>> };

export type ParsedFrame<F> =
  | { kind: "frame"; frame: F }
  /** A type this code does not know: newer servers may send more. */
  | { kind: "unknown"; type: string }
  /** Not a frame, or a known type with the wrong shape. */
  | { kind: "malformed"; type: string | null; problem: string };

type FrameSchemas<F extends { type: string }> = { [K in F["type"]]: z.ZodType<Extract<F, { type: K }>> };

/**
 * Classifies one decoded JSON value against a socket's frame schemas.
 *
 * @example
 * const parsed = parseFrame(liveFrameSchemas, JSON.parse(text));
 * if (parsed.kind === "frame") handle(parsed.frame);
 */
export function parseFrame<F extends { type: string }>(schemas: FrameSchemas<F>, value: unknown): ParsedFrame<F> {
  const type = typeof value === "object" && value !== null && "type" in value && typeof value.type === "string" ? value.type : null;
  if (type === null) return { kind: "malformed", type: null, problem: "not an object with a string `type`" };
  if (!Object.hasOwn(schemas, type)) return { kind: "unknown", type };
  const schema: z.ZodType<F> = schemas[type as F["type"]];
  const result = schema.safeParse(value);
  if (result.success) return { kind: "frame", frame: result.data };
  return { kind: "malformed", type, problem: z.prettifyError(result.error) };
}
