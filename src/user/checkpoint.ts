/**
 * Sync checkpoints are opaque to clients. Two kinds, each with a version prefix
 * so the encoding can change without breaking clients that hold old ones:
 *
 * - `c1.<pos>`: everything that changed after the UserDO's change position `pos`;
 * - `f1.<snapshot>.<activity>.<id>`: the middle of a full sync, which lists the
 *   inbox by activity (newest first) as of position `snapshot`; the last page
 *   answers `c1.<snapshot>`, so what changed during the full sync comes next.
 */
export type Checkpoint =
  | { kind: "since"; pos: number }
  | { kind: "full"; snapshot: number; after: { activity: number; id: string } };

const SINCE = "c1.";
const FULL = "f1.";

export function encodeCheckpoint(position: number): string {
  return SINCE + position.toString(36);
}

export function encodeFullCheckpoint(snapshot: number, activity: number, id: string): string {
  return `${FULL}${snapshot.toString(36)}.${activity.toString(36)}.${id}`;
}

function base36(digits: string | undefined): number | null {
  if (digits === undefined || !/^[0-9a-z]{1,11}$/.test(digits)) return null;
  const n = parseInt(digits, 36);
  return Number.isSafeInteger(n) ? n : null;
}

/** The checkpoint, or null for anything this server did not issue. */
export function decodeCheckpoint(checkpoint: string): Checkpoint | null {
  if (checkpoint.startsWith(SINCE)) {
    const pos = base36(checkpoint.slice(SINCE.length));
    return pos === null ? null : { kind: "since", pos };
  }
  if (checkpoint.startsWith(FULL)) {
    const [snap, act, ...rest] = checkpoint.slice(FULL.length).split(".");
    const snapshot = base36(snap);
    const activity = base36(act);
    const id = rest.join(".");
    if (snapshot === null || activity === null || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) return null;
    return { kind: "full", snapshot, after: { activity, id } };
  }
  return null;
}
