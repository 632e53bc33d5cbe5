/**
 * Bad device tokens for test/hostile.test.ts: forged, expired, unsigned,
 * algorithm-confused, malformed, and well-signed tokens whose claims are wrong.
 * Every one of them must get 401 (or the socket paths' 426 for a plain request).
 * Time claims are off by more than the configured clock-skew leeway (tokens
 * inside the leeway are valid: test/auth.test.ts).
 */
import { sign } from "hono/jwt";
import { settings } from "../../src/config/settings";
import { LIMITS } from "../../src/protocol/limits";
import { SECRET, testEnv } from "../helpers";

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
const enc = new TextEncoder();
const json64 = (v: unknown) => b64url(enc.encode(JSON.stringify(v)));

async function hmac(alg: "SHA-256" | "SHA-384" | "SHA-512", secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: alg }, false, ["sign"]);
  return b64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(data))));
}

function pem(der: ArrayBuffer, label: string): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

export interface BadToken {
  name: string;
  /** The Authorization header value (or the raw query token when `query` is set). */
  header: string;
}

/** Builds the bad tokens for a real user/device pair (so only the token is wrong). */
export async function badTokens(user: string, device: string): Promise<BadToken[]> {
  const now = Math.floor(Date.now() / 1000);
  const leeway = settings(testEnv).auth.clockSkewSeconds;
  const claims = { sub: user, did: device, iat: now, exp: now + 3600 };
  const hs = async (header: Record<string, unknown>, payload: Record<string, unknown>, secret = SECRET, hash: "SHA-256" | "SHA-384" | "SHA-512" = "SHA-256") => {
    const data = `${json64(header)}.${json64(payload)}`;
    return `${data}.${await hmac(hash, secret, data)}`;
  };

  const rsa = (await crypto.subtle.generateKey(
    { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
    true,
    ["sign", "verify"],
  )) as CryptoKeyPair;
  const spki = (await crypto.subtle.exportKey("spki", rsa.publicKey)) as ArrayBuffer;
  const publicPem = pem(spki, "PUBLIC KEY");
  const rsData = `${json64({ alg: "RS256", typ: "JWT" })}.${json64(claims)}`;
  const rs256 = `${rsData}.${b64url(new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", rsa.privateKey, enc.encode(rsData))))}`;
  const ec = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const esData = `${json64({ alg: "ES256", typ: "JWT" })}.${json64(claims)}`;
  const es256 = `${esData}.${b64url(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, ec.privateKey, enc.encode(esData))))}`;

  const good = await sign(claims, SECRET, "HS256");
  const [gh, gp, gs] = good.split(".") as [string, string, string];
  const tokens: [string, string][] = [
    ["forged (wrong secret)", await sign(claims, "not-the-secret", "HS256")],
    ["forged (one-byte secret)", await hs({ alg: "HS256", typ: "JWT" }, claims, "x")],
    ["expired", await sign({ ...claims, iat: now - 7200, exp: now - 3600 }, SECRET, "HS256")],
    ["expired by 1 s beyond the leeway", await sign({ ...claims, exp: now - leeway - 1 }, SECRET, "HS256")],
    ["no exp", await sign({ sub: user, did: device, iat: now }, SECRET, "HS256")],
    ["exp as a string", await hs({ alg: "HS256", typ: "JWT" }, { ...claims, exp: String(now + 3600) })],
    ["exp NaN-ish", await hs({ alg: "HS256", typ: "JWT" }, { ...claims, exp: "NaN" })],
    ["nbf in the future", await sign({ ...claims, nbf: now + 3600 }, SECRET, "HS256")],
    ["iat in the future", await sign({ ...claims, iat: now + 3600 }, SECRET, "HS256")],
    ["nbf 5 s beyond the leeway", await sign({ ...claims, nbf: now + leeway + 5 }, SECRET, "HS256")],
    ["iat 5 s beyond the leeway", await sign({ ...claims, iat: now + leeway + 5 }, SECRET, "HS256")],
    ["typ foo", await hs({ alg: "HS256", typ: "foo" }, claims)],
    ["typ application/jose (a JWS, not a JWT)", await hs({ alg: "HS256", typ: "application/jose" }, claims)],
    ["typ a number", await hs({ alg: "HS256", typ: 1 }, claims)],
    ["crit header jose does not know", await hs({ alg: "HS256", crit: ["x-unknown"], "x-unknown": 1 }, claims)],
    ["alg none, no signature", `${json64({ alg: "none", typ: "JWT" })}.${json64(claims)}.`],
    ["alg None, no signature", `${json64({ alg: "None", typ: "JWT" })}.${json64(claims)}.`],
    ["alg none, HS256 signature kept", `${json64({ alg: "none", typ: "JWT" })}.${gp}.${gs}`],
    ["alg missing", await hs({ typ: "JWT" }, claims)],
    ["HS256 signed with an RSA public key PEM", await hs({ alg: "HS256", typ: "JWT" }, claims, publicPem)],
    ["RS256 header, HMAC(PEM) signature", await (async () => {
      const data = `${json64({ alg: "RS256", typ: "JWT" })}.${json64(claims)}`;
      return `${data}.${await hmac("SHA-256", publicPem, data)}`;
    })()],
    ["RS256 properly signed, no JWKS configured", rs256],
    ["ES256 properly signed, no JWKS configured", es256],
    ["HS384 with the right secret", await hs({ alg: "HS384", typ: "JWT" }, claims, SECRET, "SHA-384")],
    ["HS512 with the right secret", await hs({ alg: "HS512", typ: "JWT" }, claims, SECRET, "SHA-512")],
    ["signature of another token", `${gh}.${json64({ ...claims, sub: `${user}x` })}.${gs}`],
    ["payload swapped to another device", `${gh}.${json64({ ...claims, did: `${device}x` })}.${gs}`],
    ["truncated signature", `${gh}.${gp}.${gs.slice(0, 10)}`],
    ["two segments", `${gh}.${gp}`],
    ["four segments", `${good}.${gs}`],
    ["not base64", "!!!.@@@.###"],
    ["header not JSON", `${b64url(enc.encode("not json"))}.${gp}.${gs}`],
    ["payload an array", await hs({ alg: "HS256", typ: "JWT" }, [] as unknown as Record<string, unknown>)],
    ["sub missing", await sign({ did: device, exp: now + 3600 }, SECRET, "HS256")],
    ["did missing", await sign({ sub: user, exp: now + 3600 }, SECRET, "HS256")],
    ["sub with a slash", await sign({ ...claims, sub: `${user}/x` }, SECRET, "HS256")],
    ["sub 65 chars", await sign({ ...claims, sub: "u".repeat(65) }, SECRET, "HS256")],
    ["sub a number", await sign({ ...claims, sub: 12345 }, SECRET, "HS256")],
    ["sub unicode", await sign({ ...claims, sub: "alicé" }, SECRET, "HS256")],
    ["did empty", await sign({ ...claims, did: "" }, SECRET, "HS256")],
    ["did with a dot", await sign({ ...claims, did: "a.b" }, SECRET, "HS256")],
    ["huge token", `${gh}.${json64({ ...claims, pad: "x".repeat(6000) })}.${gs}`],
    ["over the token cap, well signed", await sign({ ...claims, pad: "x".repeat(LIMITS.maxTokenBytes) }, SECRET, "HS256")],
  ];
  const out: BadToken[] = tokens.map(([name, t]) => ({ name, header: `Bearer ${t}` }));
  out.push(
    { name: "no Authorization", header: "" },
    { name: "Bearer and nothing", header: "Bearer " },
    { name: "Basic scheme", header: `Basic ${btoa(`${user}:pw`)}` },
    { name: "token without scheme", header: good },
    { name: "two tokens", header: `Bearer ${good} ${good}` },
    { name: "unicode junk", header: "Bearer \u00e9\u00e8\u00ea" }, // Latin-1 bytes in the header
  );
  return out;
}
