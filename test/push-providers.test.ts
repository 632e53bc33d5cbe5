/**
 * Push adapters against the fake providers (test/fakes/providers.ts), from
 * inside workerd: what each adapter sends, and how each reply maps to an outcome.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_LISTED_CONVERSATIONS, pushPayload } from "../src/push/payload";
import { adapterFor } from "../src/push/providers";
import type { PushProvider, PushTarget } from "../src/protocol/types";
import type { PushSettings, PushTask, SendOutcome } from "../src/push/types";
import type { FakeProvider, FakeSubscription, ProgrammedReply, RecordedRequest } from "./fakes/providers";

type FakeEnv = PushSettings & { FAKE_PROVIDER_URL: string };
const settings = env as unknown as FakeEnv;
const FAKE = settings.FAKE_PROVIDER_URL;

/** Text that must never reach a provider: planted in the task where a careless adapter might pick it up. */
const SECRET = "the-secret-message-text";

let counter = 0;
function uid(prefix: string): string {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

function makeTask(target: PushTarget, conv = uid("c")): PushTask {
  const other = uid("c");
  const task = {
    user_id: uid("u"),
    device_id: uid("d"),
    target,
    conversation_id: conv,
    head_seq: 42,
    unread: 3,
    conversations: [
      { id: conv, head_seq: 42, unread: 3, preview: SECRET },
      { id: other, head_seq: 7, unread: 1, last_message: { text: SECRET } },
    ],
    created_at: Date.now(),
    text: SECRET,
    body: { text: SECRET },
  };
  return task as unknown as PushTask;
}

async function program(token: string, respond: ProgrammedReply): Promise<void> {
  const res = await fetch(`${FAKE}/_control`, { method: "POST", body: JSON.stringify({ token, respond }) });
  expect(res.status).toBe(204);
}

async function received(provider: FakeProvider, token: string): Promise<RecordedRequest[]> {
  const res = await fetch(`${FAKE}/_requests?provider=${provider}&token=${encodeURIComponent(token)}`);
  return res.json<RecordedRequest[]>();
}

async function only(provider: FakeProvider, token: string): Promise<RecordedRequest> {
  const list = await received(provider, token);
  expect(list).toHaveLength(1);
  const rec = list[0]!;
  expect(rec.problems).toEqual([]);
  return rec;
}

function send(provider: PushProvider, task: PushTask, overrides: Partial<PushSettings> = {}): Promise<SendOutcome> {
  return adapterFor(provider).send(task, { ...settings, ...overrides });
}

async function hmacHex(secret: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(body));
  return Array.from(new Uint8Array(sig), (b) => b.toString(16).padStart(2, "0")).join("");
}

function expectPayloadOf(task: PushTask, payload: unknown): void {
  expect(payload).toMatchObject({
    user_id: task.user_id,
    device_id: task.device_id,
    conversation_id: task.conversation_id,
    head_seq: 42,
    unread: 3,
    count: 2,
    conversations: [
      { id: task.conversation_id, head_seq: 42, unread: 3 },
      { id: task.conversations[1]!.id, head_seq: 7, unread: 1 },
    ],
  });
}

describe("payload", () => {
  it("names conversations and counts, never content, and bounds the list", () => {
    const conv = uid("c");
    const task = makeTask({ provider: "webhook", token: "t" }, conv);
    const many = Array.from({ length: 30 }, (_, i) => ({ id: `c${i}`, head_seq: i, unread: 1 }));
    const payload = pushPayload({ ...task, conversations: [...many, { id: conv, head_seq: 42, unread: 3 }] });
    expect(payload.count).toBe(31);
    expect(payload.conversations).toHaveLength(MAX_LISTED_CONVERSATIONS);
    expect(payload.conversations[0]).toEqual({ id: conv, head_seq: 42, unread: 3 });
    expect(JSON.stringify(pushPayload(task))).not.toContain(SECRET);
    expect(Object.keys(pushPayload(task)).sort()).toEqual(
      ["conversation_id", "conversations", "count", "device_id", "head_seq", "unread", "user_id"],
    );
  });

  it("adapterFor returns the adapter of each provider", () => {
    for (const p of ["webhook", "apns", "fcm", "webpush"] as const) expect(adapterFor(p).provider).toBe(p);
  });
});

