/**
 * Device authentication. Tokens are JWTs with `sub` (user), `did` (device) and a
 * required `exp`. HS256 with AUTH_SECRET; RS256/ES256 through the operator's
 * JWKS when JWKS_URL is set. The accepted algorithms come from configuration,
 * never from the token alone, so `alg: none`, other HMAC sizes and HS/RS
 * confusion are refused. `nbf`, `iat` and `exp` get the configured clock-skew
 * leeway (identity providers' clocks drift). An identity-provider outage is a
 * 503 (retry), never a 401 (which tells a client to throw its token away).
 */
import { createMiddleware } from "hono/factory";
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions, type ProtectedHeaderParameters } from "jose";
import { settings } from "../config/settings";
import type { Env } from "../env";
import { call } from "../platform/rpc";
import { retryAfterSeconds } from "../platform/retry";
import { isId } from "../protocol/ids";
import { LIMITS } from "../protocol/limits";
import { checkTicket } from "../user/tickets";
import { ApiError } from "./errors";
import { IdpUnavailable, jwksFor, type KeySet } from "./jwks";
import { VerifiedTokens, type Identity } from "./verified-tokens";

export interface AuthVars {
  user: string;
  device: string;
}

export type AppEnv = { Bindings: Env; Variables: AuthVars };

const ASYMMETRIC: readonly string[] = ["RS256", "ES256"];
/** RFC 9068 access tokens and plain JWTs; compared after RFC 7515 §4.1.9 normalisation (case, `application/`). */
const ACCEPTED_TYP = new Set(["jwt", "at+jwt"]);
/** Whole-second jitter added to the Retry-After of an IdP outage, so clients do not return in lockstep. */
const IDP_RETRY_SPREAD_SECONDS = 3;

const unauthorized = (message: string) => new ApiError("unauthorized", message);

function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1]! : null;
}

/** Over the cap before any parsing or crypto: a bearer token is ASCII, so characters are bytes. */
function checkSize(token: string): void {
  if (token.length > LIMITS.maxTokenBytes) throw unauthorized(`token is over ${LIMITS.maxTokenBytes} bytes`);
}

const verified = new VerifiedTokens();

/** The HS256 key of one secret; its id names it in the verified-token cache. */
interface HsMaterial {
  id: string;
  key: Promise<CryptoKey>;
}

/** The HS256 key per secret, imported once per isolate. */
let hsKey: (HsMaterial & { secret: string }) | null = null;
let hsGeneration = 0;

function hs256(secret: string): HsMaterial {
  if (hsKey?.secret !== secret) {
    const key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hsKey = { secret, id: `hs256#${++hsGeneration}`, key };
  }
  return hsKey;
}

