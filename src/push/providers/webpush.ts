/**
 * Provider `webpush`: the Web Push protocol (RFC 8030) with message encryption
 * (RFC 8291, `aes128gcm` from RFC 8188) and VAPID (RFC 8292).
 *
 * The device's target is its PushSubscription: `token` is the endpoint URL and
 * `keys` holds `p256dh` and `auth`. Encryption is done here with Web Crypto:
 * `@pushforge/builder` 2.0.5 only emits the pre-RFC `aesgcm` draft encoding
 * (Encryption/Crypto-Key headers), which RFC 8291 replaced and some push
 * services no longer accept.
 *
 * | reply            | outcome                        |
 * | ---------------- | ------------------------------ |
 * | 201, 202, 2xx    | delivered                      |
 * | 404, 410         | dead_token (subscription gone) |
 * | 429              | retry (Retry-After if given)   |
 * | 5xx              | retry (Retry-After if given)   |
 * | 400, 413, 4xx    | rejected                       |
 * | network, timeout | retry, status 0                |
 */
import { importJWK, SignJWT } from "jose";
import { PUSH_TTL_SECONDS, pushPayload } from "../payload";
import type { PushTarget } from "../../protocol/types";
import type { PushAdapter, PushSettings, PushTask, SendOutcome } from "../types";
import { base64url, errorMessage, fromBase64, isRecord, misconfigured, parseJson, parseUrl, post, retryOutcome, sha256, snippet, utf8 } from "./http";

/** One aes128gcm record holds the whole message (push services accept at most 4096 bytes). */
const RECORD_SIZE = 4096;
/** salt (16) + rs (4) + idlen (1) + keyid (65-byte P-256 point). */
const HEADER_BYTES = 16 + 4 + 1 + 65;
const TAG_BYTES = 16;
/** VAPID JWTs may live at most 24 h (RFC 8292 §2); 12 h is what most libraries use. */
const VAPID_JWT_LIFETIME_S = 12 * 3600;

export interface WebPushSubscription {
  endpoint: string;
  p256dh: Uint8Array<ArrayBuffer>;
  auth: Uint8Array<ArrayBuffer>;
}

/** Reads a PushTarget as a subscription; a string explains what is wrong with it. */
export function readSubscription(target: PushTarget): WebPushSubscription | string {
  const url = parseUrl(target.token);
  if (!url) return "webpush target token is not an endpoint URL";
  // Browsers only hand out https endpoints; plain http is allowed for loopback test doubles.
  const loopback = url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) return "webpush endpoint must be https";
  const keys = target.keys;
  if (!isRecord(keys) || typeof keys.p256dh !== "string" || typeof keys.auth !== "string") {
    return "webpush target lacks keys.p256dh and keys.auth";
  }
  const p256dh = fromBase64(keys.p256dh);
  const auth = fromBase64(keys.auth);
  if (!p256dh || p256dh.byteLength !== 65 || p256dh[0] !== 0x04) return "webpush keys.p256dh is not an uncompressed P-256 point";
  if (!auth || auth.byteLength !== 16) return "webpush keys.auth is not 16 bytes";
  return { endpoint: target.token, p256dh, auth };
}

/**
 * The Topic header: a digest of the conversation id in the 32 url-safe base64
 * characters RFC 8030 §5.4 allows, so a newer push replaces an undelivered one.
 */
export async function webPushTopic(conversationId: string): Promise<string> {
  return base64url(await sha256(conversationId)).slice(0, 32);
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

async function hkdf(salt: Uint8Array<ArrayBuffer>, ikm: Uint8Array<ArrayBuffer>, info: Uint8Array<ArrayBuffer>, bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

/**
 * Encrypts `plaintext` for one subscription (RFC 8291 §3.4): an ephemeral ECDH
 * key, the subscription's auth secret, and one aes128gcm record whose header
 * carries the salt, record size and the ephemeral public key.
 */
export async function encryptAes128gcm(sub: WebPushSubscription, plaintext: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const uaPublic = await crypto.subtle.importKey("raw", sub.p256dh, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const ephemeral = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const asPublic = new Uint8Array((await crypto.subtle.exportKey("raw", ephemeral.publicKey)) as ArrayBuffer);
  // WebCrypto names the peer key `public`; workers-types spells the field `$public`, so it is cast.
  const ecdh = { name: "ECDH", public: uaPublic } as unknown as SubtleCryptoDeriveKeyAlgorithm;
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdh, ephemeral.privateKey, 256));

  // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
  const ikm = await hkdf(sub.auth, ecdhSecret, concat(utf8("WebPush: info\0"), sub.p256dh, asPublic), 32);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const cek = await hkdf(salt, ikm, utf8("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, utf8("Content-Encoding: nonce\0"), 12);

  // The single (and so last) record ends with the 0x02 delimiter, no padding.
  const record = concat(plaintext, new Uint8Array([0x02]));
  const aes = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, aes, record));

  const header = new Uint8Array(HEADER_BYTES);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, RECORD_SIZE);
  header[20] = asPublic.byteLength;
  header.set(asPublic, 21);
  return concat(header, ciphertext);
}

