/**
 * One Node HTTP server that speaks enough of each push provider's real API to
 * check what the adapters send. Runs in the vitest main process (started from
 * vitest.config.ts); the Worker under test reaches it over loopback.
 *
 *   POST /webhook                              HMAC-SHA256 `x-push-signature` over the raw body
 *   POST /apns/3/device/:token                 ES256 provider JWT (kid, iss, iat) and APNs headers
 *   POST /fcm/token                            OAuth 2.0 JWT-bearer grant (RS256 assertion)
 *   POST /fcm/v1/projects/:p/messages:send     bearer from /fcm/token, HTTP v1 message shape
 *   POST /webpush/:id                          VAPID (RFC 8292) and aes128gcm (RFC 8291), decrypted
 *   GET  /jwks/:name                           an identity provider's JWKS, as programmed below (test/auth.test.ts)
 *
 * Test controls:
 *   POST /_webpush/subscribe                   a new subscription {endpoint, keys} (the fake keeps the private key)
 *   POST /_control {token, respond}            the next `times` requests for `token` get `respond`
 *                                              (token = device token, webpush id, or client_email for /fcm/token)
 *   GET  /_requests?provider=&token=           what was received, oldest first
 *   POST /_reset                               forget requests and programmed replies
 *   POST /_jwks/:name {status?, headers?, body?, hang?}
 *                                              what GET /jwks/:name answers from now on (hang: never answer)
 *   GET  /_jwks/:name                          {hits}: how many times GET /jwks/:name was asked
 *
 * A request that fails verification is answered the way the real provider
 * would (401/403/400) and recorded with its `problems`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { decodeProtectedHeader, importJWK, jwtVerify, type JWTPayload } from "jose";

export type FakeProvider = "webhook" | "apns" | "fcm" | "fcm-oauth" | "webpush";

export interface RecordedRequest {
  provider: FakeProvider;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The body as text (webpush: base64url of the encrypted bytes). */
  body: string;
  /** Device token, webpush subscription id, or the service account's email (fcm-oauth). */
  token?: string;
  /** The verified JWT (APNs provider token, FCM assertion, VAPID token). */
  jwt?: { header: Record<string, unknown>; payload: JWTPayload };
  /** Webpush: the decrypted plaintext. */
  decrypted?: string;
  /** What failed verification; empty when the request was well formed. */
  problems: string[];
  /** The status the fake answered with. */
  status: number;
}

export interface ProgrammedReply {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** How many requests get this reply (default 1). */
  times?: number;
}

export interface ControlRequest {
  token: string;
  respond: ProgrammedReply;
}

export interface FakeSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** Bindings the Worker under test needs to talk to this fake. */
export interface FakeProviderBindings {
  [name: string]: string;
  FAKE_PROVIDER_URL: string;
  PUSH_WEBHOOK_URL: string;
  PUSH_WEBHOOK_SECRET: string;
  APNS_KEY: string;
  APNS_KEY_ID: string;
  APNS_TEAM_ID: string;
  APNS_TOPIC: string;
  APNS_HOST: string;
  FCM_SERVICE_ACCOUNT: string;
  FCM_ENDPOINT: string;
  VAPID_PRIVATE_JWK: string;
  VAPID_SUBJECT: string;
}

/** What the fake identity provider answers on GET /jwks/:name (programmed with POST /_jwks/:name). */
export interface FakeJwks {
  status?: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** Accept the request and never answer (an IdP that hangs). */
  hang?: boolean;
}

export interface FakeProviders {
  url: string;
  bindings: FakeProviderBindings;
  close(): Promise<void>;
}

export const FAKE_APNS_TEAM_ID = "FAKETEAM01";
export const FAKE_APNS_TOPIC = "org.example.messenger";
export const FAKE_FCM_PROJECT = "fake-project";
export const FAKE_FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

