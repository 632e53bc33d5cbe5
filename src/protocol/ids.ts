/** Identifiers (user, device, conversation, client_msg_id): the contract's pattern. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function isId(value: unknown): value is string {
  return typeof value === "string" && ID_PATTERN.test(value);
}

/** Media ids: `m` + 24 random base-36 chars + `.` + the owner's user id. */
export const MEDIA_ID_PATTERN = /^m[0-9a-z]{24}\.([A-Za-z0-9_-]{1,64})$/;

export function mediaOwner(mediaId: string): string | null {
  return MEDIA_ID_PATTERN.exec(mediaId)?.[1] ?? null;
}

export function newMediaId(owner: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `m${Array.from(bytes, (b) => (b % 36).toString(36)).join("")}.${owner}`;
}
