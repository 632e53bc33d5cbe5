/**
 * Sync checkpoints are opaque to clients: a version prefix and the UserDO's change
 * position in base 36. The prefix lets the encoding change without breaking clients
 * that hold old checkpoints.
 */
const PREFIX = "c1.";

export function encodeCheckpoint(position: number): string {
  return PREFIX + position.toString(36);
}

/** The change position, or null for anything this server did not issue. */
export function decodeCheckpoint(checkpoint: string): number | null {
  if (!checkpoint.startsWith(PREFIX)) return null;
  const digits = checkpoint.slice(PREFIX.length);
  if (!/^[0-9a-z]{1,11}$/.test(digits)) return null;
  const position = parseInt(digits, 36);
  return Number.isSafeInteger(position) ? position : null;
}
