/**
 * Device authentication against a real identity provider: the JWKS endpoint of
 * the fake HTTP server (test/fakes/providers.ts, GET /jwks/:name, hits
 * counted), reached over loopback by the Worker under test. Each test gets its
 * own JWKS URL, so each gets its own per-isolate key cache.
 *
 * Requests go straight into the Worker's fetch handler with the bindings of
 * the test plus JWKS_URL (vitest.config.ts leaves it empty for every other
 * suite), like test/operations.test.ts does for the rate limit.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import { LIMITS } from "../src/protocol/limits";
import worker from "../src/index";
import { DEFAULT_JWKS_OPTIONS, jwksFor, ttlFromHeaders, type JwksOptions } from "../src/worker/jwks";
import { BASE, SECRET, sleep, token, uid } from "./helpers";
import type { FakeJwks } from "./fakes/providers";

const FAKE = (env as unknown as { FAKE_PROVIDER_URL: string }).FAKE_PROVIDER_URL;
const now = () => Math.floor(Date.now() / 1000);

/** The rate limit is not under test here: every request passes it. */
const unlimited = { limit: async () => ({ success: true }) };

interface Call {
  status: number;
  body: { error?: { code?: string; message?: string } } & Record<string, unknown>;
  headers: Headers;
  ms: number;
}

async function call(path: string, opts: { token?: string; jwks?: string; vars?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Call> {
  const headers = new Headers(opts.headers);
  if (opts.token !== undefined) headers.set("authorization", `Bearer ${opts.token}`);
  const bindings = { ...env, DEVICE_RATE: unlimited, ...(opts.jwks ? { JWKS_URL: opts.jwks } : {}), ...opts.vars } as unknown as Env;
  const t0 = Date.now();
  const res = await worker.fetch(new Request(BASE + path, { headers }), bindings, createExecutionContext());
  const ms = Date.now() - t0;
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "test");
    return { status: res.status, body: {}, headers: res.headers, ms };
  }
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Call["body"]) : {}, headers: res.headers, ms };
}

function expectCode(res: Call, status: number, code: string): void {
  expect({ status: res.status, code: res.body.error?.code }).toEqual({ status, code });
  expect(typeof res.body.error?.message).toBe("string");
}

// ---- the fake identity provider ----

interface Signer {
  kid: string;
  alg: "RS256" | "ES256";
  publicJwk: JWK;
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
}

async function signer(alg: "RS256" | "ES256", kid: string | undefined = uid("kid")): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), alg, use: "sig", ...(kid ? { kid } : {}) };
  return {
    kid: kid ?? "",
    alg,
    publicJwk,
    sign: (claims, header = {}) =>
      new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT", ...(kid ? { kid } : {}), ...header }).sign(privateKey),
  };
}

class Idp {
  readonly name = uid("idp");
  readonly url = `${FAKE}/jwks/${this.name}`;

  /** A fresh URL, and its key cache created with `options` (shorter timeouts and TTLs for tests). */
  constructor(options: Partial<JwksOptions> = {}) {
    jwksFor(this.url, options);
  }

  async serve(reply: FakeJwks): Promise<void> {
    const res = await fetch(`${FAKE}/_jwks/${this.name}`, { method: "POST", body: JSON.stringify(reply) });
    expect(res.status).toBe(204);
  }

  keys(signers: Signer[], headers: Record<string, string> = {}): Promise<void> {
    return this.serve({ status: 200, headers: { "content-type": "application/json", ...headers }, body: { keys: signers.map((s) => s.publicJwk) } });
  }

  async hits(): Promise<number> {
    return ((await (await fetch(`${FAKE}/_jwks/${this.name}`)).json()) as { hits: number }).hits;
  }
}

const claims = (user = uid("u"), device = "phone", extra: JWTPayload = {}): JWTPayload => ({ sub: user, did: device, iat: now(), exp: now() + 3600, ...extra });

