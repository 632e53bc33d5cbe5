/**
 * Provider `fcm`: Firebase Cloud Messaging HTTP v1.
 *
 * The service account signs an RS256 assertion that the OAuth token endpoint
 * trades for an access token (RFC 7523), cached until shortly before it
 * expires. The message is a data-only wake-up (every value a string), collapsed
 * per conversation on Android and sent to iOS as a background push.
 *
 * | reply                                                     | outcome                            |
 * | --------------------------------------------------------- | ---------------------------------- |
 * | 200                                                       | delivered                          |
 * | errorCode UNREGISTERED / SENDER_ID_MISMATCH (any status)  | dead_token                         |
 * | 404 NOT_FOUND (a google.rpc error body)                   | dead_token                         |
 * | 404 without an FCM error body (wrong FCM_ENDPOINT)        | rejected                           |
 * | 400 INVALID_ARGUMENT naming `message.token`               | dead_token                         |
 * | 400 otherwise                                             | rejected                           |
 * | 401                                                       | drop the cached access token, retry|
 * | 429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED                   | retry (Retry-After if given)       |
 * | 5xx (INTERNAL, UNAVAILABLE)                               | retry (Retry-After if given)       |
 * | other 4xx (403 PERMISSION_DENIED …)                       | rejected                           |
 * | token endpoint: 5xx/429/network → retry; 4xx → rejected   |                                    |
 */
import { importPKCS8, SignJWT } from "jose";
import { PUSH_TTL_SECONDS, pushPayload, pushPayloadStrings } from "../payload";
import type { PushAdapter, PushSettings, PushTask, SendOutcome } from "../types";
import { boundedId, errorMessage, isRecord, misconfigured, parseJson, parseUrl, post, retryOutcome, snippet } from "./http";

export const FCM_DEFAULT_ENDPOINT = "https://fcm.googleapis.com";
export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token";
/** Refresh this long before Google's expiry, so a token never dies in flight. */
const ACCESS_TOKEN_MARGIN_MS = 5 * 60_000;

export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  token_uri: string;
}

/** Reads FCM_SERVICE_ACCOUNT; a string explains what is wrong. */
export function parseServiceAccount(raw: string | undefined): ServiceAccount | string {
  if (!raw) return "FCM is not configured: missing FCM_SERVICE_ACCOUNT";
  const parsed = parseJson(raw);
  if (!isRecord(parsed)) return "FCM_SERVICE_ACCOUNT is not a JSON object";
  const missing = ["project_id", "client_email", "private_key"].filter((k) => typeof parsed[k] !== "string" || parsed[k] === "");
  if (missing.length > 0) return `FCM_SERVICE_ACCOUNT lacks ${missing.join(", ")}`;
  const tokenUri = typeof parsed.token_uri === "string" && parsed.token_uri !== "" ? parsed.token_uri : GOOGLE_TOKEN_URI;
  if (!parseUrl(tokenUri)) return "FCM_SERVICE_ACCOUNT token_uri is not a valid URL";
  return {
    project_id: String(parsed.project_id),
    client_email: String(parsed.client_email),
    private_key: String(parsed.private_key),
    token_uri: tokenUri,
  };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

type TokenResult = { ok: true; token: string } | { ok: false; outcome: SendOutcome };

/** Access tokens per (service account, token endpoint), shared by every send in this isolate. */
const tokenCache = new Map<string, CachedToken>();
/** Token requests under way, so concurrent sends with a cold cache ask once. */
const fetching = new Map<string, Promise<TokenResult>>();

/** Forgets every cached access token (tests; key rotation). */
export function clearFcmTokenCache(): void {
  tokenCache.clear();
}

function cacheKeyOf(account: ServiceAccount): string {
  return `${account.client_email} ${account.token_uri}`;
}

function accessToken(account: ServiceAccount): Promise<TokenResult> {
  const cacheKey = cacheKeyOf(account);
  const hit = tokenCache.get(cacheKey);
  if (hit && hit.expiresAt > Date.now()) return Promise.resolve({ ok: true, token: hit.token });
  let pending = fetching.get(cacheKey);
  if (!pending) {
    pending = requestAccessToken(account)
      .then((result) => {
        if (result.ok) tokenCache.set(cacheKey, { token: result.token.access_token, expiresAt: result.token.expiresAt });
        return result.ok ? ({ ok: true, token: result.token.access_token } as const) : result;
      })
      .finally(() => fetching.delete(cacheKey));
    fetching.set(cacheKey, pending);
  }
  return pending;
}

async function requestAccessToken(
  account: ServiceAccount,
): Promise<{ ok: true; token: { access_token: string; expiresAt: number } } | { ok: false; outcome: SendOutcome }> {
  let assertion: string;
  try {
    const key = await importPKCS8(account.private_key, "RS256");
    const iat = Math.floor(Date.now() / 1000);
    assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(account.client_email)
      .setAudience(account.token_uri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(key);
  } catch (err) {
    return { ok: false, outcome: misconfigured(`FCM_SERVICE_ACCOUNT private_key is not a usable PKCS#8 RSA key: ${errorMessage(err)}`) };
  }

  const form = new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion });
  const sent = await post("fcm oauth", account.token_uri, { "content-type": "application/x-www-form-urlencoded" }, form.toString());
  if (!sent.ok) return sent;
  const { reply } = sent;
  const reason = `fcm oauth HTTP ${reply.status}: ${snippet(reply.text) || "no body"}`;
  if (reply.status === 429 || reply.status >= 500) return { ok: false, outcome: retryOutcome(reply, reason) };
  const body = parseJson(reply.text);
  if (reply.status !== 200 || !isRecord(body) || typeof body.access_token !== "string") {
    // invalid_grant, invalid_client …: the key or account is wrong; retrying will not help.
    return { ok: false, outcome: { kind: "rejected", status: reply.status, reason } };
  }
  const expiresIn = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 3600;
  const lifetimeMs = Math.max(expiresIn * 1000 - ACCESS_TOKEN_MARGIN_MS, (expiresIn * 1000) / 2);
  return { ok: true, token: { access_token: body.access_token, expiresAt: Date.now() + lifetimeMs } };
}

