/**
 * Device authentication. Tokens are JWTs with `sub` (user), `did` (device) and a
 * required `exp`. HS256 with AUTH_SECRET by default; RS256/ES256 through the
 * operator's JWKS when JWKS_URL is set. The algorithm comes from configuration,
 * never from the token alone, so `alg: none` and HS/RS confusion are refused.
 */
import { createMiddleware } from "hono/factory";
import { decode, verify, verifyWithJwks } from "hono/jwt";
import type { Env } from "../env";
import { isId } from "../protocol/ids";
import { ApiError } from "./errors";

export interface AuthVars {
  user: string;
  device: string;
}

export type AppEnv = { Bindings: Env; Variables: AuthVars };

type JWTPayload = Awaited<ReturnType<typeof verify>>;

const ASYMMETRIC = ["RS256", "ES256"] as const;

function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1]! : null;
}

/**
 * Tokens this isolate already verified, until their `exp`: a device sends many
 * requests with one token, and the signature check is the Worker's largest
 * fixed cost per request. Keyed by the whole token (signature included) and the
 * secret it was checked with, so a forged or re-signed token never hits.
 */
const verified = new Map<string, { secret: string; claims: JWTPayload }>();
const MAX_VERIFIED = 10_000;

function cachedClaims(token: string, secret: string): JWTPayload | null {
  const hit = verified.get(token);
  if (!hit || hit.secret !== secret) return null;
  if (typeof hit.claims.exp !== "number" || hit.claims.exp * 1000 <= Date.now()) {
    verified.delete(token);
    return null;
  }
  return hit.claims;
}

function remember(token: string, secret: string, claims: JWTPayload): void {
  if (verified.size >= MAX_VERIFIED) verified.delete(verified.keys().next().value!);
  verified.set(token, { secret, claims });
}

async function verifyToken(token: string, env: Env): Promise<JWTPayload> {
  const cached = env.AUTH_SECRET ? cachedClaims(token, env.AUTH_SECRET) : null;
  if (cached) return cached;
  let alg: string;
  try {
    alg = decode(token).header.alg;
  } catch {
    throw new ApiError("unauthorized", "malformed token");
  }
  try {
    if (alg === "HS256") {
      if (!env.AUTH_SECRET) throw new Error("AUTH_SECRET is not set");
      const claims = await verify(token, env.AUTH_SECRET, { alg: "HS256" });
      remember(token, env.AUTH_SECRET, claims);
      return claims;
    }
    if (env.JWKS_URL && (ASYMMETRIC as readonly string[]).includes(alg)) {
      return await verifyWithJwks(token, { jwks_uri: env.JWKS_URL, allowedAlgorithms: ASYMMETRIC });
    }
  } catch (err) {
    throw new ApiError("unauthorized", `invalid token: ${err instanceof Error ? err.name : "rejected"}`);
  }
  throw new ApiError("unauthorized", `token algorithm ${alg} is not accepted`);
}

/**
 * @example app.use("/v1/*", deviceAuth({ allowQueryToken: () => false }))
 */
export function deviceAuth(options: { allowQueryToken: (req: Request) => boolean }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const token = bearer(c.req.header("authorization")) ?? (options.allowQueryToken(c.req.raw) ? c.req.query("access_token") ?? null : null);
    if (!token) throw new ApiError("unauthorized", "missing bearer token");
    const claims = await verifyToken(token, c.env);
    if (typeof claims.exp !== "number") throw new ApiError("unauthorized", "token has no exp claim");
    if (!isId(claims.sub) || !isId(claims.did)) throw new ApiError("unauthorized", "token sub/did are not valid ids");
    c.set("user", claims.sub);
    c.set("device", claims.did);
    await next();
  });
}