describe("webhook", () => {
  it("POSTs the payload signed with HMAC-SHA256 of the raw body", async () => {
    const token = uid("wh");
    const task = makeTask({ provider: "webhook", token });
    expect(await send("webhook", task)).toEqual({ kind: "delivered", status: 200 });

    const rec = await only("webhook", token);
    expect(rec.headers["x-push-signature"]).toBe(await hmacHex(settings.PUSH_WEBHOOK_SECRET!, rec.body));
    expect(rec.headers["x-push-signature"]).toMatch(/^[0-9a-f]{64}$/);
    const body: unknown = JSON.parse(rec.body);
    expectPayloadOf(task, body);
    expect(body).toMatchObject({ token, provider: "webhook" });
    expect(rec.body).not.toContain(SECRET);
  });

  it("maps replies to outcomes", async () => {
    const cases: Array<[ProgrammedReply, Partial<SendOutcome>]> = [
      [{ status: 202 }, { kind: "delivered", status: 202 }],
      [{ status: 429, headers: { "retry-after": "7" } }, { kind: "retry", status: 429, retryAfterSeconds: 7 }],
      [{ status: 410 }, { kind: "dead_token", status: 410 }],
      [{ status: 503 }, { kind: "retry", status: 503 }],
      [{ status: 500, headers: { "retry-after": "2" } }, { kind: "retry", status: 500, retryAfterSeconds: 2 }],
      [{ status: 400, body: "bad" }, { kind: "rejected", status: 400 }],
      [{ status: 404 }, { kind: "rejected", status: 404 }],
    ];
    for (const [respond, expected] of cases) {
      const token = uid("wh");
      await program(token, respond);
      const outcome = await send("webhook", makeTask({ provider: "webhook", token }));
      expect(outcome, `reply ${respond.status}`).toMatchObject(expected);
    }
  });

  it("reads Retry-After given as an HTTP-date", async () => {
    const token = uid("wh");
    await program(token, { status: 429, headers: { "retry-after": new Date(Date.now() + 90_000).toUTCString() } });
    const outcome = await send("webhook", makeTask({ provider: "webhook", token }));
    expect(outcome.kind).toBe("retry");
    const seconds = outcome.kind === "retry" ? outcome.retryAfterSeconds : undefined;
    expect(seconds).toBeGreaterThanOrEqual(85);
    expect(seconds).toBeLessThanOrEqual(91);
  });

  it("programs a reply for one request only", async () => {
    const token = uid("wh");
    await program(token, { status: 503 });
    expect((await send("webhook", makeTask({ provider: "webhook", token }))).kind).toBe("retry");
    expect((await send("webhook", makeTask({ provider: "webhook", token }))).kind).toBe("delivered");
  });

  it("rejects missing configuration and retries network errors", async () => {
    const task = makeTask({ provider: "webhook", token: uid("wh") });
    const missing = await send("webhook", task, { PUSH_WEBHOOK_SECRET: undefined });
    expect(missing).toMatchObject({ kind: "rejected", status: 0 });
    expect(missing.kind === "rejected" && missing.reason).toContain("PUSH_WEBHOOK_SECRET");
    expect(await send("webhook", task, { PUSH_WEBHOOK_URL: "not a url" })).toMatchObject({ kind: "rejected" });
    // Port 1 on loopback: nothing listens, the connection is refused. (workerd logs the refused
    // connect as an "uncaught exception" even though the adapter handles it.)
    expect(await send("webhook", task, { PUSH_WEBHOOK_URL: "http://127.0.0.1:1/webhook" })).toMatchObject({ kind: "retry", status: 0 });
  });
});

