/**
 * Provider `apns`: Apple Push Notification service, token-based auth.
 *
 * Signs an ES256 provider JWT ({alg, kid: APNS_KEY_ID} / {iss: APNS_TEAM_ID,
 * iat}) with the .p8 key and POSTs an alert to `/3/device/<token>`. The alert is
 * a localisation key with counts only; `mutable-content` lets the app's
 * Notification Service Extension sync and write the real text on the device.
 *
 * | reply                                         | outcome                          |
 * | --------------------------------------------- | -------------------------------- |
 * | 200                                           | delivered                        |
 * | 410 (Unregistered, ExpiredToken)              | dead_token                       |
 * | 400 BadDeviceToken / DeviceTokenNotForTopic   | dead_token                       |
 * | 403 InvalidProviderToken/ExpiredProviderToken | drop the cached JWT, retry       |
 * | 429 TooManyRequests                           | retry (Retry-After if given)     |
 * | 5xx                                           | retry (Retry-After if given)     |
 * | other 4xx                                     | rejected, reason from the JSON   |
 * | network, timeout                              | retry, status 0                  |
 *
 * APNs speaks HTTP/2 only; Workers' outbound fetch negotiates the protocol
 * itself. APNS_HOST points at the sandbox, a test double or an h2 relay.
 */
import { importPKCS8, SignJWT } from "jose";
import { PUSH_TTL_SECONDS, pushPayload } from "../payload";
import type { PushAdapter, PushSettings, PushTask, SendOutcome } from "../types";
import { boundedId, errorMessage, isRecord, misconfigured, parseJson, parseUrl, post, retryOutcome, snippet } from "./http";

export const APNS_DEFAULT_HOST = "https://api.push.apple.com";

/**
 * Localisation keys the app's Localizable.strings defines. One conversation:
 * loc-args [unread]; several: loc-args [count]. Never message text.
 */
export const APNS_LOC_KEY_ONE = "PUSH_NEW_MESSAGES";
export const APNS_LOC_KEY_MANY = "PUSH_NEW_MESSAGES_IN_CONVERSATIONS";

/**
 * Apple accepts a provider token for an hour and answers TooManyProviderTokenUpdates
 * to refreshes more often than every 20 minutes; 50 minutes sits between the two.
 */
export const APNS_JWT_LIFETIME_MS = 50 * 60_000;

interface CachedJwt {
  jwt: string;
  expiresAt: number;
}

/** Provider JWTs per (team, key id), shared by every send in this isolate. */
const jwtCache = new Map<string, CachedJwt>();
/** Signings under way, so concurrent sends with a cold cache sign once. */
const minting = new Map<string, Promise<CachedJwt>>();

/** Forgets every cached provider JWT (tests; key rotation). */
export function clearApnsTokenCache(): void {
  jwtCache.clear();
}

function providerJwt(key: string, keyId: string, teamId: string): Promise<CachedJwt> {
  const cacheKey = `${teamId}.${keyId}`;
  const hit = jwtCache.get(cacheKey);
  if (hit && hit.expiresAt > Date.now()) return Promise.resolve(hit);
  let pending = minting.get(cacheKey);
  if (!pending) {
    pending = (async () => {
      const signingKey = await importPKCS8(key, "ES256");
      const now = Date.now();
      const jwt = await new SignJWT({ iss: teamId, iat: Math.floor(now / 1000) })
        .setProtectedHeader({ alg: "ES256", kid: keyId })
        .sign(signingKey);
      const fresh = { jwt, expiresAt: now + APNS_JWT_LIFETIME_MS };
      jwtCache.set(cacheKey, fresh);
      return fresh;
    })().finally(() => minting.delete(cacheKey));
    minting.set(cacheKey, pending);
  }
  return pending;
}

/** Drops the cached JWT, but only if it is still the one APNs refused (another send may have replaced it). */
function dropJwt(keyId: string, teamId: string, refused: string): void {
  const cacheKey = `${teamId}.${keyId}`;
  if (jwtCache.get(cacheKey)?.jwt === refused) jwtCache.delete(cacheKey);
}

