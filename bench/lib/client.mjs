/**
 * Lean load-generation helpers on node:http (keep-alive) and `ws`, so the
 * client spends as little of the machine's 2 cores as it can.
 */
import http from "node:http";
import WebSocket from "ws";
import { mintDevToken, resolveAuthSecret } from "../../scripts/lib/dev-auth.mjs";

export const AUTH_SECRET = resolveAuthSecret().secret;

const tokenCache = new Map();
export async function token(user, device) {
  const key = `${user}/${device}`;
  let t = tokenCache.get(key);
  if (!t) {
    t = await mintDevToken({ user, device, secret: AUTH_SECRET, ttl: 6 * 3600 });
    tokenCache.set(key, t);
  }
  return t;
}

export function agent(maxSockets = Infinity) {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: Math.min(maxSockets, 4096), scheduling: "fifo" });
}

/**
 * One HTTP request. Resolves `{ status, headers, body (parsed JSON or text) }`.
 * @param {{ base: string, agent?: http.Agent, method?: string, path: string, token?: string, json?: unknown, raw?: string, timeoutMs?: number }} o
 */
export async function request(o) {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await request1(o);
    } catch (err) {
      // A reused keep-alive connection reset under load: repeat (every bench call is idempotent).
      if (/ECONNRESET|EPIPE|socket hang up/.test(String(err.code ?? err.message)) && attempt < 6) {
        devProxyResets.connectionResets++;
        await sleep(50 * attempt);
        continue;
      }
      throw err;
    }
    // wrangler dev's proxy answers this when its connection to the Worker fails mid-request and
    // does not retry non-GETs itself. Every call the bench makes is safe to repeat (sends carry a
    // client_msg_id, creations accept 409), so repeat it and count it.
    if (res.status === 503 && typeof res.body === "string" && res.body.includes("restarted mid-request") && attempt < 6) {
      devProxyResets.count++;
      await sleep(100 * attempt);
      continue;
    }
    return res;
  }
}

/** How often wrangler dev's proxy said "Your worker restarted mid-request" (retried). */
export const devProxyResets = { count: 0, connectionResets: 0, socketRetries: 0 };

function request1(o) {
  return new Promise((resolve, reject) => {
    const url = new URL(o.path, o.base);
    const payload = o.json !== undefined ? JSON.stringify(o.json) : o.raw;
    const headers = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    const req = http.request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: o.method ?? "GET", headers, agent: o.agent },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body = text;
          if ((res.headers["content-type"] ?? "").includes("json")) {
            try { body = JSON.parse(text); } catch {}
          }
          resolve({ status: res.statusCode, headers: res.headers, body });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(o.timeoutMs ?? 60_000, () => req.destroy(new Error(`timeout ${o.method ?? "GET"} ${o.path}`)));
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/**
 * Throws unless the status is one of `ok`. A 429/503 (rate limit, load shedding) is
 * repeated after its Retry-After × `retryScale` (every bench call is idempotent) and
 * counted in `shedRetries`.
 */
export async function must(o, ok = [200, 201], { retryScale = 0.1, attempts = 20 } = {}) {
  for (let attempt = 1; ; attempt++) {
    const res = await request(o);
    if ((res.status === 429 || res.status === 503) && !ok.includes(res.status) && attempt < attempts) {
      shedRetries.count++;
      await sleep(Math.max(50, Number(res.headers["retry-after"] ?? 1) * 1000 * retryScale));
      continue;
    }
    if (!ok.includes(res.status)) throw new Error(`${o.method ?? "GET"} ${o.path} → ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    return res.body;
  }
}

/** 429/503 answers that `must` waited out and repeated (setup requests mostly). */
export const shedRetries = { count: 0 };

/**
 * Runs `fn(i)` for i in [0, n) with at most `concurrency` in flight.
 * Returns the results in order.
 */
export async function pool(n, concurrency, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** Opens a WebSocket; resolves once open. Frames go to `onFrame(parsed)`. */
export function openSocket(url, onFrame, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    ws.on("message", (data) => {
      const text = data.toString();
      if (text === "pong") return;
      onFrame(JSON.parse(text), ws);
    });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        const err = new Error(`upgrade refused: ${res.statusCode} ${body.slice(0, 200)}`);
        err.status = res.statusCode;
        err.retryAfter = Number(res.headers["retry-after"] ?? 0);
        reject(err);
      });
    });
    ws.once("error", reject);
  });
}

/**
 * openSocket, repeated (up to `attempts`) when the upgrade fails in transport —
 * a handshake that times out or a connection reset, as wrangler dev's proxy does
 * under load — and counted in `devProxyResets.socketRetries`. Refusals with an HTTP
 * status (429/503 with Retry-After, 4xx) are left to the caller.
 */
export async function openSocketRetry(url, onFrame, { attempts = 5, timeoutMs = 30_000 } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openSocket(url, onFrame, { timeoutMs });
    } catch (err) {
      if (err.status !== undefined || attempt >= attempts) throw err;
      devProxyResets.socketRetries++;
      await sleep(100 * attempt);
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A message body of about `bytes` serialized bytes (same size as the raw limit's rows). */
export function bodyOf(bytes, extra = {}) {
  const base = JSON.stringify({ ...extra, text: "" }).length;
  return { ...extra, text: "x".repeat(Math.max(0, bytes - base)) };
}
