/**
 * The operator's identity-provider keys (JWKS_URL, RS256/ES256), cached per
 * isolate.
 *
 * We fetch the set ourselves and verify through jose's `createLocalJWKSet`
 * instead of `createRemoteJWKSet`, because the remote helper cannot keep the
 * rules this service needs: it ignores `Cache-Control` (one fixed max age), a
 * failed refresh throws even while usable keys are in hand, and its errors do
 * not separate "the identity provider is down" (503, retry) from "this token
 * is bad" (401, sign in again). Here:
 *
 * - keys live for the response's `max-age` (minus `Age`), clamped to
 *   [minTtl, maxTtl], `defaultTtl` when the IdP sends none;
 * - a stale set is refreshed by the first request that needs it; concurrent
 *   requests share that one fetch, and each waits at most `timeoutMs`;
 * - a refresh that fails (network error, timeout, non-200, not a JWKS) keeps
 *   the cached keys in service (up to `maxStaleMs` past their expiry) and is
 *   not retried for `failureBackoffMs`, so an outage is not hammered by every
 *   request;
 * - a token naming a key we do not hold triggers one refresh per
 *   `unknownKeyCooldownMs` (key rotation), never one per token;
 * - with no usable keys, `current()` throws `IdpUnavailable` (the caller
 *   answers 503 with its `retryAfterMs`).
 */
import { TUNING } from "../config/tuning";
import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from "jose";

export interface JwksOptions {
  /** One fetch, headers and body, at most this long. */
  timeoutMs: number;
  minTtlMs: number;
  maxTtlMs: number;
  /** When the response carries no usable `max-age`. */
  defaultTtlMs: number;
  /** At most one refresh per this interval for tokens naming an unknown key. */
  unknownKeyCooldownMs: number;
  /** After a failed fetch, no new attempt for this long. */
  failureBackoffMs: number;
  /** Expired keys keep serving through an outage for at most this long. */
  maxStaleMs: number;
}

export const DEFAULT_JWKS_OPTIONS: Readonly<JwksOptions> = TUNING.jwks;

/** A JWKS document is a few KB; anything far larger is not one. */
const MAX_BODY_BYTES = 256 * 1024;
/** Key caches per isolate (one JWKS_URL in production). */
const MAX_CACHES = 16;

/** The identity provider's keys cannot be had right now; the request may be retried. */
export class IdpUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = "IdpUnavailable";
  }
}

/** One fetched key set. `id` changes whenever the keys do: verified-token cache entries carry it. */
export interface KeySet {
  readonly id: string;
  readonly resolve: JWTVerifyGetKey;
}

interface Held {
  set: KeySet;
  /** The keys as served (filtered), to tell a changed set from a re-served one. */
  fingerprint: string;
  expiresAt: number;
}

type FetchOutcome = { ok: true; keys: JWK[]; ttlMs: number } | { ok: false; reason: string };

/**
 * The lifetime a `Cache-Control` header grants, clamped.
 * @example ttlFromHeaders(new Headers({ "cache-control": "max-age=300" }), DEFAULT_JWKS_OPTIONS) // 300_000
 */
export function ttlFromHeaders(headers: Headers, options: JwksOptions): number {
  const cc = headers.get("cache-control") ?? "";
  let ttl = options.defaultTtlMs;
  if (/(^|[\s,])(no-store|no-cache)([\s,=]|$)/i.test(cc)) ttl = 0;
  else {
    const m = /(?:^|[\s,])max-age\s*=\s*"?(\d{1,12})"?/i.exec(cc);
    if (m) {
      const age = Number(/^\s*(\d{1,12})\s*$/.exec(headers.get("age") ?? "")?.[1] ?? 0);
      ttl = Math.max(0, Number(m[1]) - age) * 1000;
    }
  }
  return Math.min(options.maxTtlMs, Math.max(options.minTtlMs, ttl));
}

/** Public signature keys only: secret or private members from a URL are never verification keys. */
function publicKeys(body: unknown): JWK[] | null {
  if (typeof body !== "object" || body === null || !Array.isArray((body as { keys?: unknown }).keys)) return null;
  const keys = (body as { keys: unknown[] }).keys.filter(
    (k): k is JWK =>
      typeof k === "object" && k !== null && !Array.isArray(k) &&
      ((k as JWK).kty === "RSA" || (k as JWK).kty === "EC") &&
      !["d", "p", "q", "dp", "dq", "qi", "k"].some((member) => member in k),
  );
  return keys;
}

function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), Math.max(0, ms));
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

let generation = 0;

export class JwksCache {
  #held: Held | null = null;
  #inflight: { promise: Promise<void>; startedAt: number } | null = null;
  #lastAttemptAt = -Infinity;
  #lastFailure: { at: number; reason: string } | null = null;

  constructor(
    readonly url: string,
    readonly options: Readonly<JwksOptions> = DEFAULT_JWKS_OPTIONS,
  ) {}