// ---- bytes ----

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64url(bytes: Uint8Array | ArrayBuffer): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = "";
  for (const b of view) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function hexOf(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

function pem(der: ArrayBuffer): string {
  const lines = btoa(String.fromCharCode(...new Uint8Array(der))).match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

function randomId(bytes = 12): string {
  return b64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---- RFC 8291 decryption (the user agent's side) ----

interface SubscriptionSecrets {
  privateKey: CryptoKey;
  publicRaw: Uint8Array<ArrayBuffer>;
  auth: Uint8Array<ArrayBuffer>;
}

async function hkdf(salt: Uint8Array<ArrayBuffer>, ikm: Uint8Array<ArrayBuffer>, info: Uint8Array, bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8));
}

/** Decrypts one aes128gcm message with the subscription's private key and auth secret; throws on any mismatch. */
export async function decryptAes128gcm(body: Uint8Array<ArrayBuffer>, sub: SubscriptionSecrets): Promise<string> {
  if (body.byteLength < 21) throw new Error("body shorter than the aes128gcm header");
  const salt = body.slice(0, 16);
  const rs = new DataView(body.buffer, body.byteOffset).getUint32(16);
  const idlen = body[20] ?? 0;
  if (idlen !== 65) throw new Error(`keyid length ${idlen}, expected a 65-byte P-256 point`);
  const asPublicRaw = body.slice(21, 21 + idlen);
  const ciphertext = body.slice(21 + idlen);
  if (ciphertext.byteLength > rs) throw new Error(`record of ${ciphertext.byteLength} bytes exceeds rs ${rs}`);

  const asPublic = await crypto.subtle.importKey("raw", asPublicRaw, { name: "ECDH", namedCurve: "P-256" }, false, []);
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits({ name: "ECDH", public: asPublic } as unknown as SubtleCryptoDeriveKeyAlgorithm, sub.privateKey, 256));
  const ikm = await hkdf(sub.auth, ecdhSecret, concat(enc.encode("WebPush: info\0"), sub.publicRaw, asPublicRaw), 32);
  const cek = await hkdf(salt, ikm, enc.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, enc.encode("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["decrypt"]);
  const padded = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce }, key, ciphertext));
  let end = padded.byteLength - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 0x02) throw new Error("last record does not end with the 0x02 delimiter");
  return dec.decode(padded.slice(0, end));
}

// ---- the server ----

interface Keys {
  webhookSecret: string;
  apns: CryptoKeyPair;
  apnsKeyId: string;
  fcm: CryptoKeyPair;
  vapid: CryptoKeyPair;
  vapidPublicRaw: string;
}