interface VapidKey {
  key: CryptoKey;
  /** The uncompressed public point, base64url: the `k=` parameter. */
  publicKey: string;
}

/** VAPID keys per JWK text, so a send does not re-import the key. */
const vapidKeys = new Map<string, VapidKey>();

async function vapidKey(jwkText: string): Promise<VapidKey | string> {
  const cached = vapidKeys.get(jwkText);
  if (cached) return cached;
  const jwk = parseJson(jwkText);
  if (!isRecord(jwk) || jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string" || typeof jwk.d !== "string") {
    return "VAPID_PRIVATE_JWK is not a P-256 private JWK";
  }
  const x = fromBase64(jwk.x);
  const y = fromBase64(jwk.y);
  if (!x || !y || x.byteLength !== 32 || y.byteLength !== 32) return "VAPID_PRIVATE_JWK has malformed x/y";
  try {
    const key = await importJWK({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d }, "ES256");
    if (!(key instanceof CryptoKey)) return "VAPID_PRIVATE_JWK did not import as a key";
    const entry = { key, publicKey: base64url(concat(new Uint8Array([0x04]), x, y)) };
    vapidKeys.set(jwkText, entry);
    return entry;
  } catch (err) {
    return `VAPID_PRIVATE_JWK did not import: ${errorMessage(err)}`;
  }
}

/** `Authorization: vapid t=<jwt>, k=<public key>` for the endpoint's origin (RFC 8292 §3). */
async function vapidAuthorization(vapid: VapidKey, endpoint: string, subject: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ sub: subject })
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setAudience(new URL(endpoint).origin)
    .setExpirationTime(now + VAPID_JWT_LIFETIME_S)
    .sign(vapid.key);
  return `vapid t=${jwt}, k=${vapid.publicKey}`;
}

export const webPushAdapter: PushAdapter = {
  provider: "webpush",
  async send(task: PushTask, settings: PushSettings): Promise<SendOutcome> {
    const { VAPID_PRIVATE_JWK: jwkText, VAPID_SUBJECT: subject } = settings;
    if (!jwkText || !subject) {
      const missing = [!jwkText && "VAPID_PRIVATE_JWK", !subject && "VAPID_SUBJECT"].filter(Boolean).join(", ");
      return misconfigured(`Web Push is not configured: missing ${missing}`);
    }
    if (!/^(mailto:|https:)/.test(subject)) return misconfigured("VAPID_SUBJECT must be a mailto: or https: URI");
    const vapid = await vapidKey(jwkText);
    if (typeof vapid === "string") return misconfigured(vapid);
    const sub = readSubscription(task.target);
    if (typeof sub === "string") return { kind: "rejected", status: 0, reason: sub };

    const plaintext = utf8(JSON.stringify(pushPayload(task)));
    if (HEADER_BYTES + plaintext.byteLength + 1 + TAG_BYTES > RECORD_SIZE) {
      return { kind: "rejected", status: 0, reason: `webpush payload of ${plaintext.byteLength} bytes does not fit one record` };
    }
    const body = await encryptAes128gcm(sub, plaintext);
    const sent = await post("webpush", sub.endpoint, {
      authorization: await vapidAuthorization(vapid, sub.endpoint, subject),
      "content-encoding": "aes128gcm",
      "content-type": "application/octet-stream",
      ttl: String(PUSH_TTL_SECONDS),
      urgency: "high",
      topic: await webPushTopic(task.conversation_id),
    }, body);
    if (!sent.ok) return sent.outcome;

    const { reply } = sent;
    const reason = `webpush HTTP ${reply.status}${reply.text ? `: ${snippet(reply.text)}` : ""}`;
    if (reply.status >= 200 && reply.status < 300) return { kind: "delivered", status: reply.status };
    if (reply.status === 404 || reply.status === 410) return { kind: "dead_token", status: reply.status, reason };
    if (reply.status === 429 || reply.status >= 500) return retryOutcome(reply, reason);
    return { kind: "rejected", status: reply.status, reason };
  },
};