  /**
   * The keys to verify with: the cached set while fresh, else a refreshed one,
   * else the stale set when the refresh failed. Throws `IdpUnavailable` when
   * there is no usable set.
   */
  async current(): Promise<KeySet> {
    const now = Date.now();
    if (this.#held && now < this.#held.expiresAt) return this.#held.set;
    if (this.#inBackoff(now)) return this.#usable(now);
    await this.#refresh();
    return this.#usable(Date.now());
  }

  /**
   * A token named a key `seen` does not hold. Returns a newer set to retry
   * with, or null when the key is unknown to the IdP as of a successful fetch
   * within the cooldown (the token is bad). Throws `IdpUnavailable` when the
   * IdP could not be asked (the key may be a rotation we cannot see yet).
   */
  async refreshForUnknownKey(seen: KeySet): Promise<KeySet | null> {
    const now = Date.now();
    const cooling = now - this.#lastAttemptAt < this.options.unknownKeyCooldownMs;
    // A fetch already under way (a stale refresh, another unknown key) may bring the key: join it.
    if (this.#inflight) await this.#refresh();
    else if (cooling || this.#inBackoff(now)) {
      if (this.#held && this.#held.set.id !== seen.id) return this.#held.set;
      if (this.#lastFailure) throw this.#unavailable(now);
      return null;
    } else await this.#refresh();
    if (this.#lastFailure) throw this.#unavailable(Date.now());
    return this.#held && this.#held.set.id !== seen.id ? this.#held.set : null;
  }

  #inBackoff(now: number): boolean {
    return this.#lastFailure !== null && now - this.#lastFailure.at < this.options.failureBackoffMs;
  }

  #usable(now: number): KeySet {
    if (this.#held && now < this.#held.expiresAt + this.options.maxStaleMs) return this.#held.set;
    throw this.#unavailable(now);
  }

  #unavailable(now: number): IdpUnavailable {
    const wait = this.#lastFailure ? this.#lastFailure.at + this.options.failureBackoffMs - now : this.options.failureBackoffMs;
    return new IdpUnavailable(`the identity provider's keys are unavailable (${this.#lastFailure?.reason ?? "no keys yet"})`, Math.max(0, wait));
  }

  /**
   * One fetch at a time per isolate. Waiters share it but each stops waiting
   * after `timeoutMs` (plus a margin): in Workers a promise started by one
   * request may never settle if that request is cancelled, so a fetch older
   * than its deadline is treated as lost and a new one may start.
   */
  #refresh(): Promise<void> {
    const limit = this.options.timeoutMs + 250;
    const now = Date.now();
    let inflight = this.#inflight;
    if (!inflight || now - inflight.startedAt > limit) {
      this.#lastAttemptAt = now;
      const promise = this.#fetch().then((outcome) => this.#apply(outcome));
      inflight = { promise, startedAt: now };
      this.#inflight = inflight;
      const mine = inflight;
      void promise.finally(() => {
        if (this.#inflight === mine) this.#inflight = null;
      });
    }
    return withDeadline(inflight.promise, inflight.startedAt + limit - now, () => {
      // The shared fetch never settled within its deadline: count it as failed.
      this.#apply({ ok: false, reason: "timed out" });
    });
  }

  #apply(outcome: FetchOutcome): void {
    const now = Date.now();
    if (!outcome.ok) {
      this.#lastFailure = { at: now, reason: outcome.reason };
      return;
    }
    this.#lastFailure = null;
    const fingerprint = JSON.stringify(outcome.keys);
    const set =
      this.#held && this.#held.fingerprint === fingerprint
        ? this.#held.set
        : { id: `${this.url}#${++generation}`, resolve: createLocalJWKSet({ keys: outcome.keys }) };
    this.#held = { set, fingerprint, expiresAt: now + outcome.ttlMs };
  }

  async #fetch(): Promise<FetchOutcome> {
    try {
      const res = await fetch(this.url, { headers: { accept: "application/jwk-set+json, application/json" }, signal: AbortSignal.timeout(this.options.timeoutMs) });
      if (res.status !== 200) {
        await res.body?.cancel();
        return { ok: false, reason: `HTTP ${res.status}` };
      }
      const declared = Number(res.headers.get("content-length") ?? 0);
      if (declared > MAX_BODY_BYTES) {
        await res.body?.cancel();
        return { ok: false, reason: "response too large" };
      }
      const text = await res.text();
      if (text.length > MAX_BODY_BYTES) return { ok: false, reason: "response too large" };
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return { ok: false, reason: "not JSON" };
      }
      const keys = publicKeys(body);
      if (keys === null) return { ok: false, reason: "not a JWK set" };
      return { ok: true, keys, ttlMs: ttlFromHeaders(res.headers, this.options) };
    } catch (err) {
      const name = err instanceof Error ? err.name : "";
      return { ok: false, reason: name === "TimeoutError" || name === "AbortError" ? "timed out" : "unreachable" };
    }
  }
}

const caches = new Map<string, JwksCache>();

/**
 * The isolate's key cache for `url`. `options` are used when the cache is
 * created (the first call for a URL); later calls get the same cache.
 * @example const keys = await jwksFor(settings(env).auth.jwksUrl).current();
 */
export function jwksFor(url: string, options: Partial<JwksOptions> = {}): JwksCache {
  let cache = caches.get(url);
  if (!cache) {
    if (caches.size >= MAX_CACHES) caches.delete(caches.keys().next().value!);
    cache = new JwksCache(url, { ...DEFAULT_JWKS_OPTIONS, ...options });
    caches.set(url, cache);
  }
  return cache;
}