describe("JWKS caching", () => {
  it("10 requests with one RS256 token make one JWKS fetch; 10 concurrent new tokens share one fetch", async () => {
    const idp = new Idp();
    const key = await signer("RS256");
    await idp.keys([key]);
    const jwt = await key.sign(claims());
    for (let i = 0; i < 10; i++) expect((await call("/v1/sync", { token: jwt, jwks: idp.url })).status).toBe(200);
    expect(await idp.hits()).toBe(1);

    const cold = new Idp();
    await cold.keys([key]);
    const tokens = await Promise.all(Array.from({ length: 10 }, () => key.sign(claims())));
    const results = await Promise.all(tokens.map((t) => call("/v1/sync", { token: t, jwks: cold.url })));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(await cold.hits()).toBe(1);
    console.log(`auth: 10 sequential requests → ${await idp.hits()} JWKS fetch; 10 concurrent cold requests → ${await cold.hits()} fetch`);
  });

  it("ES256 keys work the same way", async () => {
    const idp = new Idp();
    const key = await signer("ES256");
    await idp.keys([key]);
    const user = uid("u");
    const res = await call("/v1/sync", { token: await key.sign(claims(user, "laptop")), jwks: idp.url });
    expect(res.status).toBe(200);
  });

  it("Cache-Control max-age is honoured: a set past its max-age is fetched again, a fresh one is not", async () => {
    // minTtl 0 so a 1 s max-age is not clamped up to a minute (the clamp itself is tested below).
    const short = new Idp({ minTtlMs: 0 });
    const key = await signer("RS256");
    await short.keys([key], { "cache-control": "public, max-age=1" });
    const jwt = await key.sign(claims());
    expect((await call("/v1/sync", { token: jwt, jwks: short.url })).status).toBe(200);
    expect((await call("/v1/sync", { token: jwt, jwks: short.url })).status).toBe(200);
    expect(await short.hits()).toBe(1);
    await sleep(1200);
    // Even a token already in the verified-token cache waits for fresh keys.
    expect((await call("/v1/sync", { token: jwt, jwks: short.url })).status).toBe(200);
    expect(await short.hits()).toBe(2);

    const long = new Idp({ minTtlMs: 0 });
    await long.keys([key], { "cache-control": "max-age=3600" });
    expect((await call("/v1/sync", { token: jwt, jwks: long.url })).status).toBe(200);
    await sleep(1200);
    expect((await call("/v1/sync", { token: await key.sign(claims()), jwks: long.url })).status).toBe(200);
    expect(await long.hits()).toBe(1);
  });

  it("max-age is clamped to [60 s, 24 h], Age is subtracted, no max-age means 10 min", () => {
    const ttl = (headers: Record<string, string>) => ttlFromHeaders(new Headers(headers), DEFAULT_JWKS_OPTIONS);
    expect(ttl({})).toBe(600_000);
    expect(ttl({ "cache-control": "public" })).toBe(600_000);
    expect(ttl({ "cache-control": "max-age=300" })).toBe(300_000);
    expect(ttl({ "cache-control": "public, max-age=300, must-revalidate" })).toBe(300_000);
    expect(ttl({ "cache-control": "max-age=300", age: "100" })).toBe(200_000);
    expect(ttl({ "cache-control": "max-age=5" })).toBe(60_000);
    expect(ttl({ "cache-control": "max-age=0" })).toBe(60_000);
    expect(ttl({ "cache-control": "no-store" })).toBe(60_000);
    expect(ttl({ "cache-control": "no-cache, max-age=3600" })).toBe(60_000);
    expect(ttl({ "cache-control": "max-age=999999999" })).toBe(24 * 3600_000);
    expect(ttl({ "cache-control": "max-age=abc" })).toBe(600_000);
  });

  it("an unknown kid refreshes the set (key rotation), at most once per cooldown; unknown after a refresh stays 401", async () => {
    const idp = new Idp({ unknownKeyCooldownMs: 3000 });
    const a = await signer("RS256");
    const b = await signer("RS256");
    // Keys and tokens first: generating them must not eat into the cooldowns measured below.
    const stranger = await Promise.all(Array.from({ length: 20 }, () => signer("RS256")));
    const strangerTokens = await Promise.all(stranger.map((s) => s.sign(claims())));
    await idp.keys([a]);
    expect((await call("/v1/sync", { token: await a.sign(claims()), jwks: idp.url })).status).toBe(200);
    expect(await idp.hits()).toBe(1);

    // The IdP rotates in key b. Within the cooldown of the last fetch, b is not fetched for.
    await idp.keys([a, b]);
    const withB = await b.sign(claims());
    expectCode(await call("/v1/sync", { token: withB, jwks: idp.url }), 401, "unauthorized");
    expect(await idp.hits()).toBe(1);
    await sleep(3100);
    expect((await call("/v1/sync", { token: withB, jwks: idp.url })).status).toBe(200);
    expect(await idp.hits()).toBe(2);

    // A flood of unknown kids right after: all 401, no fetch (the cooldown is long enough for the flood on a loaded machine).
    const flood = await Promise.all(strangerTokens.map((t) => call("/v1/sync", { token: t, jwks: idp.url })));
    for (const r of flood) expectCode(r, 401, "unauthorized");
    expect(await idp.hits()).toBe(2);

    // After the cooldown one unknown kid refreshes once; still unknown: 401, and the known keys keep working.
    await sleep(3100);
    const unknown = await Promise.all(strangerTokens.slice(0, 5).map((t) => call("/v1/sync", { token: t, jwks: idp.url })));
    for (const r of unknown) expectCode(r, 401, "unauthorized");
    expect(unknown[0]!.body.error?.message).toMatch(/key/);
    expect(await idp.hits()).toBe(3);
    expect((await call("/v1/sync", { token: await a.sign(claims()), jwks: idp.url })).status).toBe(200);
  });

  it("several keys match a token without kid: each is tried", async () => {
    const idp = new Idp();
    const first = await signer("RS256", "");
    const second = await signer("RS256", "");
    await idp.keys([first, second]);
    expect((await call("/v1/sync", { token: await second.sign(claims()), jwks: idp.url })).status).toBe(200);
    expect((await call("/v1/sync", { token: await first.sign(claims()), jwks: idp.url })).status).toBe(200);
    const other = await signer("RS256", "");
    expectCode(await call("/v1/sync", { token: await other.sign(claims()), jwks: idp.url }), 401, "unauthorized");
  });

  it("the verified-token cache is keyed by key material: a key removed from the set, or another AUTH_SECRET, ends a cached token", async () => {
    const idp = new Idp({ minTtlMs: 0 });
    const a = await signer("RS256");
    const b = await signer("RS256");
    await idp.keys([a, b], { "cache-control": "max-age=1" });
    const jwt = await a.sign(claims());
    expect((await call("/v1/sync", { token: jwt, jwks: idp.url })).status).toBe(200);
    await idp.keys([b], { "cache-control": "max-age=1" });
    await sleep(1200);
    expectCode(await call("/v1/sync", { token: jwt, jwks: idp.url }), 401, "unauthorized");
    expect((await call("/v1/sync", { token: await b.sign(claims()), jwks: idp.url })).status).toBe(200);

    const hs = await token(uid("u"), "phone");
    expect((await call("/v1/sync", { token: hs })).status).toBe(200);
    expectCode(await call("/v1/sync", { token: hs, vars: { AUTH_SECRET: "rotated-secret" } }), 401, "unauthorized");
    expect((await call("/v1/sync", { token: hs })).status).toBe(200);
  });
});