describe("apns", () => {
  /** A key id per test, so the module-level JWT cache starts cold. */
  const fresh = (): Partial<PushSettings> => ({ APNS_KEY_ID: uid("K") });

  it("sends an ES256-authenticated, content-free alert with the required headers", async () => {
    const token = uid("apns");
    const task = makeTask({ provider: "apns", token });
    const cfg = fresh();
    expect(await send("apns", task, cfg)).toEqual({ kind: "delivered", status: 200 });

    const rec = await only("apns", token);
    expect(rec.jwt?.header).toEqual({ alg: "ES256", kid: cfg.APNS_KEY_ID });
    expect(rec.jwt?.payload.iss).toBe(settings.APNS_TEAM_ID);
    expect(Math.abs(Number(rec.jwt?.payload.iat) - Date.now() / 1000)).toBeLessThan(60);
    expect(rec.headers).toMatchObject({
      "apns-topic": settings.APNS_TOPIC,
      "apns-push-type": "alert",
      "apns-priority": "10",
      "apns-collapse-id": task.conversation_id,
    });
    expect(rec.headers.authorization).toMatch(/^bearer /);
    const expiration = Number(rec.headers["apns-expiration"]);
    expect(expiration).toBeGreaterThan(Date.now() / 1000 + 3600);

    const body = JSON.parse(rec.body) as { aps: Record<string, unknown> };
    expect(body.aps).toEqual({
      alert: { "loc-key": "PUSH_NEW_MESSAGES_IN_CONVERSATIONS", "loc-args": ["2"] },
      badge: 3,
      "thread-id": task.conversation_id,
      "mutable-content": 1,
    });
    expectPayloadOf(task, body);
    expect(rec.body).not.toContain(SECRET);
  });

  it("reuses the provider JWT across sends", async () => {
    const cfg = fresh();
    const a = uid("apns");
    const b = uid("apns");
    await send("apns", makeTask({ provider: "apns", token: a }), cfg);
    await send("apns", makeTask({ provider: "apns", token: b }), cfg);
    const [ra, rb] = [await only("apns", a), await only("apns", b)];
    expect(rb.headers.authorization).toBe(ra.headers.authorization);
  });

  it("drops the cached JWT when APNs calls it expired, and retries", async () => {
    const cfg = fresh();
    const token = uid("apns");
    await send("apns", makeTask({ provider: "apns", token }), cfg);
    await program(token, { status: 403, body: { reason: "ExpiredProviderToken" } });
    expect(await send("apns", makeTask({ provider: "apns", token }), cfg)).toMatchObject({ kind: "retry", status: 403 });
    expect(await send("apns", makeTask({ provider: "apns", token }), cfg)).toMatchObject({ kind: "delivered" });
    const auths = (await received("apns", token)).map((r) => r.headers.authorization);
    expect(auths).toHaveLength(3);
    expect(auths[1]).toBe(auths[0]);
    expect(auths[2]).not.toBe(auths[1]);
  });

  it("maps replies to outcomes", async () => {
    const cases: Array<[ProgrammedReply, Partial<SendOutcome>]> = [
      [{ status: 410, body: { reason: "Unregistered", timestamp: Date.now() } }, { kind: "dead_token", status: 410 }],
      [{ status: 400, body: { reason: "BadDeviceToken" } }, { kind: "dead_token", status: 400 }],
      [{ status: 400, body: { reason: "DeviceTokenNotForTopic" } }, { kind: "dead_token", status: 400 }],
      [{ status: 400, body: { reason: "BadCollapseId" } }, { kind: "rejected", status: 400, reason: "apns HTTP 400: BadCollapseId" }],
      [{ status: 413, body: { reason: "PayloadTooLarge" } }, { kind: "rejected", status: 413 }],
      [{ status: 403, body: { reason: "BadCertificateEnvironment" } }, { kind: "rejected", status: 403 }],
      [{ status: 429, headers: { "retry-after": "30" }, body: { reason: "TooManyRequests" } }, { kind: "retry", status: 429, retryAfterSeconds: 30 }],
      [{ status: 429, body: { reason: "TooManyRequests" } }, { kind: "retry", status: 429 }],
      [{ status: 500, body: { reason: "InternalServerError" } }, { kind: "retry", status: 500 }],
      [{ status: 503, body: { reason: "ServiceUnavailable" } }, { kind: "retry", status: 503 }],
    ];
    const cfg = fresh();
    for (const [respond, expected] of cases) {
      const token = uid("apns");
      await program(token, respond);
      expect(await send("apns", makeTask({ provider: "apns", token }), cfg), `reply ${JSON.stringify(respond)}`).toMatchObject(expected);
    }
  });

  it("rejects missing or unusable credentials without calling APNs", async () => {
    const token = uid("apns");
    const task = makeTask({ provider: "apns", token });
    const missing = await send("apns", task, { APNS_KEY: undefined, APNS_TOPIC: "" });
    expect(missing).toMatchObject({ kind: "rejected", status: 0 });
    expect(missing.kind === "rejected" && missing.reason).toMatch(/APNS_KEY, APNS_TOPIC/);
    const bad = await send("apns", task, { ...fresh(), APNS_KEY: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" });
    expect(bad).toMatchObject({ kind: "rejected", status: 0 });
    expect(await received("apns", token)).toEqual([]);
  });
});

describe("fcm", () => {
  interface Account {
    project_id: string;
    client_email: string;
    private_key: string;
    token_uri: string;
  }
  /** A service account with its own email, so the module-level access-token cache starts cold. */
  function fresh(): { email: string; cfg: Partial<PushSettings> } {
    const account = JSON.parse(settings.FCM_SERVICE_ACCOUNT!) as Account;
    const email = `${uid("sa")}@fake-project.iam.gserviceaccount.com`;
    return { email, cfg: { FCM_SERVICE_ACCOUNT: JSON.stringify({ ...account, client_email: email }) } };
  }

  it("trades an RS256 assertion for an access token, then sends a data-only v1 message", async () => {
    const { email, cfg } = fresh();
    const token = uid("fcm");
    const task = makeTask({ provider: "fcm", token });
    expect(await send("fcm", task, cfg)).toEqual({ kind: "delivered", status: 200 });

    const oauth = await only("fcm-oauth", email);
    expect(oauth.jwt?.header.alg).toBe("RS256");
    const claims = oauth.jwt!.payload;
    expect(claims).toMatchObject({
      iss: email,
      scope: "https://www.googleapis.com/auth/firebase.messaging",
      aud: `${FAKE}/fcm/token`,
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600);

    const rec = await only("fcm", token);
    expect(rec.path).toBe("/fcm/v1/projects/fake-project/messages:send");
    expect(rec.headers.authorization).toMatch(/^Bearer ya29\.fake-/);
    const { message } = JSON.parse(rec.body) as { message: Record<string, unknown> };
    expect(message).toMatchObject({
      token,
      android: { collapse_key: task.conversation_id, priority: "high" },
      apns: { headers: { "apns-collapse-id": task.conversation_id }, payload: { aps: { "content-available": 1 } } },
    });
    const data = message.data as Record<string, string>;
    expect(Object.values(data).every((v) => typeof v === "string")).toBe(true);
    expectPayloadOf(task, {
      ...data,
      head_seq: Number(data.head_seq),
      unread: Number(data.unread),
      count: Number(data.count),
      conversations: JSON.parse(data.conversations!) as unknown,
    });
    expect(rec.body).not.toContain(SECRET);
  });

  it("asks for the access token once for two sends", async () => {
    const { email, cfg } = fresh();
    await send("fcm", makeTask({ provider: "fcm", token: uid("fcm") }), cfg);
    await send("fcm", makeTask({ provider: "fcm", token: uid("fcm") }), cfg);
    expect(await received("fcm-oauth", email)).toHaveLength(1);
  });

  it("asks once even when sends start together", async () => {
    const { email, cfg } = fresh();
    const outcomes = await Promise.all([1, 2, 3].map(() => send("fcm", makeTask({ provider: "fcm", token: uid("fcm") }), cfg)));
    expect(outcomes.map((o) => o.kind)).toEqual(["delivered", "delivered", "delivered"]);
    expect(await received("fcm-oauth", email)).toHaveLength(1);
  });

  it("drops the access token on 401 and retries", async () => {
    const { email, cfg } = fresh();
    const token = uid("fcm");
    await program(token, { status: 401, body: { error: { code: 401, status: "UNAUTHENTICATED", message: "expired" } } });
    expect(await send("fcm", makeTask({ provider: "fcm", token }), cfg)).toMatchObject({ kind: "retry", status: 401 });
    expect(await send("fcm", makeTask({ provider: "fcm", token }), cfg)).toMatchObject({ kind: "delivered" });
    expect(await received("fcm-oauth", email)).toHaveLength(2);
  });

  it("maps replies to outcomes", async () => {
    const fcmError = (code: number, status: string, errorCode?: string, extra: unknown[] = []): unknown => ({
      error: {
        code,
        status,
        message: "from the fake",
        details: [...(errorCode ? [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode }] : []), ...extra],
      },
    });
    const tokenViolation = { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: "message.token", description: "Invalid registration token" }] };
    const cases: Array<[ProgrammedReply, Partial<SendOutcome>]> = [
      [{ status: 404, body: fcmError(404, "NOT_FOUND", "UNREGISTERED") }, { kind: "dead_token", status: 404 }],
      [{ status: 404, body: fcmError(404, "NOT_FOUND") }, { kind: "dead_token", status: 404 }],
      // A 404 that is not FCM's (a wrong FCM_ENDPOINT) must not condemn the token.
      [{ status: 404, body: "<html>not found</html>" }, { kind: "rejected", status: 404 }],
      [{ status: 400, body: fcmError(400, "INVALID_ARGUMENT", "UNREGISTERED") }, { kind: "dead_token", status: 400 }],
      [{ status: 400, body: fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", [tokenViolation]) }, { kind: "dead_token", status: 400 }],
      [{ status: 400, body: fcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT") }, { kind: "rejected", status: 400 }],
      [{ status: 403, body: fcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH") }, { kind: "dead_token", status: 403 }],
      [{ status: 403, body: fcmError(403, "PERMISSION_DENIED") }, { kind: "rejected", status: 403 }],
      [
        { status: 429, headers: { "retry-after": "12" }, body: fcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED") },
        { kind: "retry", status: 429, retryAfterSeconds: 12 },
      ],
      [{ status: 500, body: fcmError(500, "INTERNAL", "INTERNAL") }, { kind: "retry", status: 500 }],
      [{ status: 503, headers: { "retry-after": "5" }, body: fcmError(503, "UNAVAILABLE", "UNAVAILABLE") }, { kind: "retry", status: 503, retryAfterSeconds: 5 }],
    ];
    const { cfg } = fresh();
    for (const [respond, expected] of cases) {
      const token = uid("fcm");
      await program(token, respond);
      expect(await send("fcm", makeTask({ provider: "fcm", token }), cfg), `reply ${JSON.stringify(respond)}`).toMatchObject(expected);
    }
  });

  it("retries when the token endpoint fails, rejects when it refuses the account", async () => {
    const down = fresh();
    await program(down.email, { status: 503, headers: { "retry-after": "3" } });
    expect(await send("fcm", makeTask({ provider: "fcm", token: uid("fcm") }), down.cfg)).toMatchObject({
      kind: "retry",
      status: 503,
      retryAfterSeconds: 3,
    });

    const refused = fresh();
    await program(refused.email, { status: 400, body: { error: "invalid_grant", error_description: "Invalid JWT Signature." } });
    expect(await send("fcm", makeTask({ provider: "fcm", token: uid("fcm") }), refused.cfg)).toMatchObject({ kind: "rejected", status: 400 });
  });

  it("rejects a missing or malformed service account", async () => {
    const task = makeTask({ provider: "fcm", token: uid("fcm") });
    expect(await send("fcm", task, { FCM_SERVICE_ACCOUNT: undefined })).toMatchObject({ kind: "rejected", status: 0 });
    expect(await send("fcm", task, { FCM_SERVICE_ACCOUNT: "{" })).toMatchObject({ kind: "rejected", status: 0 });
    const noKey = await send("fcm", task, { FCM_SERVICE_ACCOUNT: JSON.stringify({ project_id: "p", client_email: "e" }) });
    expect(noKey.kind === "rejected" && noKey.reason).toContain("private_key");
  });
});

describe("webpush", () => {
  async function subscribe(): Promise<FakeSubscription & { id: string }> {
    const res = await fetch(`${FAKE}/_webpush/subscribe`, { method: "POST" });
    const sub = await res.json<FakeSubscription>();
    return { ...sub, id: sub.endpoint.split("/").pop()! };
  }
  const targetOf = (sub: FakeSubscription): PushTarget => ({ provider: "webpush", token: sub.endpoint, keys: sub.keys });

  it("sends an aes128gcm body the subscription can decrypt, with VAPID and delivery headers", async () => {
    const sub = await subscribe();
    const task = makeTask(targetOf(sub));
    expect(await send("webpush", task)).toEqual({ kind: "delivered", status: 201 });

    const rec = await only("webpush", sub.id);
    expect(rec.headers).toMatchObject({ "content-encoding": "aes128gcm", ttl: "86400", urgency: "high" });
    expect(rec.headers.topic).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(rec.headers.authorization).toMatch(/^vapid t=[^,]+, k=[A-Za-z0-9_-]{87}$/);
    expect(rec.jwt?.header.alg).toBe("ES256");
    expect(rec.jwt?.payload).toMatchObject({ aud: new URL(FAKE).origin, sub: settings.VAPID_SUBJECT });
    expectPayloadOf(task, JSON.parse(rec.decrypted!));
    expect(rec.decrypted).not.toContain(SECRET);
  });

  it("collapses per conversation through the Topic header", async () => {
    const sub = await subscribe();
    const conv = uid("c");
    await send("webpush", makeTask(targetOf(sub), conv));
    await send("webpush", makeTask(targetOf(sub), conv));
    await send("webpush", makeTask(targetOf(sub)));
    const topics = (await received("webpush", sub.id)).map((r) => r.headers.topic);
    expect(topics[1]).toBe(topics[0]);
    expect(topics[2]).not.toBe(topics[0]);
  });

  it("maps replies to outcomes", async () => {
    const cases: Array<[ProgrammedReply, Partial<SendOutcome>]> = [
      [{ status: 202 }, { kind: "delivered", status: 202 }],
      [{ status: 404 }, { kind: "dead_token", status: 404 }],
      [{ status: 410 }, { kind: "dead_token", status: 410 }],
      [{ status: 429, headers: { "retry-after": "60" } }, { kind: "retry", status: 429, retryAfterSeconds: 60 }],
      [{ status: 413 }, { kind: "rejected", status: 413 }],
      [{ status: 400 }, { kind: "rejected", status: 400 }],
      [{ status: 502 }, { kind: "retry", status: 502 }],
    ];
    for (const [respond, expected] of cases) {
      const sub = await subscribe();
      await program(sub.id, respond);
      expect(await send("webpush", makeTask(targetOf(sub))), `reply ${respond.status}`).toMatchObject(expected);
    }
  });

  it("treats an unknown subscription as dead", async () => {
    const sub = await subscribe();
    const gone = { ...sub, endpoint: `${FAKE}/webpush/${uid("gone")}` };
    expect(await send("webpush", makeTask(targetOf(gone)))).toMatchObject({ kind: "dead_token", status: 410 });
  });

  it("rejects unusable subscriptions and configuration without sending", async () => {
    const sub = await subscribe();
    const cases: Array<[PushTarget, Partial<PushSettings>, RegExp]> = [
      [{ provider: "webpush", token: sub.endpoint }, {}, /keys/],
      [{ ...targetOf(sub), keys: { p256dh: "AAAA", auth: sub.keys.auth } }, {}, /p256dh/],
      [{ ...targetOf(sub), token: sub.endpoint.replace("http://127.0.0.1", "http://push.example.test") }, {}, /https/],
      [targetOf(sub), { VAPID_PRIVATE_JWK: undefined }, /VAPID_PRIVATE_JWK/],
      [targetOf(sub), { VAPID_PRIVATE_JWK: "{\"kty\":\"RSA\"}" }, /P-256/],
      [targetOf(sub), { VAPID_SUBJECT: "ops@example.test" }, /mailto/],
    ];
    for (const [target, overrides, reason] of cases) {
      const outcome = await send("webpush", makeTask(target), overrides);
      expect(outcome).toMatchObject({ kind: "rejected", status: 0 });
      expect(outcome.kind === "rejected" && outcome.reason).toMatch(reason);
    }
    expect(await received("webpush", sub.id)).toEqual([]);
  });
});
