/** Runs `fn` over `items` with at most `limit` in flight; resolves when all settled. */
export function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  return forEachPaced(items, Infinity, limit, fn);
}

/**
 * Like forEachLimited, but item i starts no sooner than i / perSecond seconds
 * after the first: a slice of work spread over time instead of a burst.
 */
export async function forEachPaced<T>(items: readonly T[], perSecond: number, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const start = Date.now();
  const gapMs = 1000 / perSecond;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const wait = start + i * gapMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