describe("identity-provider outage: 503 with Retry-After, never 401; recovery on its own", () => {
  for (const [what, reply] of [
    ["answers 503", { status: 503, body: "down for maintenance" }],
    ["answers 200 with HTML", { status: 200, headers: { "content-type": "text/html" }, body: "<html>login</html>" }],
    ["answers 200 with JSON that is not a JWKS", { status: 200, body: { error: "nope" } }],
    ["answers 404", { status: 404, body: "not found" }],
  ] as [string, FakeJwks][]) {
    it(`the JWKS endpoint ${what}`, async () => {
      const idp = new Idp({ failureBackoffMs: 400 });
      const key = await signer("RS256");
      await idp.serve(reply);
      const jwt = await key.sign(claims());
      const res = await call("/v1/sync", { token: jwt, jwks: idp.url });
      expectCode(res, 503, "overloaded");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // Within the back-off: answered at once, without asking the IdP again.
      const again = await call("/v1/sync", { token: jwt, jwks: idp.url });
      expectCode(again, 503, "overloaded");
      expect(again.headers.get("retry-after")).not.toBeNull();
      expect(await idp.hits()).toBe(1);
      // HS256 device tokens do not depend on the IdP.
      expect((await call("/v1/sync", { token: await token(uid("u"), "phone"), jwks: idp.url })).status).toBe(200);

      await idp.keys([key]);
      await sleep(450);
      expect((await call("/v1/sync", { token: jwt, jwks: idp.url })).status).toBe(200);
      expect(await idp.hits()).toBe(2);
    });
  }

  it("a hanging JWKS endpoint: 503 after the fetch timeout, concurrent requests share the one attempt", async () => {
    const idp = new Idp({ timeoutMs: 500, failureBackoffMs: 300 });
    const key = await signer("RS256");
    await idp.serve({ hang: true });
    const tokens = await Promise.all(Array.from({ length: 10 }, () => key.sign(claims())));
    const t0 = Date.now();
    const results = await Promise.all(tokens.map((t) => call("/v1/sync", { token: t, jwks: idp.url })));
    const elapsed = Date.now() - t0;
    for (const r of results) {
      expectCode(r, 503, "overloaded");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    }
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(3000);
    expect(await idp.hits()).toBe(1);
    console.log(`auth: hanging JWKS (timeout 500 ms) → 10 × 503 in ${elapsed} ms, ${await idp.hits()} fetch`);

    await idp.keys([key]);
    await sleep(350);
    expect((await call("/v1/sync", { token: tokens[0]!, jwks: idp.url })).status).toBe(200);
  });

  it("a hanging JWKS endpoint with the default 5 s timeout: 503 in about 5 s, not 45", async () => {
    const idp = new Idp();
    const key = await signer("RS256");
    await idp.serve({ hang: true });
    const res = await call("/v1/sync", { token: await key.sign(claims()), jwks: idp.url });
    expectCode(res, 503, "overloaded");
    expect(res.ms).toBeGreaterThanOrEqual(DEFAULT_JWKS_OPTIONS.timeoutMs - 100);
    expect(res.ms).toBeLessThan(DEFAULT_JWKS_OPTIONS.timeoutMs + 2000);
    // During the back-off the next request does not wait at all.
    const next = await call("/v1/sync", { token: await key.sign(claims()), jwks: idp.url });
    expectCode(next, 503, "overloaded");
    expect(next.ms).toBeLessThan(1000);
    console.log(`auth: hanging JWKS (default timeout) → 503 in ${res.ms} ms; next request ${next.ms} ms`);
  }, 20_000);

  it("cached keys keep serving when a refresh fails; bad tokens stay 401 meanwhile", async () => {
    const idp = new Idp({ minTtlMs: 0, failureBackoffMs: 200 });
    const key = await signer("RS256");
    await idp.keys([key], { "cache-control": "max-age=1" });
    expect((await call("/v1/sync", { token: await key.sign(claims()), jwks: idp.url })).status).toBe(200);
    await idp.serve({ status: 503, body: "down" });
    await sleep(1200);
    expect((await call("/v1/sync", { token: await key.sign(claims()), jwks: idp.url })).status).toBe(200);
    expect(await idp.hits()).toBe(2);
    const forger = await signer("RS256", key.kid);
    expectCode(await call("/v1/sync", { token: await forger.sign(claims()), jwks: idp.url }), 401, "unauthorized");
    expectCode(await call("/v1/sync", { token: await key.sign(claims(uid("u"), "phone", { exp: now() - 3600 })), jwks: idp.url }), 401, "unauthorized");
    // An unknown kid while the IdP cannot be asked may be a rotation we cannot see: 503, not 401.
    const rotated = await signer("RS256");
    expectCode(await call("/v1/sync", { token: await rotated.sign(claims()), jwks: idp.url }), 503, "overloaded");
  });
});

