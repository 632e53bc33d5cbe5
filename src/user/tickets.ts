/**
 * One-time socket tickets (v1.1): a browser opens a socket with `?ticket=`
 * instead of putting its long-lived token in a URL.
 *
 *   t2.<user>.<expires_at ms>.<secret>.<mac>
 *
 * - `secret`: 256 random bits. The UserDO keeps only the SHA-256 of the whole
 *   ticket, with the device it is bound to and its expiry; consuming deletes
 *   the row in one synchronous `DELETE … RETURNING`, so of two upgrades racing
 *   with one ticket exactly one gets the row. That row is what authenticates.
 * - `mac`: HMAC-SHA256 over everything before it, with a key derived from
 *   AUTH_SECRET (HKDF, its own label, so it can never be confused with a token
 *   signature). The Worker checks it and the expiry before any object call, so
 *   forged or expired tickets cost no Durable Object request, and a made-up
 *   user name in a forged ticket never creates (and migrates) a UserDO.
 * - Storage is bounded: expired rows go on every issue and consume, and a user
 *   keeps at most TUNING.maxTicketsPerUser outstanding tickets (oldest dropped).
 */
import { TUNING } from "../config/tuning";
import type { Sql } from "../platform/sql";
import { isId } from "../protocol/ids";
import { LIMITS } from "../protocol/limits";

const PREFIX = "t2";
/** t2 + user (≤ 64) + 13-digit ms + 43 + 43, and separators: anything longer is not ours. */
const MAX_TICKET_CHARS = 200;
const SHAPE = /^t2\.([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;

const enc = new TextEncoder();

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** The MAC key per secret, derived once per isolate or object. */
let macKey: { secret: string; key: Promise<CryptoKey> } | null = null;

function keyFor(secret: string): Promise<CryptoKey> {
  if (macKey?.secret !== secret) {
    const key = crypto.subtle
      .importKey("raw", enc.encode(secret), "HKDF", false, ["deriveKey"])
      .then((ikm) =>
        crypto.subtle.deriveKey(
          { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode("offline-delivery socket ticket v2") },
          ikm,
          { name: "HMAC", hash: "SHA-256", length: 256 },
          false,
          ["sign", "verify"],
        ),
      );
    macKey = { secret, key };
  }
  return macKey.key;
}

async function hash(ticket: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", enc.encode(ticket));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * What a ticket claims, when its MAC holds and it has not expired; null
 * otherwise. This is a filter, not the authentication: `consume` is.
 */
export async function checkTicket(ticket: string, secret: string, now: number): Promise<{ user: string; expiresAt: number } | null> {
  if (ticket.length > MAX_TICKET_CHARS) return null;
  const m = SHAPE.exec(ticket);
  if (!m) return null;
  const [, user, expires, , mac] = m as unknown as [string, string, string, string, string];
  const expiresAt = Number(expires);
  if (!(expiresAt > now)) return null;
  const signed = ticket.slice(0, ticket.lastIndexOf("."));
  const ok = await crypto.subtle.verify("HMAC", await keyFor(secret), fromB64url(mac), enc.encode(signed));
  return ok && isId(user) ? { user, expiresAt } : null;
}

export class TicketStore {
  constructor(private readonly sql: Sql) {}

  /**
   * A new ticket for `device` of `user`, valid once until `now + ttlMs`.
   * @example const { ticket } = await store.issue("alice", "phone", Date.now(), env.AUTH_SECRET);
   */
  async issue(user: string, device: string, now: number, secret: string, ttlMs: number = LIMITS.ticketTtlSeconds * 1000): Promise<{ ticket: string; expires_in: number }> {
    const expiresAt = now + ttlMs;
    const signed = `${PREFIX}.${user}.${expiresAt}.${b64url(crypto.getRandomValues(new Uint8Array(32)))}`;
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await keyFor(secret), enc.encode(signed)));
    const ticket = `${signed}.${b64url(mac)}`;
    const ticketHash = await hash(ticket);
    this.sql.run("DELETE FROM tickets WHERE expires_at <= ?", now);
    // Bounded: keep the newest cap-1, then add this one.
    this.sql.run(
      "DELETE FROM tickets WHERE ticket_hash IN (SELECT ticket_hash FROM tickets ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
      TUNING.maxTicketsPerUser - 1,
    );
    this.sql.run("INSERT INTO tickets (ticket_hash, device_id, expires_at) VALUES (?, ?, ?)", ticketHash, device, expiresAt);
    return { ticket, expires_in: Math.round(ttlMs / 1000) };
  }

  /** The device the ticket was bound to, once; null for a used, expired or unknown ticket. */
  async consume(ticket: string, now: number): Promise<string | null> {
    if (ticket.length > MAX_TICKET_CHARS || !SHAPE.test(ticket)) return null;
    const ticketHash = await hash(ticket);
    // No await between these statements: the delete is the one-time check, atomic within the object.
    const row = this.sql.first<{ device_id: string; expires_at: number }>(
      "DELETE FROM tickets WHERE ticket_hash = ? RETURNING device_id, expires_at",
      ticketHash,
    );
    this.sql.run("DELETE FROM tickets WHERE expires_at <= ?", now);
    return row && row.expires_at > now ? row.device_id : null;
  }

  /** A deleted device's outstanding tickets die with it. */
  forgetDevice(device: string): void {
    this.sql.run("DELETE FROM tickets WHERE device_id = ?", device);
  }

  /** Outstanding tickets (for tests and stats). */
  count(): number {
    return this.sql.one<{ n: number }>("SELECT count(*) AS n FROM tickets").n;
  }
}
