/**
 * Wire JSON built from stored rows without parsing bodies: a message body is
 * stored as the JSON text it was validated as, so pages, catch-up frames and
 * live frames are string concatenation (no JSON.parse / re-stringify per read).
 */
import { TUNING } from "../config/tuning";
import type { Json } from "../protocol/internal";
import type { Gap, Message, MessagePage, SyncTimeline } from "../protocol/types";
import type { EntryRow } from "./store";

const q = JSON.stringify;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** One entry as the contract's Message object. */
export function messageJson(row: EntryRow): Json<Message> {
  return (
    `{"seq":${row.seq},"msg_id":${q(row.msg_id)},"type":${q(row.type)},` +
    `"sender":{"user":${q(row.sender_user)},"device":${q(row.sender_device)}},` +
    `"client_msg_id":${row.client_msg_id === null ? "null" : q(row.client_msg_id)},"body":${row.body},` +
    `"created_at":"${iso(row.created_at)}"${row.attachments !== null ? `,"attachments":${row.attachments}` : ""}}`
  );
}

export function messageFrameJson(message: Json<Message>): string {
  return `{"type":"message","message":${message}}`;
}

export function pageJson(
  head: Omit<MessagePage, "messages" | "gaps" | "has_more" | "next_after" | "next_before">,
  messages: readonly Json<Message>[],
  gaps: readonly Gap[],
  hasMore: boolean,
  next: { next_after: number } | { next_before: number },
): Json<MessagePage> {
  const tail = "next_after" in next ? `"next_after":${next.next_after}` : `"next_before":${next.next_before}`;
  return (
    `{"conversation_id":${q(head.conversation_id)},"epoch":${q(head.epoch)},"head_seq":${head.head_seq},"floor_seq":${head.floor_seq},` +
    `"messages":[${messages.join(",")}],"gaps":${q(gaps)},"has_more":${hasMore},${tail}}`
  );
}

export function timelineJson(messages: readonly Json<Message>[], gaps: readonly Gap[], limited: boolean, nextBefore: number | null): Json<SyncTimeline> {
  return `{"messages":[${messages.join(",")}],"gaps":${q(gaps)},"limited":${limited},"next_before":${nextBefore === null ? "null" : nextBefore}}`;
}

/**
 * Splits one catch-up page into `messages` frames of at most maxFrameBytes.
 * Gaps ride on the first frame; `has_more` is true on every frame but the very
 * last of the catch-up.
 */
export function catchUpFrames(messages: readonly Json<Message>[], gaps: readonly Gap[], lastPage: boolean, maxBytes: number = TUNING.maxFrameBytes): string[] {
  const frames: string[] = [];
  let batch: string[] = [];
  let bytes = 0;
  let pendingGaps: readonly Gap[] = gaps;
  const flush = (final: boolean) => {
    frames.push(`{"type":"messages","messages":[${batch.join(",")}],"gaps":${q(pendingGaps)},"has_more":${!(final && lastPage)}}`);
    batch = [];
    bytes = 0;
    pendingGaps = [];
  };
  for (const m of messages) {
    if (batch.length > 0 && bytes + m.length > maxBytes) flush(false);
    batch.push(m);
    bytes += m.length;
  }
  if (batch.length > 0 || pendingGaps.length > 0) flush(true);
  return frames;
}
