/**
 * CORS (PROTOCOL.md v1.1 "Browser apps on other origins"): preflights without
 * authentication, ALLOWED_ORIGINS with `*` and port wildcards, no CORS header
 * at all for a disallowed origin, and error responses a browser app can read.
 * Requests go straight into the Worker's fetch handler with ALLOWED_ORIGINS
 * set per test (vitest.config.ts leaves it empty, as wrangler.toml does).
 */
import { createExecutionContext, env } from "cloudflare:test";
import { generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import worker from "../src/index";
import { originMatcher } from "../src/worker/cors";
import { jwksFor } from "../src/worker/jwks";
import { BASE, token, uid } from "./helpers";

const FAKE = (env as unknown as { FAKE_PROVIDER_URL: string }).FAKE_PROVIDER_URL;
const LOCAL = "http://localhost:*,http://127.0.0.1:*";
const APP = "https://app.example.com";
const unlimited = { limit: async () => ({ success: true }) };

async function send(path: string, origins: string, init: RequestInit & { vars?: Record<string, unknown> } = {}): Promise<Response> {
  const bindings = { ...env, DEVICE_RATE: unlimited, ALLOWED_ORIGINS: origins, ...init.vars } as unknown as Env;
  return worker.fetch(new Request(BASE + path, init), bindings, createExecutionContext());
}

function preflight(path: string, origins: string, origin: string, method = "POST", headers = "authorization, content-type"): Promise<Response> {
  return send(path, origins, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers } });
}

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith("access-control-"));
const list = (value: string | null) => (value ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

function expectAllowed(res: Response, origin: string): void {
  expect(res.headers.get("access-control-allow-origin")).toBe(origin);
  expect(list(res.headers.get("access-control-expose-headers"))).toContain("retry-after");
}

describe("CORS preflight", () => {
  it("an allowed origin gets 204 without authentication, with the methods and headers the API needs", async () => {
    for (const path of ["/v1/sync", `/v1/conversations/${uid("c")}/messages`, "/v1/sockets/ticket", "/v1/devices/phone", "/v1/media"]) {
      const res = await preflight(path, `${APP},${LOCAL}`, APP);
      expect({ path, status: res.status }).toEqual({ path, status: 204 });
      expect(res.headers.get("access-control-allow-origin")).toBe(APP);
      expect(list(res.headers.get("access-control-allow-headers"))).toEqual(expect.arrayContaining(["authorization", "content-type"]));
      expect(list(res.headers.get("access-control-allow-methods"))).toEqual(expect.arrayContaining(["get", "post", "delete"]));
      expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
      expect(list(res.headers.get("vary"))).toContain("origin");
      expect(res.headers.get("access-control-allow-credentials")).toBeNull();
      expect(await res.text()).toBe("");
    }
  });

  it("a disallowed origin gets no CORS header at all (not even Allow-Methods / Allow-Headers)", async () => {
    for (const [origins, origin] of [
      [APP, "https://evil.example"],
      [APP, "https://app.example.com.evil.example"],
      [APP, "http://app.example.com"],
      ["", APP],
      [LOCAL, "http://localhost.evil.example:5173"],
      [LOCAL, "https://localhost:5173"],
      [LOCAL, "null"],
    ] as const) {
      const res = await preflight("/v1/sync", origins, origin);
      expect({ origins, origin, status: res.status, cors: corsHeaders(res) }).toEqual({ origins, origin, status: 403, cors: [] });
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    }
  });

  it("OPTIONS without Origin is an ordinary request; hono/cors answers any OPTIONS from an allowed origin", async () => {
    const jwt = await token(uid("u"), "phone");
    const noOrigin = await send("/v1/sync", APP, { method: "OPTIONS", headers: { authorization: `Bearer ${jwt}`, "access-control-request-method": "GET" } });
    expect(noOrigin.status).toBe(404);
    expect(corsHeaders(noOrigin)).toEqual([]);
    // No Access-Control-Request-Method: not strictly a preflight, but harmless to answer as one (no body, no state).
    const noMethod = await send("/v1/sync", APP, { method: "OPTIONS", headers: { origin: APP } });
    expect(noMethod.status).toBe(204);
    expect(noMethod.headers.get("access-control-allow-origin")).toBe(APP);
    // From a disallowed origin it is an ordinary request too: routed (and authenticated) like any other.
    const foreign = await send("/v1/sync", APP, { method: "OPTIONS", headers: { origin: "https://evil.example" } });
    expect(foreign.status).toBe(401);
    expect(corsHeaders(foreign)).toEqual([]);
  });
});

describe("allowed origins", () => {
  it("port wildcards match any port (or none) of exactly that scheme and host", () => {
    const local = originMatcher(["http://localhost:*", "http://127.0.0.1:*", "https://App.Example.com/"]);
    for (const o of ["http://localhost:5173", "http://localhost:8787", "http://localhost", "http://127.0.0.1:3000", "http://LOCALHOST:1", APP]) expect({ o, ok: local(o) }).toEqual({ o, ok: true });
    for (const o of [
      "https://localhost:5173",
      "http://localhost.evil.example",
      "http://localhost.evil.example:80",
      "http://localhost:80.evil.example",
      "http://localhost:80@evil.example",
      "http://localhost:123456",
      "http://localhost:",
      "http://127.0.0.2:3000",
      "http://evil.example/http://localhost:1",
      "https://app.example.com:8443",
      "null",
      "",
    ]) {
      expect({ o, ok: local(o) }).toEqual({ o, ok: false });
    }
    expect(originMatcher(["*"])("https://anything.example")).toBe(true);
    expect(originMatcher([])("http://localhost:5173")).toBe(false);
    // Patterns that are no origin never match anything.
    expect(originMatcher(["localhost", "http://*.example.com", "https://a.example/path"])("https://a.example")).toBe(false);
  });

  it("`*` allows any origin with Allow-Origin: *", async () => {
    const res = await preflight("/v1/sync", "*", "https://whoever.example");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const get = await send("/healthz", "*", { headers: { origin: "https://whoever.example" } });
    expect(get.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("the local-development setting allows any localhost / 127.0.0.1 port out of the box", async () => {
    for (const origin of ["http://localhost:5173", "http://127.0.0.1:8080", "http://localhost:3000"]) {
      const res = await preflight("/v1/sockets/ticket", LOCAL, origin);
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(origin);
    }
  });
});

describe("responses to an allowed origin, errors included", () => {
  it("200, 401, 404, 429 and 503 carry Allow-Origin and expose Retry-After", async () => {
    const headers = { origin: APP };
    const jwt = await token(uid("u"), "phone");
    const ok = await send("/v1/sync", APP, { headers: { ...headers, authorization: `Bearer ${jwt}` } });
    expect(ok.status).toBe(200);
    expectAllowed(ok, APP);
    expect(list(ok.headers.get("vary"))).toContain("origin");

    const unauthorized = await send("/v1/sync", APP, { headers });
    expect(unauthorized.status).toBe(401);
    expectAllowed(unauthorized, APP);
    expect(((await unauthorized.json()) as { error: { code: string } }).error.code).toBe("unauthorized");

    const missing = await send("/v1/nope", APP, { headers: { ...headers, authorization: `Bearer ${jwt}` } });
    expect(missing.status).toBe(404);
    expectAllowed(missing, APP);

    const limited = await send("/v1/sync", APP, { headers: { ...headers, authorization: `Bearer ${jwt}` }, vars: { DEVICE_RATE: { limit: async () => ({ success: false }) } } });
    expect(limited.status).toBe(429);
    expectAllowed(limited, APP);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);

    // An identity provider that is down: 503 overloaded with Retry-After, readable by the app.
    const idp = `${FAKE}/jwks/${uid("absent")}`;
    jwksFor(idp, { failureBackoffMs: 1000 });
    const { privateKey } = await generateKeyPair("RS256");
    const rs = await new SignJWT({ sub: uid("u"), did: "phone", exp: Math.floor(Date.now() / 1000) + 600 }).setProtectedHeader({ alg: "RS256", kid: "k1" }).sign(privateKey);
    const shed = await send("/v1/sync", APP, { headers: { ...headers, authorization: `Bearer ${rs}` }, vars: { JWKS_URL: idp } });
    expect(shed.status).toBe(503);
    expectAllowed(shed, APP);
    expect(Number(shed.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("a disallowed origin's requests are answered as usual, without any CORS header", async () => {
    const jwt = await token(uid("u"), "phone");
    const withToken: Record<string, string> = { authorization: `Bearer ${jwt}` };
    for (const [auth, status] of [[withToken, 200], [{}, 401]] as const) {
      const res = await send("/v1/sync", APP, { headers: { origin: "https://evil.example", ...auth } });
      expect(res.status).toBe(status);
      expect(corsHeaders(res)).toEqual([]);
      // Not a CORS header: the answer depends on Origin, so caches must keep them apart.
      expect(list(res.headers.get("vary"))).toContain("origin");
    }
  });

  it("requests without Origin (native apps) get no CORS headers", async () => {
    const res = await send("/v1/sync", APP, { headers: { authorization: `Bearer ${await token(uid("u"), "phone")}` } });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
  });

  it("a WebSocket upgrade from an allowed origin still switches protocols", async () => {
    const jwt = await token(uid("u"), "phone");
    const res = await send("/v1/inbox", LOCAL, { headers: { origin: "http://localhost:5173", upgrade: "websocket", authorization: `Bearer ${jwt}` } });
    expect(res.status).toBe(101);
    expect(res.webSocket).toBeTruthy();
    res.webSocket!.accept();
    res.webSocket!.close(1000, "done");
  });
});
