/**
 * CORS for browser apps on other origins (v1.1), with Hono's own middleware.
 *
 * - Allowed origins come from ALLOWED_ORIGINS: a comma list of exact origins,
 *   `*`, or a port wildcard such as `http://localhost:*` (any port, or none).
 * - A preflight (OPTIONS with Origin and Access-Control-Request-Method) from an
 *   allowed origin gets 204 here, before authentication: browsers send
 *   preflights without credentials.
 * - Every other response to an allowed origin, errors included (this runs
 *   outside the error handler's responses), carries Allow-Origin and exposes
 *   Retry-After, so a browser app can read a 401, 429 or 503.
 * - A disallowed origin gets no Access-Control-* header at all. hono/cors alone
 *   would still send Expose-Headers on every response and Allow-Methods /
 *   Allow-Headers (and a 204) on every OPTIONS, so it only runs for allowed
 *   origins; a disallowed preflight gets a plain 403 with the contract's body.
 * - Requests without an Origin (native apps, curl, same-origin GETs) are not
 *   CORS requests and pass untouched.
 * - `Vary: Origin` (not a CORS header) goes on every response to a request
 *   with an Origin unless the list is just `*`: the answer depends on it, and a
 *   cache must not hand one origin's answer to another.
 */
import { cors as honoCors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import { settings } from "../config/settings";
import { errorResponse } from "../platform/errors";
import type { AppEnv } from "./auth";

const ALLOW_METHODS = ["GET", "POST", "DELETE", "OPTIONS"];
const ALLOW_HEADERS = ["Authorization", "Content-Type", "Range", "If-None-Match"];
const EXPOSE_HEADERS = ["Retry-After", "ETag", "Content-Range", "x-content-sha256"];
const MAX_AGE_SECONDS = 600;

type Matcher = (origin: string) => boolean;

function normalise(pattern: string): string {
  return pattern.trim().toLowerCase().replace(/\/+$/, "");
}

/**
 * A matcher for the configured patterns; patterns that are not an origin,
 * `*` or `scheme://host:*` are ignored (they could never match a browser's Origin).
 * @example originMatcher(["http://localhost:*"])("http://localhost:5173") // true
 */
export function originMatcher(patterns: readonly string[]): Matcher {
  const exact = new Set<string>();
  const anyPort: string[] = [];
  let all = false;
  for (const raw of patterns.map(normalise)) {
    if (raw === "*") all = true;
    else if (/^[a-z][a-z0-9+.-]*:\/\/[^/:?#@\s]+:\*$/.test(raw)) anyPort.push(raw.slice(0, -2));
    else if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+$/.test(raw)) exact.add(raw);
  }
  return (origin) => {
    if (all) return true;
    const o = origin.toLowerCase();
    if (exact.has(o)) return true;
    // `http://localhost:*` is that scheme and host with any port, or the default one; never a longer host.
    return anyPort.some((base) => o === base || (o.startsWith(`${base}:`) && /^\d{1,5}$/.test(o.slice(base.length + 1))));
  };
}

const matchers = new WeakMap<readonly string[], Matcher>();

function matcherFor(patterns: readonly string[]): Matcher {
  let m = matchers.get(patterns);
  if (!m) matchers.set(patterns, (m = originMatcher(patterns)));
  return m;
}

const shared = { allowMethods: ALLOW_METHODS, allowHeaders: ALLOW_HEADERS, exposeHeaders: EXPOSE_HEADERS, maxAge: MAX_AGE_SECONDS };
/** `ALLOWED_ORIGINS="*"`: no credentials ride on cookies here, so the literal `*` is safe, and no Vary is needed. */
const anyOrigin = honoCors({ ...shared, origin: "*" });
/** A list: echo the (already checked) origin; hono/cors adds `Vary: Origin` itself. */
const listedOrigin = honoCors({ ...shared, origin: (origin) => origin });

export function isPreflight(req: Request): boolean {
  return req.method === "OPTIONS" && req.headers.has("origin") && req.headers.has("access-control-request-method");
}

export const cors = createMiddleware<AppEnv>(async (c, next) => {
  const origin = c.req.header("origin");
  if (origin === undefined) return next();
  const patterns = settings(c.env).allowedOrigins;
  const wildcard = patterns.length > 0 && patterns.every((p) => p === "*");
  if (matcherFor(patterns)(origin)) return (wildcard ? anyOrigin : listedOrigin)(c, next);
  if (isPreflight(c.req.raw)) {
    const res = errorResponse("forbidden", `origin ${origin.slice(0, 100)} is not allowed (ALLOWED_ORIGINS)`);
    res.headers.set("vary", "Origin");
    return res;
  }
  await next();
  c.header("Vary", "Origin", { append: true });
});
