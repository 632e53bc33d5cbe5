/**
 * Tokens this isolate already verified: a device sends many requests with one
 * token, and the signature check (an HMAC, or an RSA/ECDSA verify) is the
 * Worker's largest fixed cost per request.
 *
 * Safe keying: an entry is found only by the whole token (header, payload and
 * signature) AND the id of the key material that verified it (the HS256
 * secret's, or one fetched JWKS generation's). A re-signed or tampered token
 * is another string; a rotated secret or key set is another material id, so
 * nothing verified under old keys is served after the keys change.
 *
 * Bounded by entries (TUNING.verifiedTokens) and by bytes (tokens may be up to
 * LIMITS.maxTokenBytes each); least recently used entries go first.
 */
import { TUNING } from "../config/tuning";

export interface Identity {
  user: string;
  device: string;
  /** The token's `exp`, seconds since the epoch. */
  exp: number;
}

interface Entry extends Identity {
  material: string;
}

/** 10,000 typical tokens are well under this; 10,000 maximal ones would not be. */
const MAX_BYTES = TUNING.verifiedTokenBytes;

export class VerifiedTokens {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(
    private readonly maxEntries: number = TUNING.verifiedTokens,
    private readonly maxBytes: number = MAX_BYTES,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The identity of `token` as verified with `material`, while `exp` (plus the leeway) has not passed. */
  get(token: string, material: string, nowMs: number, leewaySeconds: number): Identity | null {
    const hit = this.#entries.get(token);
    if (!hit || hit.material !== material) return null;
    this.#delete(token);
    if (hit.exp + leewaySeconds <= nowMs / 1000) return null;
    this.#entries.set(token, hit); // most recently used goes last
    this.#bytes += token.length;
    return { user: hit.user, device: hit.device, exp: hit.exp };
  }

  set(token: string, material: string, identity: Identity): void {
    this.#delete(token);
    if (token.length > this.maxBytes) return;
    while (this.#entries.size >= this.maxEntries || this.#bytes + token.length > this.maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#delete(oldest.value);
    }
    this.#entries.set(token, { ...identity, material });
    this.#bytes += token.length;
  }

  #delete(token: string): void {
    if (this.#entries.delete(token)) this.#bytes -= token.length;
  }
}
