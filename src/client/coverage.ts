/**
 * Which seqs of a conversation the app has already been handed. `upTo` is the
 * contiguous watermark (everything at or below it is done: delivered, or a gap
 * the server reported); `above` holds done spans beyond it, which newest-first
 * pages and out-of-order frames create. Dedupe is "skip what is covered".
 */

/** Inclusive [from, to]. */
export type Span = [number, number];

export interface Coverage {
  upTo: number;
  above: Span[];
}

export function covers(c: Coverage, seq: number): boolean {
  if (seq <= c.upTo) return true;
  return c.above.some(([from, to]) => seq >= from && seq <= to);
}

/** Adds spans and re-normalises: merged, sorted, and folded into `upTo` where contiguous. */
export function addSpans(c: Coverage, spans: readonly Span[]): Coverage {
  const all = [...c.above, ...spans.filter(([from, to]) => from <= to)].sort((a, b) => a[0] - b[0]);
  let upTo = c.upTo;
  const above: Span[] = [];
  for (const [from, to] of all) {
    if (to <= upTo) continue;
    if (from <= upTo + 1) {
      upTo = to;
      continue;
    }
    const last = above[above.length - 1];
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else above.push([from, to]);
  }
  // A span merged into `above` may now touch `upTo` after an earlier fold.
  while (above.length > 0 && above[0]![0] <= upTo + 1) {
    upTo = Math.max(upTo, above.shift()![1]);
  }
  return { upTo, above };
}

/** Single seqs to spans (sorted, merged). */
export function spansOf(seqs: readonly number[]): Span[] {
  const sorted = [...seqs].sort((a, b) => a - b);
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], s);
    else out.push([s, s]);
  }
  return out;
}