async function generateKeys(): Promise<Keys> {
  const ecdsa = { name: "ECDSA", namedCurve: "P-256" };
  const apns = (await crypto.subtle.generateKey(ecdsa, true, ["sign", "verify"])) as CryptoKeyPair;
  const vapid = (await crypto.subtle.generateKey(ecdsa, true, ["sign", "verify"])) as CryptoKeyPair;
  const fcm = (await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const vapidPublicRaw = b64url((await crypto.subtle.exportKey("raw", vapid.publicKey)) as ArrayBuffer);
  return { webhookSecret: randomId(24), apns, apnsKeyId: "FAKEKEY001", fcm, vapid, vapidPublicRaw };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

async function readBody(req: IncomingMessage): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) chunks.push(chunk);
  return concat(...chunks);
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

function send(res: ServerResponse, reply: Reply): void {
  const headers: Record<string, string> = { ...reply.headers };
  let body: string | undefined;
  if (typeof reply.body === "string") body = reply.body;
  else if (reply.body !== undefined) {
    body = JSON.stringify(reply.body);
    headers["content-type"] ??= "application/json";
  }
  res.writeHead(reply.status, headers);
  res.end(body);
}

function fcmError(status: number, grpc: string, message: string, errorCode?: string): Reply {
  const details = errorCode ? [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] : [];
  return { status, body: { error: { code: status, message, status: grpc, details } } };
}

const SHARED = Symbol.for("offline-delivery.fake-providers");

/**
 * The fake for this process: started on first use, then reused, so a config
 * re-evaluated in watch mode does not leave a server per reload.
 */
export function sharedFakeProviders(): Promise<FakeProviders> {
  const holder = globalThis as unknown as Record<symbol, Promise<FakeProviders> | undefined>;
  holder[SHARED] ??= startFakeProviders();
  return holder[SHARED];
}

/**
 * Starts the fake on 127.0.0.1 with a random port and fresh keys. The server is
 * unref'd, so it never keeps the test process alive.
 */
export async function startFakeProviders(): Promise<FakeProviders> {
  const keys = await generateKeys();
  const requests: RecordedRequest[] = [];
  const programmed = new Map<string, ProgrammedReply[]>();
  const subscriptions = new Map<string, SubscriptionSecrets>();
  const accessTokens = new Set<string>();
  let base = "";

  /** The programmed reply for `token`, if any is left. */
  function programmedFor(token: string | undefined): Reply | undefined {
    if (token === undefined) return undefined;
    const queue = programmed.get(token);
    const next = queue?.[0];
    if (!queue || !next) return undefined;
    const left = (next.times ?? 1) - 1;
    if (left <= 0) queue.shift();
    else next.times = left;
    return next;
  }

  async function webhook(req: IncomingMessage, raw: Uint8Array<ArrayBuffer>, rec: RecordedRequest): Promise<Reply> {
    const key = await crypto.subtle.importKey("raw", enc.encode(keys.webhookSecret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const expected = hexOf(await crypto.subtle.sign("HMAC", key, raw));
    if (header(req, "x-push-signature") !== expected) rec.problems.push("x-push-signature does not match the body");
    if (!header(req, "content-type")?.startsWith("application/json")) rec.problems.push("content-type is not application/json");
    const body = parseJson(rec.body);
    if (!isRecord(body)) rec.problems.push("body is not a JSON object");
    else {
      if (typeof body.token === "string") rec.token = body.token;
      for (const field of ["user_id", "device_id", "token", "conversation_id"]) {
        if (typeof body[field] !== "string") rec.problems.push(`body.${field} is not a string`);
      }
      for (const field of ["head_seq", "unread"]) {
        if (typeof body[field] !== "number") rec.problems.push(`body.${field} is not a number`);
      }
    }
    if (rec.problems.length > 0) return { status: 401, body: { error: rec.problems.join("; ") } };
    return programmedFor(rec.token) ?? { status: 200, body: { ok: true } };
  }

  async function apns(req: IncomingMessage, token: string, rec: RecordedRequest): Promise<Reply> {
    rec.token = token;
    const auth = header(req, "authorization") ?? "";
    const m = /^bearer (\S+)$/.exec(auth);
    if (!m?.[1]) {
      rec.problems.push("authorization is not `bearer <jwt>`");
      return { status: 403, body: { reason: "MissingProviderToken" } };
    }
    try {
      const protectedHeader = decodeProtectedHeader(m[1]);
      const { payload } = await jwtVerify(m[1], keys.apns.publicKey, { algorithms: ["ES256"], issuer: FAKE_APNS_TEAM_ID });
      rec.jwt = { header: { ...protectedHeader }, payload };
      if (typeof protectedHeader.kid !== "string" || protectedHeader.kid === "") rec.problems.push("JWT header has no kid");
      const now = Math.floor(Date.now() / 1000);
      if (typeof payload.iat !== "number" || payload.iat > now + 60) rec.problems.push("JWT iat missing or in the future");
      else if (now - payload.iat > 3600) {
        return { status: 403, body: { reason: "ExpiredProviderToken" } };
      }
    } catch (err) {
      rec.problems.push(`JWT does not verify: ${err instanceof Error ? err.message : String(err)}`);
      return { status: 403, body: { reason: "InvalidProviderToken" } };
    }
    if (header(req, "apns-topic") !== FAKE_APNS_TOPIC) rec.problems.push("apns-topic is not the app's topic");
    if (header(req, "apns-push-type") !== "alert") rec.problems.push("apns-push-type is not alert");
    if (header(req, "apns-priority") !== "10") rec.problems.push("apns-priority is not 10");
    const collapse = header(req, "apns-collapse-id");
    if (!collapse || enc.encode(collapse).byteLength > 64) rec.problems.push("apns-collapse-id missing or over 64 bytes");
    if (!/^\d+$/.test(header(req, "apns-expiration") ?? "")) rec.problems.push("apns-expiration is not a timestamp");
    if (enc.encode(rec.body).byteLength > 4096) return { status: 413, body: { reason: "PayloadTooLarge" } };
    const body = parseJson(rec.body);
    if (!isRecord(body) || !isRecord(body.aps)) rec.problems.push("body has no aps dictionary");
    if (rec.problems.length > 0) return { status: 400, body: { reason: "BadRequest", problems: rec.problems } };
    return programmedFor(token) ?? { status: 200, headers: { "apns-id": crypto.randomUUID() } };
  }

  async function fcmOAuth(req: IncomingMessage, rec: RecordedRequest): Promise<Reply> {
    if (!header(req, "content-type")?.startsWith("application/x-www-form-urlencoded")) rec.problems.push("content-type is not a form");
    const form = new URLSearchParams(rec.body);
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") rec.problems.push("grant_type is not jwt-bearer");
    const assertion = form.get("assertion") ?? "";
    try {
      const protectedHeader = decodeProtectedHeader(assertion);
      const { payload } = await jwtVerify(assertion, keys.fcm.publicKey, { algorithms: ["RS256"], audience: `${base}/fcm/token` });
      rec.jwt = { header: { ...protectedHeader }, payload };
      if (typeof payload.iss === "string") rec.token = payload.iss;
      if (payload.scope !== FAKE_FCM_SCOPE) rec.problems.push("scope is not firebase.messaging");
      if (typeof payload.iat !== "number" || typeof payload.exp !== "number" || payload.exp - payload.iat > 3600) {
        rec.problems.push("iat/exp missing or further apart than an hour");
      }
    } catch (err) {
      rec.problems.push(`assertion does not verify: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (rec.problems.length > 0) return { status: 400, body: { error: "invalid_grant", error_description: rec.problems.join("; ") } };
    const programmedReply = programmedFor(rec.token);
    if (programmedReply) return programmedReply;
    const accessToken = `ya29.fake-${randomId()}`;
    accessTokens.add(accessToken);
    return { status: 200, body: { access_token: accessToken, expires_in: 3599, token_type: "Bearer" } };
  }

  async function fcmSend(req: IncomingMessage, project: string, rec: RecordedRequest): Promise<Reply> {
    const bearer = /^Bearer (\S+)$/i.exec(header(req, "authorization") ?? "")?.[1];
    if (!bearer || !accessTokens.has(bearer)) {
      rec.problems.push("bearer is not an access token from /fcm/token");
      return fcmError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    }
    if (project !== FAKE_FCM_PROJECT) rec.problems.push(`project ${project} is not ${FAKE_FCM_PROJECT}`);
    const body = parseJson(rec.body);
    const message = isRecord(body) ? body.message : undefined;
    if (!isRecord(message)) {
      rec.problems.push("body has no message");
    } else {
      if (typeof message.token === "string") rec.token = message.token;
      else rec.problems.push("message.token is not a string");
      if (!isRecord(message.data) || !Object.values(message.data).every((v) => typeof v === "string")) {
        rec.problems.push("message.data values are not all strings");
      }
      const android = message.android;
      if (!isRecord(android) || typeof android.collapse_key !== "string" || android.priority !== "high") {
        rec.problems.push("message.android lacks collapse_key or priority high");
      }
      const apnsPart = message.apns;
      const aps = isRecord(apnsPart) && isRecord(apnsPart.payload) ? apnsPart.payload.aps : undefined;
      if (!isRecord(apnsPart) || !isRecord(apnsPart.headers) || typeof apnsPart.headers["apns-collapse-id"] !== "string") {
        rec.problems.push("message.apns.headers lacks apns-collapse-id");
      }
      if (!isRecord(aps) || aps["content-available"] !== 1) rec.problems.push("message.apns.payload.aps lacks content-available 1");
    }
    if (rec.problems.length > 0) return fcmError(400, "INVALID_ARGUMENT", rec.problems.join("; "), "INVALID_ARGUMENT");
    return programmedFor(rec.token) ?? { status: 200, body: { name: `projects/${project}/messages/${randomId(8)}` } };
  }

  async function subscribe(): Promise<FakeSubscription> {
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
    const publicRaw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
    const auth = crypto.getRandomValues(new Uint8Array(16));
    const id = randomId();
    subscriptions.set(id, { privateKey: pair.privateKey, publicRaw, auth });
    return { endpoint: `${base}/webpush/${id}`, keys: { p256dh: b64url(publicRaw), auth: b64url(auth) } };
  }

  async function webpush(req: IncomingMessage, id: string, raw: Uint8Array<ArrayBuffer>, rec: RecordedRequest): Promise<Reply> {
    rec.token = id;
    rec.body = b64url(raw);
    const sub = subscriptions.get(id);
    if (!sub) return { status: 410, body: "subscription expired or unknown" };
    const m = /^vapid t=([^,\s]+),\s*k=(\S+)$/.exec(header(req, "authorization") ?? "");
    if (!m?.[1] || !m[2]) {
      rec.problems.push("authorization is not `vapid t=<jwt>, k=<key>`");
      return { status: 401, body: rec.problems.join("; ") };
    }
    if (m[2] !== keys.vapidPublicRaw) rec.problems.push("k= is not the application server key of this subscription");
    try {
      const point = fromB64url(m[2]);
      const publicKey = await importJWK({ kty: "EC", crv: "P-256", x: b64url(point.slice(1, 33)), y: b64url(point.slice(33, 65)) }, "ES256");
      const protectedHeader = decodeProtectedHeader(m[1]);
      const { payload } = await jwtVerify(m[1], publicKey, { algorithms: ["ES256"], audience: new URL(base).origin });
      rec.jwt = { header: { ...protectedHeader }, payload };
      const now = Math.floor(Date.now() / 1000);
      if (typeof payload.exp !== "number" || payload.exp > now + 24 * 3600) rec.problems.push("exp missing or more than 24 h away");
      if (typeof payload.sub !== "string" || !/^(mailto:|https:)/.test(payload.sub)) rec.problems.push("sub is not mailto: or https:");
    } catch (err) {
      rec.problems.push(`VAPID JWT does not verify: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (rec.problems.length > 0) return { status: 403, body: rec.problems.join("; ") };

    if (header(req, "content-encoding") !== "aes128gcm") rec.problems.push("content-encoding is not aes128gcm");
    if (!/^\d+$/.test(header(req, "ttl") ?? "")) rec.problems.push("TTL header missing");
    const urgency = header(req, "urgency");
    if (urgency !== undefined && !["very-low", "low", "normal", "high"].includes(urgency)) rec.problems.push("urgency is not a known value");
    const topic = header(req, "topic");
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) rec.problems.push("topic is not ≤32 url-safe base64 characters");
    if (raw.byteLength > 4096) return { status: 413, body: "payload too large" };
    try {
      rec.decrypted = await decryptAes128gcm(raw, sub);
    } catch (err) {
      rec.problems.push(`body does not decrypt: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (rec.problems.length > 0) return { status: 400, body: rec.problems.join("; ") };
    return programmedFor(id) ?? { status: 201, headers: { location: `${base}/webpush/messages/${randomId(8)}` } };
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", base);
    const method = req.method ?? "GET";
    const raw = await readBody(req);
    const text = dec.decode(raw);

    if (jwksRoute(url.pathname, method, text, res)) return;

    if (url.pathname === "/_requests" && method === "GET") {
      const provider = url.searchParams.get("provider");
      const token = url.searchParams.get("token");
      return send(res, {
        status: 200,
        body: requests.filter((r) => (!provider || r.provider === provider) && (!token || r.token === token)),
      });
    }
    if (url.pathname === "/_reset" && method === "POST") {
      requests.length = 0;
      programmed.clear();
      return send(res, { status: 204 });
    }
    if (url.pathname === "/_control" && method === "POST") {
      const body = parseJson(text);
      if (!isRecord(body) || typeof body.token !== "string" || !isRecord(body.respond) || typeof body.respond.status !== "number") {
        return send(res, { status: 400, body: { error: "expected {token, respond: {status, headers?, body?, times?}}" } });
      }
      const respond = body.respond;
      const reply: ProgrammedReply = { status: Number(respond.status), body: respond.body };
      if (isRecord(respond.headers)) reply.headers = Object.fromEntries(Object.entries(respond.headers).map(([k, v]) => [k, String(v)]));
      if (typeof respond.times === "number") reply.times = respond.times;
      programmed.set(body.token, [...(programmed.get(body.token) ?? []), reply]);
      return send(res, { status: 204 });
    }
    if (url.pathname === "/_webpush/subscribe" && method === "POST") {
      return send(res, { status: 200, body: await subscribe() });
    }

    const headers: Record<string, string> = {};
    for (const name of Object.keys(req.headers)) headers[name] = header(req, name) ?? "";
    const rec: RecordedRequest = { provider: "webhook", method, path: url.pathname, headers, body: text, problems: [], status: 0 };
    let reply: Reply;
    let m: RegExpExecArray | null;
    if (method !== "POST") {
      reply = { status: 405, body: "POST only" };
    } else if (url.pathname === "/webhook") {
      reply = await webhook(req, raw, rec);
    } else if ((m = /^\/apns\/3\/device\/([^/]+)$/.exec(url.pathname))) {
      rec.provider = "apns";
      reply = await apns(req, decodeURIComponent(m[1] ?? ""), rec);
    } else if (url.pathname === "/fcm/token") {
      rec.provider = "fcm-oauth";
      reply = await fcmOAuth(req, rec);
    } else if ((m = /^\/fcm\/v1\/projects\/([^/]+)\/messages:send$/.exec(url.pathname))) {
      rec.provider = "fcm";
      reply = await fcmSend(req, decodeURIComponent(m[1] ?? ""), rec);
    } else if ((m = /^\/webpush\/([^/]+)$/.exec(url.pathname))) {
      rec.provider = "webpush";
      reply = await webpush(req, m[1] ?? "", raw, rec);
    } else {
      return send(res, { status: 404, body: { error: `no fake at ${url.pathname}` } });
    }
    rec.status = reply.status;
    requests.push(rec);
    send(res, reply);
  }

  /** The fake identity provider: JWKS documents by name, with hit counts. */
  const jwks = new Map<string, { reply: FakeJwks; hits: number }>();
  function jwksRoute(path: string, method: string, text: string, res: ServerResponse): boolean {
    const control = /^\/_jwks\/([A-Za-z0-9_-]+)$/.exec(path)?.[1];
    if (control && method === "POST") {
      const body = parseJson(text);
      if (!isRecord(body)) {
        send(res, { status: 400, body: { error: "expected {status?, headers?, body?, hang?}" } });
        return true;
      }
      const reply: FakeJwks = { status: typeof body.status === "number" ? body.status : 200, body: body.body, hang: body.hang === true };
      if (isRecord(body.headers)) reply.headers = Object.fromEntries(Object.entries(body.headers).map(([k, v]) => [k, String(v)]));
      jwks.set(control, { reply, hits: jwks.get(control)?.hits ?? 0 });
      send(res, { status: 204 });
      return true;
    }
    if (control && method === "GET") {
      send(res, { status: 200, body: { hits: jwks.get(control)?.hits ?? 0 } });
      return true;
    }
    const name = /^\/jwks\/([A-Za-z0-9_-]+)$/.exec(path)?.[1];
    if (!name || method !== "GET") return false;
    const entry = jwks.get(name);
    if (!entry) send(res, { status: 404, body: { error: "no such JWKS" } });
    else if (entry.reply.hang) entry.hits += 1; // never answered: the client must give up on its own
    else {
      entry.hits += 1;
      send(res, { status: entry.reply.status ?? 200, ...(entry.reply.headers ? { headers: entry.reply.headers } : {}), body: entry.reply.body });
    }
    return true;
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      send(res, { status: 500, body: { error: `fake provider crashed: ${err instanceof Error ? err.message : String(err)}` } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  server.unref();
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("fake providers: no TCP address");
  base = `http://127.0.0.1:${address.port}`;

  const bindings: FakeProviderBindings = {
    FAKE_PROVIDER_URL: base,
    PUSH_WEBHOOK_URL: `${base}/webhook`,
    PUSH_WEBHOOK_SECRET: keys.webhookSecret,
    APNS_KEY: pem((await crypto.subtle.exportKey("pkcs8", keys.apns.privateKey)) as ArrayBuffer),
    APNS_KEY_ID: keys.apnsKeyId,
    APNS_TEAM_ID: FAKE_APNS_TEAM_ID,
    APNS_TOPIC: FAKE_APNS_TOPIC,
    APNS_HOST: `${base}/apns`,
    FCM_SERVICE_ACCOUNT: JSON.stringify({
      type: "service_account",
      project_id: FAKE_FCM_PROJECT,
      client_email: `push@${FAKE_FCM_PROJECT}.iam.gserviceaccount.com`,
      private_key: pem((await crypto.subtle.exportKey("pkcs8", keys.fcm.privateKey)) as ArrayBuffer),
      token_uri: `${base}/fcm/token`,
    }),
    FCM_ENDPOINT: `${base}/fcm`,
    VAPID_PRIVATE_JWK: JSON.stringify(await crypto.subtle.exportKey("jwk", keys.vapid.privateKey)),
    VAPID_SUBJECT: "mailto:push-ops@example.test",
  };

  return {
    url: base,
    bindings,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
