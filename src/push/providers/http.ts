/**
 * Plumbing shared by the provider adapters: a bounded POST that turns network
 * failures into `retry`, Retry-After parsing, and the byte encodings the
 * providers' auth schemes need. Nothing here throws for an HTTP status.
 */
import type { SendOutcome } from "../types";

/**
 * Providers answer in well under a second. A hung connection (APNs is
 * HTTP/2-only; a stuck origin) becomes a retry rather than a stuck consumer.
 */
export const SEND_TIMEOUT_MS = 10_000;

export interface HttpReply {
  status: number;
  headers: Headers;
  /** The whole response body, read so the connection is released. */
  text: string;
}

export type PostResult = { ok: true; reply: HttpReply } | { ok: false; outcome: SendOutcome };

/**
 * POSTs and reads the whole reply. Network errors and timeouts come back as a
 * `retry` outcome with status 0; every HTTP status comes back as a reply.
 */
export async function post(label: string, url: string, headers: Record<string, string>, body: string | Uint8Array): Promise<PostResult> {
  try {
    const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
    const text = await response.text();
    return { ok: true, reply: { status: response.status, headers: response.headers, text } };
  } catch (err) {
    return { ok: false, outcome: { kind: "retry", status: 0, reason: `${label}: network error: ${errorMessage(err)}` } };
  }
}

/**
 * Seconds to wait from a Retry-After header: either delta-seconds or an
 * HTTP-date (RFC 9110 §10.2.3). Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/** A `retry` outcome that carries the reply's Retry-After when it has one. */
export function retryOutcome(reply: HttpReply, reason: string): SendOutcome {
  const retryAfterSeconds = parseRetryAfter(reply.headers.get("retry-after"));
  return retryAfterSeconds === undefined
    ? { kind: "retry", status: reply.status, reason }
    : { kind: "retry", status: reply.status, reason, retryAfterSeconds };
}

/** A configuration problem: never worth retrying, and never a throw. */
export function misconfigured(reason: string): SendOutcome {
  return { kind: "rejected", status: 0, reason };
}

/** Parses JSON, or undefined; provider error bodies are not always JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The first `max` characters of a provider's reply, for a log-friendly reason. */
export function snippet(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

// ---- encodings ----

export function utf8(text: string): Uint8Array<ArrayBuffer> {
  // encode() always returns a fresh ArrayBuffer; workers-types only widens it to ArrayBufferLike.
  return new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>;
}

/** The URL, or undefined if `text` is not one (workers-types lacks URL.canParse). */
export function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let binary = "";
  for (const b of view) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url or standard base64, padded or not (browsers hand out both). Undefined if malformed. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  const normalized = text.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(normalized) || normalized.length % 4 === 1) return undefined;
  const binary = atob(normalized + "=".repeat((4 - (normalized.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * `id` itself when it fits in `maxBytes` of UTF-8, else its SHA-256 in base64url
 * (43 chars): collapse ids must be short, and must stay stable per conversation.
 */
export async function boundedId(id: string, maxBytes: number): Promise<string> {
  return utf8(id).byteLength <= maxBytes ? id : base64url(await sha256(id)).slice(0, maxBytes);
}

export async function sha256(text: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", utf8(text)));
}
