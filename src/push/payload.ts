/**
 * The content-free fields every push carries, whatever the provider.
 *
 * A push is a wake-up: it names conversations and counts so the app can show a
 * badge and sync, never message text. Fields are picked one by one from the
 * task (never spread), so nothing a caller tucks into a task or a conversation
 * entry can reach a provider.
 */
import type { PushConversation, PushTask } from "./types";

/**
 * How long a provider keeps an undelivered wake-up, in seconds. After a day the
 * device syncs on launch anyway; Web Push services cap TTL at 24 h as well.
 */
export const PUSH_TTL_SECONDS = 24 * 3600;

/**
 * Conversations named one by one in a payload; `count` still says how many there
 * were. Twenty entries of ≤64-char ids stay well inside the 4 KB that APNs, FCM
 * data messages and Web Push each allow.
 */
export const MAX_LISTED_CONVERSATIONS = 20;

export interface PushPayload {
  user_id: string;
  device_id: string;
  /** The conversation that advanced most recently, and its head and unread count. */
  conversation_id: string;
  head_seq: number;
  unread: number;
  /** The collapsed conversations, most recent first, at most MAX_LISTED_CONVERSATIONS. */
  conversations: PushConversation[];
  /** How many conversations this push stands for (may exceed `conversations.length`). */
  count: number;
}

/**
 * Builds the payload of one wake-up from a queued task.
 *
 * @example
 * const payload = pushPayload(task);
 * // { user_id, device_id, conversation_id, head_seq, unread, conversations: [{ id, head_seq, unread }], count: 1 }
 */
export function pushPayload(task: PushTask): PushPayload {
  const primary: PushConversation = { id: task.conversation_id, head_seq: task.head_seq, unread: task.unread };
  const seen = new Set<string>([primary.id]);
  const rest: PushConversation[] = [];
  for (const c of task.conversations) {
    if (seen.has(c.id)) continue;
    seen.add(c.id);
    rest.push({ id: c.id, head_seq: c.head_seq, unread: c.unread });
  }
  return {
    user_id: task.user_id,
    device_id: task.device_id,
    conversation_id: primary.id,
    head_seq: primary.head_seq,
    unread: primary.unread,
    conversations: [primary, ...rest].slice(0, MAX_LISTED_CONVERSATIONS),
    count: seen.size,
  };
}

/**
 * The payload as a flat map of strings, for channels that only carry strings
 * (FCM `data`). Numbers become decimal strings; `conversations` becomes JSON.
 */
export function pushPayloadStrings(payload: PushPayload): Record<string, string> {
  return {
    user_id: payload.user_id,
    device_id: payload.device_id,
    conversation_id: payload.conversation_id,
    head_seq: String(payload.head_seq),
    unread: String(payload.unread),
    conversations: JSON.stringify(payload.conversations),
    count: String(payload.count),
  };
}
