/**
 * Provider `webhook`: hands the wake-up to the operator's own push service.
 *
 * POSTs JSON to PUSH_WEBHOOK_URL with `x-push-signature`: the lowercase hex
 * HMAC-SHA256 of the exact body bytes, keyed by PUSH_WEBHOOK_SECRET. The body
 * carries `sent_at` (ms) inside the signed bytes so receivers can refuse replays.
 *
 * | reply            | outcome                                 |
 * | ---------------- | --------------------------------------- |
 * | 2xx              | delivered                               |
 * | 410              | dead_token                              |
 * | 429              | retry (Retry-After: seconds or a date)  |
 * | 5xx              | retry (Retry-After if given)            |
 * | other 4xx / 3xx  | rejected                                |
 * | network, timeout | retry, status 0                         |
 */
import { pushPayload, type PushPayload } from "../payload";
import type { PushAdapter, PushSettings, PushTask, SendOutcome } from "../types";
import { hex, misconfigured, parseUrl, post, retryOutcome, snippet, utf8 } from "./http";

export interface WebhookBody extends PushPayload {
  provider: "webhook";
  token: string;
  /** When this request was made (ms since epoch); inside the signature. */
  sent_at: number;
}

/** Lowercase hex HMAC-SHA256 of `body` keyed by `secret`, as sent in `x-push-signature`. */
export async function webhookSignature(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, utf8(body)));
}

export const webhookAdapter: PushAdapter = {
  provider: "webhook",
  async send(task: PushTask, settings: PushSettings): Promise<SendOutcome> {
    const url = settings.PUSH_WEBHOOK_URL;
    const secret = settings.PUSH_WEBHOOK_SECRET;
    if (!url || !secret) {
      const missing = [!url && "PUSH_WEBHOOK_URL", !secret && "PUSH_WEBHOOK_SECRET"].filter(Boolean).join(", ");
      return misconfigured(`webhook is not configured: missing ${missing}`);
    }
    if (!parseUrl(url)) return misconfigured("PUSH_WEBHOOK_URL is not a valid URL");

    const message: WebhookBody = { ...pushPayload(task), provider: "webhook", token: task.target.token, sent_at: Date.now() };
    const body = JSON.stringify(message);
    const sent = await post("webhook", url, {
      "content-type": "application/json",
      "x-push-signature": await webhookSignature(secret, body),
    }, body);
    if (!sent.ok) return sent.outcome;

    const { reply } = sent;
    const reason = `webhook HTTP ${reply.status}${reply.text ? `: ${snippet(reply.text)}` : ""}`;
    if (reply.status >= 200 && reply.status < 300) return { kind: "delivered", status: reply.status };
    if (reply.status === 410) return { kind: "dead_token", status: reply.status, reason };
    if (reply.status === 429 || reply.status >= 500) return retryOutcome(reply, reason);
    return { kind: "rejected", status: reply.status, reason };
  },
};
