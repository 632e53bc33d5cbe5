/**
 * Bounded memos for answers that are cheap to read again: a full map starts
 * over instead of tracking recency, so a hit costs one Map lookup.
 */

/**
 * `map`'s value for `key`, read once and kept; when the map holds `limit` entries it is emptied first.
 * `read` must not return undefined (that marks a miss).
 * @example remembered(ids, name, 10_000, () => namespace.idFromName(name))
 */
export function remembered<K, V>(map: Map<K, V>, key: K, limit: number, read: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = read();
    if (map.size >= limit) map.clear();
    map.set(key, value);
  }
  return value;
}