/** apns-collapse-id is at most 64 bytes: ids that fit are used as is, longer ones by digest. */
export function apnsCollapseId(conversationId: string): Promise<string> {
  return boundedId(conversationId, 64);
}

export interface ApnsBody {
  aps: {
    alert: { "loc-key": string; "loc-args": string[] };
    badge: number;
    "thread-id": string;
    "mutable-content": 1;
  };
  [field: string]: unknown;
}

export function apnsBody(task: PushTask): ApnsBody {
  const payload = pushPayload(task);
  const many = payload.count > 1;
  return {
    aps: {
      alert: {
        "loc-key": many ? APNS_LOC_KEY_MANY : APNS_LOC_KEY_ONE,
        "loc-args": [String(many ? payload.count : payload.unread)],
      },
      badge: payload.unread,
      "thread-id": payload.conversation_id,
      "mutable-content": 1,
    },
    ...payload,
  };
}

const DEAD_TOKEN_REASONS = new Set(["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"]);
const STALE_JWT_REASONS = new Set(["InvalidProviderToken", "ExpiredProviderToken"]);

export const apnsAdapter: PushAdapter = {
  provider: "apns",
  async send(task: PushTask, settings: PushSettings): Promise<SendOutcome> {
    const { APNS_KEY: key, APNS_KEY_ID: keyId, APNS_TEAM_ID: teamId, APNS_TOPIC: topic } = settings;
    if (!key || !keyId || !teamId || !topic) {
      const missing = Object.entries({ APNS_KEY: key, APNS_KEY_ID: keyId, APNS_TEAM_ID: teamId, APNS_TOPIC: topic })
        .filter(([, v]) => !v)
        .map(([k]) => k);
      return misconfigured(`APNs is not configured: missing ${missing.join(", ")}`);
    }
    const host = (settings.APNS_HOST || APNS_DEFAULT_HOST).replace(/\/+$/, "");
    if (!parseUrl(host)) return misconfigured("APNS_HOST is not a valid URL");

    let jwt: string;
    try {
      jwt = (await providerJwt(key, keyId, teamId)).jwt;
    } catch (err) {
      return misconfigured(`APNS_KEY is not a usable PKCS#8 P-256 key: ${errorMessage(err)}`);
    }

    const sent = await post("apns", `${host}/3/device/${encodeURIComponent(task.target.token)}`, {
      authorization: `bearer ${jwt}`,
      "apns-topic": topic,
      "apns-push-type": "alert",
      "apns-priority": "10",
      "apns-collapse-id": await apnsCollapseId(task.conversation_id),
      "apns-expiration": String(Math.floor(Date.now() / 1000) + PUSH_TTL_SECONDS),
      "content-type": "application/json",
    }, JSON.stringify(apnsBody(task)));
    if (!sent.ok) return sent.outcome;

    const { reply } = sent;
    if (reply.status === 200) return { kind: "delivered", status: 200 };
    const error = parseJson(reply.text);
    const apnsReason = isRecord(error) && typeof error.reason === "string" ? error.reason : undefined;
    const reason = `apns HTTP ${reply.status}: ${apnsReason ?? (snippet(reply.text) || "no reason")}`;

    if (reply.status === 410) return { kind: "dead_token", status: 410, reason };
    if (reply.status === 400 && apnsReason !== undefined && DEAD_TOKEN_REASONS.has(apnsReason)) {
      return { kind: "dead_token", status: 400, reason };
    }
    if (reply.status === 403 && apnsReason !== undefined && STALE_JWT_REASONS.has(apnsReason)) {
      dropJwt(keyId, teamId, jwt);
      return retryOutcome(reply, reason);
    }
    if (reply.status === 429 || reply.status >= 500) return retryOutcome(reply, reason);
    return { kind: "rejected", status: reply.status, reason };
  },
};
