/** Push handoff types: the queue task, provider outcomes, and the adapter interface. */
import type { PushProvider, PushTarget } from "../protocol/types";

/** One conversation named in a push (no message content, ever). */
export interface PushConversation {
  id: string;
  head_seq: number;
  unread: number;
}

/**
 * A queued wake-up for one device. It names conversations and counts only;
 * the device syncs to learn what happened.
 */
export interface PushTask {
  user_id: string;
  device_id: string;
  target: PushTarget;
  /** The conversation that advanced most recently, and its head/unread. */
  conversation_id: string;
  head_seq: number;
  unread: number;
  /** Every conversation collapsed into this push (a burst across 50 is one push that says 50). */
  conversations: PushConversation[];
  created_at: number;
  /** Times the provider's gate deferred this task (rate cap, provider pause, open circuit). */
  deferred?: number;
}

export type SendOutcome =
  | { kind: "delivered"; status: number }
  /** Try again later: 429 (with the provider's Retry-After), 5xx, network errors. */
  | { kind: "retry"; status: number; reason: string; retryAfterSeconds?: number }
  /** The token is gone for good (APNs 410, FCM UNREGISTERED, Web Push 404/410): forget it. */
  | { kind: "dead_token"; status: number; reason: string }
  /** The provider refused this request for good (bad payload, bad credentials): do not retry. */
  | { kind: "rejected"; status: number; reason: string };

/** Settings the adapters read (wrangler.toml vars and secrets). */
export interface PushSettings {
  PUSH_WEBHOOK_URL?: string;
  PUSH_WEBHOOK_SECRET?: string;
  /** APNs: .p8 key (PKCS#8 PEM), its key id, the team id, the app's bundle id; host for sandbox/tests. */
  APNS_KEY?: string;
  APNS_KEY_ID?: string;
  APNS_TEAM_ID?: string;
  APNS_TOPIC?: string;
  APNS_HOST?: string;
  /** FCM HTTP v1: the service-account JSON; endpoint override for tests. */
  FCM_SERVICE_ACCOUNT?: string;
  FCM_ENDPOINT?: string;
  /** Web Push VAPID: private key as JWK JSON, and the contact (mailto: or https:). */
  VAPID_PRIVATE_JWK?: string;
  VAPID_SUBJECT?: string;
}

export interface PushAdapter {
  readonly provider: PushProvider;
  send(task: PushTask, settings: PushSettings): Promise<SendOutcome>;
}