describe("really bad tokens stay 401 with a JWKS configured", () => {
  it("wrong signature, wrong alg, alg/key confusion, published secrets, expired beyond the leeway", async () => {
    const idp = new Idp();
    const rsa = await signer("RS256");
    const ec = await signer("ES256");
    const secretKid = uid("oct");
    const published = "a-symmetric-key-someone-put-in-the-jwks";
    await idp.serve({
      status: 200,
      body: { keys: [rsa.publicJwk, ec.publicJwk, { kty: "oct", kid: secretKid, alg: "HS256", k: btoa(published).replace(/=+$/, "") }] },
    });
    const good = await rsa.sign(claims());
    expect((await call("/v1/sync", { token: good, jwks: idp.url })).status).toBe(200);

    const enc = new TextEncoder();
    const hmacWith = (secret: Uint8Array, header: Record<string, unknown>) =>
      new SignJWT(claims()).setProtectedHeader({ alg: "HS256", ...header }).sign(secret);
    const [h, p, s] = good.split(".") as [string, string, string];
    const bad: [string, string][] = [
      ["signature of another token", `${h}.${(await rsa.sign(claims())).split(".")[1]}.${s}`],
      ["payload swapped", `${h}.${btoa(JSON.stringify(claims())).replace(/=+$/, "")}.${s}`],
      ["RS256 header, ES256 key's kid", await ec.sign(claims(), { alg: "ES256", kid: rsa.kid })],
      ["HS256 with the RSA public JWK as secret", await hmacWith(enc.encode(JSON.stringify(rsa.publicJwk)), { kid: rsa.kid })],
      ["HS256 with the RSA modulus as secret", await hmacWith(enc.encode(String(rsa.publicJwk.n)), { kid: rsa.kid })],
      ["HS256 with a symmetric key published in the JWKS", await hmacWith(enc.encode(published), { kid: secretKid })],
      ["expired beyond the leeway", await rsa.sign(claims(uid("u"), "phone", { exp: now() - 120 }))],
      ["nbf beyond the leeway", await rsa.sign(claims(uid("u"), "phone", { nbf: now() + 120 }))],
      ["no exp", await rsa.sign({ sub: uid("u"), did: "phone" })],
      ["sub not an id", await rsa.sign(claims("a b"))],
      ["did not an id", await rsa.sign(claims(uid("u"), "x".repeat(65)))],
      ["typ foo", await rsa.sign(claims(), { typ: "foo" })],
      ["alg none", `${btoa(JSON.stringify({ alg: "none", kid: rsa.kid })).replace(/=+$/, "")}.${p}.`],
      ["PS256 (not configured)", await (async () => {
        const { privateKey } = await generateKeyPair("PS256");
        return new SignJWT(claims()).setProtectedHeader({ alg: "PS256", kid: rsa.kid }).sign(privateKey);
      })()],
    ];
    for (const [name, jwt] of bad) {
      const res = await call("/v1/sync", { token: jwt, jwks: idp.url });
      expect({ name, status: res.status, code: res.body.error?.code }).toEqual({ name, status: 401, code: "unauthorized" });
    }
    expect(await idp.hits()).toBe(1);
  });
});