function checkTyp(header: ProtectedHeaderParameters): void {
  const typ: unknown = header.typ;
  if (typ === undefined) return;
  if (typeof typ !== "string" || !ACCEPTED_TYP.has(typ.toLowerCase().replace(/^application\//, ""))) {
    throw unauthorized("token typ is not JWT or at+jwt");
  }
}

/** Human text for a refused token; jose's messages are fixed strings, never token content. */
function refusal(err: unknown): ApiError {
  if (err instanceof errors.JWTExpired) return unauthorized("token expired");
  if (err instanceof errors.JOSEError) return unauthorized(`invalid token: ${err.message || err.code}`);
  return unauthorized("invalid token");
}

/** Claims we act on, checked once at verification (cached entries are already checked). */
function identityOf(payload: JWTPayload, nowMs: number, leeway: number): Identity {
  if (typeof payload.exp !== "number") throw unauthorized("token has no exp claim");
  if (typeof payload.iat === "number" && payload.iat > nowMs / 1000 + leeway) throw unauthorized("token iat is in the future");
  const device: unknown = payload.did;
  if (!isId(payload.sub) || !isId(device)) throw unauthorized("token sub/did are not valid ids");
  return { user: payload.sub, device, exp: payload.exp };
}

type VerifyKey = CryptoKey | JWTVerifyGetKey;

async function verifyWith(token: string, key: VerifyKey, algorithms: string[], leeway: number): Promise<Identity> {
  const now = new Date();
  const options: JWTVerifyOptions = { algorithms, clockTolerance: leeway, requiredClaims: ["exp"], currentDate: now };
  let payload: JWTPayload;
  try {
    payload = (await jwtVerify(token, key, options)).payload;
  } catch (err) {
    // Several JWKS keys match a token without `kid`: try each (jose leaves that to the caller).
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    payload = await firstVerifying(token, err, options);
  }
  return identityOf(payload, now.getTime(), leeway);
}

async function firstVerifying(token: string, candidates: errors.JWKSMultipleMatchingKeys, options: JWTVerifyOptions): Promise<JWTPayload> {
  for await (const key of candidates) {
    try {
      return (await jwtVerify(token, key, options)).payload;
    } catch (err) {
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) throw err;
    }
  }
  throw new errors.JWSSignatureVerificationFailed();
}

async function verifyHs256(token: string, material: HsMaterial, leeway: number): Promise<Identity> {
  const identity = await verifyWith(token, await material.key, ["HS256"], leeway).catch((err: unknown) => {
    throw err instanceof ApiError ? err : refusal(err);
  });
  verified.set(token, material.id, identity);
  return identity;
}

function outage(err: IdpUnavailable): ApiError {
  return new ApiError("overloaded", err.message, { retryAfter: retryAfterSeconds(err.retryAfterMs, IDP_RETRY_SPREAD_SECONDS) });
}

async function verifyJwks(token: string, url: string, leeway: number): Promise<Identity> {
  const jwks = jwksFor(url);
  let keys: KeySet;
  try {
    keys = await jwks.current();
  } catch (err) {
    throw err instanceof IdpUnavailable ? outage(err) : err;
  }
  const hit = verified.get(token, keys.id, Date.now(), leeway);
  if (hit) return hit;
  let identity: Identity;
  try {
    identity = await verifyWith(token, keys.resolve, [...ASYMMETRIC], leeway);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    if (!(err instanceof errors.JWKSNoMatchingKey)) throw refusal(err);
    // A key we do not hold: perhaps the IdP rotated. Refresh (rate-limited) and try once more.
    let fresh: KeySet | null;
    try {
      fresh = await jwks.refreshForUnknownKey(keys);
    } catch (outageErr) {
      throw outageErr instanceof IdpUnavailable ? outage(outageErr) : outageErr;
    }
    if (fresh === null) throw unauthorized("token names a key the identity provider does not publish");
    keys = fresh;
    identity = await verifyWith(token, keys.resolve, [...ASYMMETRIC], leeway).catch((again: unknown) => {
      if (again instanceof ApiError) throw again;
      throw again instanceof errors.JWKSNoMatchingKey ? unauthorized("token names a key the identity provider does not publish") : refusal(again);
    });
  }
  verified.set(token, keys.id, identity);
  return identity;
}

/**
 * The identity a device token proves. Throws ApiError: 401 for a bad token,
 * 503 (with Retry-After) when the identity provider's keys are unavailable.
 */
export async function verifyToken(token: string, env: Env): Promise<Identity> {
  checkSize(token);
  const { auth } = settings(env);
  // A token this isolate verified with the current secret (its typ and alg checked then) is answered before any decoding.
  const hs = env.AUTH_SECRET ? hs256(env.AUTH_SECRET) : null;
  const hit = hs && verified.get(token, hs.id, Date.now(), auth.clockSkewSeconds);
  if (hit) return hit;
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw unauthorized("malformed token");
  }
  checkTyp(header);
  const alg: unknown = header.alg;
  if (alg === "HS256" && hs) return verifyHs256(token, hs, auth.clockSkewSeconds);
  if (typeof alg === "string" && ASYMMETRIC.includes(alg) && auth.jwksUrl) return verifyJwks(token, auth.jwksUrl, auth.clockSkewSeconds);
  throw unauthorized(`token algorithm ${typeof alg === "string" && /^[A-Za-z0-9]{1,16}$/.test(alg) ? alg : "(invalid)"} is not accepted`);
}

/**
 * Authenticates a device: the Authorization header, or where `allowQuery`
 * says so (socket upgrades: browsers cannot set headers on a WebSocket) a
 * one-time `?ticket=` or `?access_token=`.
 * @example app.use("/v1/*", deviceAuth({ allowQuery: (req, path) => isSocketPath(path) && isUpgrade(req) }))
 */
export function deviceAuth(options: { allowQuery: (req: Request, path: string) => boolean }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const raw = c.req.header("authorization");
    // "Bearer " plus the largest token: refuse longer headers before looking inside them.
    if (raw !== undefined && raw.length > LIMITS.maxTokenBytes + 16) throw unauthorized(`token is over ${LIMITS.maxTokenBytes} bytes`);
    const header = bearer(raw);
    const query = header === null && options.allowQuery(c.req.raw, c.req.path);
    const ticket = query ? c.req.query("ticket") : undefined;
    if (ticket !== undefined) {
      const claim = await checkTicket(ticket, c.env.AUTH_SECRET, Date.now());
      const device = claim === null ? null : await call(c.env.USERS, claim.user, "consumeTicket", ticket);
      if (claim === null || device === null) throw unauthorized("the ticket is used, expired or not ours");
      c.set("user", claim.user);
      c.set("device", device);
      return next();
    }
    const token = header ?? (query ? (c.req.query("access_token") ?? null) : null);
    if (!token) throw unauthorized("missing bearer token");
    const identity = await verifyToken(token, c.env);
    c.set("user", identity.user);
    c.set("device", identity.device);
    await next();
  });
}
