/**
 * HTTP range and precondition rules for media downloads (RFC 9110 §13, §14),
 * decided from the stored size and entity tag before R2 is asked for bytes, so
 * an unsatisfiable range is a 416 and a failed If-Match a 412, not a full body.
 */

/** What a `Range` header asks of an object of `size` bytes. */
export type RangeRequest = { kind: "all" } | { kind: "part"; offset: number; length: number } | { kind: "unsatisfiable" };

const SINGLE = /^bytes=(\d*)-(\d*)$/;

/**
 * One range `bytes=first-last`, `bytes=first-` or `bytes=-suffix`. A header that does not
 * parse, or asks for several ranges, is ignored (the whole object), as RFC 9110 allows.
 */
export function rangeOf(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: "all" };
  const m = SINGLE.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "all" };
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    const length = Math.min(suffix, size);
    return { kind: "part", offset: size - length, length };
  }
  const first = Number(m[1]);
  const last = m[2] === "" ? size - 1 : Number(m[2]);
  if (last < first) return { kind: "all" };
  if (first >= size) return { kind: "unsatisfiable" };
  return { kind: "part", offset: first, length: Math.min(last, size - 1) - first + 1 };
}

/** Whether an `If-Match` / `If-None-Match` list names `etag` (`*` names any; weak tags compare by value). */
export function etagListed(header: string, etag: string): boolean {
  const bare = (t: string) => t.trim().replace(/^W\//, "");
  const want = bare(etag);
  return header.split(",").some((t) => t.trim() === "*" || bare(t) === want);
}