describe("token rules identity providers expect", () => {
  it("clock-skew leeway (default 60 s) for exp, nbf and iat: inside accepted, outside refused", async () => {
    const user = uid("u");
    const hs = (extra: Record<string, unknown>) => token(user, "phone", { iat: now(), ...extra });
    const cases: [string, Record<string, unknown>, number][] = [
      ["exp 30 s ago", { exp: now() - 30 }, 200],
      ["exp 90 s ago", { exp: now() - 90 }, 401],
      ["nbf in 30 s", { nbf: now() + 30 }, 200],
      ["nbf in 90 s", { nbf: now() + 90 }, 401],
      ["iat in 30 s", { iat: now() + 30 }, 200],
      ["iat in 90 s", { iat: now() + 90 }, 401],
    ];
    for (const [name, extra, status] of cases) {
      const res = await call("/v1/sync", { token: await hs(extra) });
      expect({ name, status: res.status }).toEqual({ name, status });
    }
    // The same through the JWKS path.
    const idp = new Idp();
    const key = await signer("ES256");
    await idp.keys([key]);
    expect((await call("/v1/sync", { token: await key.sign(claims(user, "phone", { exp: now() - 30, nbf: now() + 30 })), jwks: idp.url })).status).toBe(200);
    expect((await call("/v1/sync", { token: await key.sign(claims(user, "phone", { exp: now() - 90 })), jwks: idp.url })).status).toBe(401);
  });

  it("the leeway is configurable (AUTH_CLOCK_SKEW_SECONDS), and a cached token honours it", async () => {
    const expiredRecently = await token(uid("u"), "phone", { exp: now() - 30 });
    expect((await call("/v1/sync", { token: expiredRecently })).status).toBe(200);
    // Now in the verified-token cache; with no leeway it is expired all the same.
    expectCode(await call("/v1/sync", { token: expiredRecently, vars: { AUTH_CLOCK_SKEW_SECONDS: "0" } }), 401, "unauthorized");
    expect((await call("/v1/sync", { token: await token(uid("u"), "phone", { nbf: now() + 200 }), vars: { AUTH_CLOCK_SKEW_SECONDS: "300" } })).status).toBe(200);
  });

  it("typ: absent, JWT, at+jwt, application/at+jwt accepted (any case); anything else refused", async () => {
    const user = uid("u");
    const idp = new Idp();
    const key = await signer("RS256");
    await idp.keys([key]);
    const hsWith = (typ: unknown) => {
      const header = typ === undefined ? { alg: "HS256" } : { alg: "HS256", typ: typ as string };
      return new SignJWT(claims(user)).setProtectedHeader(header).sign(new TextEncoder().encode(SECRET));
    };
    for (const typ of [undefined, "JWT", "jwt", "at+jwt", "application/at+jwt", "AT+JWT", "application/JWT"]) {
      expect({ typ, status: (await call("/v1/sync", { token: await hsWith(typ) })).status }).toEqual({ typ, status: 200 });
    }
    expect((await call("/v1/sync", { token: await key.sign(claims(user), { typ: "at+jwt" }), jwks: idp.url })).status).toBe(200);
    expect((await call("/v1/sync", { token: await key.sign(claims(user), { typ: "application/at+jwt" }), jwks: idp.url })).status).toBe(200);
    for (const typ of ["foo", "application/foo", "JWS", "at+jwt+x", "", "dpop+jwt", "secevent+jwt"]) {
      const res = await call("/v1/sync", { token: await hsWith(typ) });
      expect({ typ, status: res.status, code: res.body.error?.code }).toEqual({ typ, status: 401, code: "unauthorized" });
    }
    expectCode(await call("/v1/sync", { token: await key.sign(claims(user), { typ: "foo" }), jwks: idp.url }), 401, "unauthorized");
  });

  it(`a token over ${LIMITS.maxTokenBytes} bytes is 401 in the contract's JSON before any crypto or JWKS fetch`, async () => {
    const idp = new Idp();
    const key = await signer("RS256");
    await idp.keys([key]);
    const huge = await key.sign(claims(uid("u"), "phone", { pad: "x".repeat(LIMITS.maxTokenBytes) }));
    expect(huge.length).toBeGreaterThan(LIMITS.maxTokenBytes);
    const res = await call("/v1/sync", { token: huge, jwks: idp.url });
    expectCode(res, 401, "unauthorized");
    expect(res.body.error?.message).toMatch(/over \d+ bytes/);
    expect(await idp.hits()).toBe(0);
    const hsHuge = await token(uid("u"), "phone", { pad: "x".repeat(LIMITS.maxTokenBytes) });
    expectCode(await call("/v1/sync", { token: hsHuge }), 401, "unauthorized");
    // A long header that is not even a Bearer token, and the query token of a socket upgrade.
    expectCode(await call("/v1/sync", { headers: { authorization: `Basic ${"A".repeat(LIMITS.maxTokenBytes + 100)}` } }), 401, "unauthorized");
    const q = await call(`/v1/inbox?access_token=${hsHuge}`, { headers: { upgrade: "websocket" } });
    expectCode(q, 401, "unauthorized");
    expect(q.body.error?.message).toMatch(/over \d+ bytes/);
    // Just under the cap is an ordinary token.
    const fits = await token(uid("u"), "phone", { pad: "x".repeat(Math.floor((LIMITS.maxTokenBytes * 3) / 4) - 200) });
    expect(fits.length).toBeLessThanOrEqual(LIMITS.maxTokenBytes);
    expect(fits.length).toBeGreaterThan(LIMITS.maxTokenBytes - 400);
    expect((await call("/v1/sync", { token: fits })).status).toBe(200);
  });
});