/** Drops the cached access token, but only if it is still the one FCM refused. */
function dropAccessToken(account: ServiceAccount, refused: string): void {
  const cacheKey = cacheKeyOf(account);
  if (tokenCache.get(cacheKey)?.token === refused) tokenCache.delete(cacheKey);
}

export interface FcmMessage {
  message: {
    token: string;
    data: Record<string, string>;
    android: { collapse_key: string; priority: "high"; ttl: string };
    apns: { headers: Record<string, string>; payload: { aps: { "content-available": 1 } } };
  };
}

export async function fcmMessage(task: PushTask): Promise<FcmMessage> {
  const payload = pushPayload(task);
  return {
    message: {
      token: task.target.token,
      data: pushPayloadStrings(payload),
      android: { collapse_key: payload.conversation_id, priority: "high", ttl: `${PUSH_TTL_SECONDS}s` },
      apns: {
        // A content-available push must be push-type background at priority 5, or APNs refuses or throttles it.
        headers: {
          "apns-collapse-id": await boundedId(payload.conversation_id, 64),
          "apns-push-type": "background",
          "apns-priority": "5",
        },
        payload: { aps: { "content-available": 1 } },
      },
    },
  };
}

interface FcmError {
  status?: string;
  message?: string;
  errorCodes: string[];
  fields: string[];
}

/** Reads the google.rpc.Status error body: its status, FcmError codes and BadRequest field violations. */
function readError(text: string): FcmError {
  const out: FcmError = { errorCodes: [], fields: [] };
  const body = parseJson(text);
  const error = isRecord(body) ? body.error : undefined;
  if (!isRecord(error)) return out;
  if (typeof error.status === "string") out.status = error.status;
  if (typeof error.message === "string") out.message = error.message;
  if (Array.isArray(error.details)) {
    for (const detail of error.details) {
      if (!isRecord(detail)) continue;
      if (typeof detail.errorCode === "string") out.errorCodes.push(detail.errorCode);
      if (Array.isArray(detail.fieldViolations)) {
        for (const v of detail.fieldViolations) if (isRecord(v) && typeof v.field === "string") out.fields.push(v.field);
      }
    }
  }
  return out;
}

const DEAD_TOKEN_CODES = new Set(["UNREGISTERED", "SENDER_ID_MISMATCH"]);

export const fcmAdapter: PushAdapter = {
  provider: "fcm",
  async send(task: PushTask, settings: PushSettings): Promise<SendOutcome> {
    const account = parseServiceAccount(settings.FCM_SERVICE_ACCOUNT);
    if (typeof account === "string") return misconfigured(account);
    const endpoint = (settings.FCM_ENDPOINT || FCM_DEFAULT_ENDPOINT).replace(/\/+$/, "");
    if (!parseUrl(endpoint)) return misconfigured("FCM_ENDPOINT is not a valid URL");

    const token = await accessToken(account);
    if (!token.ok) return token.outcome;

    const url = `${endpoint}/v1/projects/${encodeURIComponent(account.project_id)}/messages:send`;
    const sent = await post("fcm", url, {
      authorization: `Bearer ${token.token}`,
      "content-type": "application/json",
    }, JSON.stringify(await fcmMessage(task)));
    if (!sent.ok) return sent.outcome;

    const { reply } = sent;
    if (reply.status === 200) return { kind: "delivered", status: 200 };
    const error = readError(reply.text);
    const code = [error.status, ...error.errorCodes].filter(Boolean).join("/");
    const reason = `fcm HTTP ${reply.status}${code ? ` ${code}` : ""}: ${error.message ?? (snippet(reply.text) || "no body")}`;

    if (error.errorCodes.some((c) => DEAD_TOKEN_CODES.has(c))) return { kind: "dead_token", status: reply.status, reason };
    if (reply.status === 404) {
      // FCM answers an unknown token with a google.rpc NOT_FOUND body. A bare 404 means FCM_ENDPOINT
      // points somewhere else; condemning every token on it would be a disaster, so it is rejected.
      return error.status === "NOT_FOUND"
        ? { kind: "dead_token", status: 404, reason }
        : { kind: "rejected", status: 404, reason: `${reason} (not an FCM error; check FCM_ENDPOINT)` };
    }
    if (reply.status === 400) {
      // INVALID_ARGUMENT covers bad payloads and bad tokens alike; only a violation on the token condemns it.
      const tokenInvalid = error.fields.includes("message.token");
      return { kind: tokenInvalid ? "dead_token" : "rejected", status: 400, reason };
    }
    if (reply.status === 401) {
      dropAccessToken(account, token.token);
      return retryOutcome(reply, reason);
    }
    if (reply.status === 429 || reply.status >= 500) return retryOutcome(reply, reason);
    return { kind: "rejected", status: reply.status, reason };
  },
};
