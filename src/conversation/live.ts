/** Frame building for live conversation sockets: bounded catch-up frames. */
import type { MessagesFrame } from "../protocol/frames";
import type { Gap, Message } from "../protocol/types";


/** Catch-up frames stay under this many serialized bytes (a whole page may be larger). */
export const MAX_FRAME_BYTES = 512 * 1024;
/** Entries per catch-up page. */
export const CATCH_UP_PAGE = 100;

/**
 * Splits one page into frames of at most MAX_FRAME_BYTES. Gaps ride on the first
 * frame; `has_more` is true on every frame but the very last of the catch-up.
 */
export function catchUpFrames(messages: Message[], gaps: Gap[], lastPage: boolean): string[] {
  const frames: string[] = [];
  let batch: Message[] = [];
  let bytes = 0;
  let pendingGaps = gaps;
  const flush = (final: boolean) => {
    const frame: MessagesFrame = { type: "messages", messages: batch, gaps: pendingGaps, has_more: !(final && lastPage) };
    frames.push(JSON.stringify(frame));
    batch = [];
    bytes = 0;
    pendingGaps = [];
  };
  for (const m of messages) {
    const size = JSON.stringify(m).length;
    if (batch.length > 0 && bytes + size > MAX_FRAME_BYTES) flush(false);
    batch.push(m);
    bytes += size;
  }
  if (batch.length > 0 || pendingGaps.length > 0) flush(true);
  return frames;
}