describe("query tokens only on socket upgrades", () => {
  it("?access_token= and ?ticket= are no credential on other routes, with or without Upgrade", async () => {
    const jwt = await token(uid("u"), "phone");
    expect((await call("/v1/sync", { token: jwt })).status).toBe(200);
    for (const path of ["/v1/sync", "/v1/to-device", "/v1/conversations/abc", "/v1/conversations/abc/messages", "/v1/conversations/abc/live/x", "/v1/inbox/x", "/v1//inbox"]) {
      for (const upgrade of [false, true]) {
        const headers: Record<string, string> = upgrade ? { upgrade: "websocket" } : {};
        const viaToken = await call(`${path}?access_token=${jwt}`, { headers });
        expect({ path, upgrade, status: viaToken.status }).toEqual({ path, upgrade, status: 401 });
        expectCode(viaToken, 401, "unauthorized");
        expectCode(await call(`${path}?ticket=t2.x.1.y.z`, { headers }), 401, "unauthorized");
      }
    }
    // On a socket path the query token works for an upgrade only (a plain request is 426 first).
    expect((await call(`/v1/inbox?access_token=${jwt}`, { headers: { upgrade: "websocket" } })).status).toBe(101);
    expect((await call(`/v1/inbox?access_token=${jwt}`)).status).toBe(426);
  });
});
