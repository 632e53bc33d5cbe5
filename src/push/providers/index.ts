/** The push adapters by provider name. */
import type { PushProvider } from "../../protocol/types";
import type { PushAdapter } from "../types";
import { apnsAdapter } from "./apns";
import { fcmAdapter } from "./fcm";
import { webhookAdapter } from "./webhook";
import { webPushAdapter } from "./webpush";

const ADAPTERS: Record<PushProvider, PushAdapter> = {
  webhook: webhookAdapter,
  apns: apnsAdapter,
  fcm: fcmAdapter,
  webpush: webPushAdapter,
};

/**
 * The adapter that delivers to `provider`.
 *
 * @example
 * const outcome = await adapterFor(task.target.provider).send(task, env);
 */
export function adapterFor(provider: PushProvider): PushAdapter {
  return ADAPTERS[provider];
}

export { apnsAdapter, fcmAdapter, webhookAdapter, webPushAdapter };
