/**
 * Hostile request generation for test/hostile.test.ts. Every case is built from
 * a valid request with one thing made wrong (the token, a path id, a query
 * value, a body field, the whole body, the method, the content-type), so every
 * case must be refused: a 4xx with the contract's error body, never a 2xx,
 * never a 5xx (503 with Retry-After excepted), and no state change.
 *
 * Values come from hand-written tables of known-nasty inputs plus fast-check
 * arbitraries sampled from a printed seed (replayable with HOSTILE_SEED).
 */
import fc from "fast-check";

export interface Case {
  name: string;
  method: string;
  path: string;
  /** Who signs the request: a token header value ("" = none). */
  auth: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Acceptable statuses; default: any 4xx with a contract error body. */
  expect?: number[];
}

/** Values that are no valid id: `^[A-Za-z0-9_-]{1,64}$`. */
export const BAD_IDS: string[] = [
  "",
  " ",
  "a b",
  "a.b",
  "..",
  ".",
  "a/b",
  "a\\b",
  "x".repeat(65),
  "é",
  "✓",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "a\udc00b",
  "%",
  "a%2Fb",
  "<script>",
  "'; DROP TABLE entries; --",
  "null",
  "\u202e",
  "a\nb",
  "🙂",
];

/** URL path segments that must not be accepted as ids (already percent-encoded where needed). */
export const BAD_PATH_SEGMENTS: string[] = [
  "a%20b",
  "a.b",
  "..%2F..%2Fetc",
  "%2e%2e",
  "a%2Fb",
  "a%5Cb",
  "x".repeat(65),
  "%C3%A9",
  "%E2%9C%93",
  "%00",
  "a%00b",
  "%ED%A0%80", // lone surrogate as (invalid) UTF-8
  "%FF%FE",
  "%F0%9F%99%82",
  "__proto__%20",
  "%25",
  "a;b",
  "a,b",
  "~x",
  "'%3B--",
];

/** JSON values of the wrong type for a field that wants an id, a seq, an array or an object. */
export const WRONG_TYPES: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  -0.5,
  1e300,
  -1e300,
  2 ** 53 + 2,
  Number.MAX_SAFE_INTEGER * 4,
  "1",
  "NaN",
  "Infinity",
  "-Infinity",
  "1e3",
  "0x10",
  "",
  [],
  [1],
  ["a", 1],
  {},
  { a: 1 },
  [[[[[["deep"]]]]]],
  { $gt: 0 },
  { __proto__: { polluted: 1 } },
];

/** Raw JSON texts for a numeric field that JSON.stringify cannot produce. */
export const RAW_NUMBERS: string[] = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "01", "+1", ".5", "1.", "1e", "--1", "99999999999999999999999999"];

/** Query-string integers that must be refused (digits only, in range). */
export const BAD_QUERY_INTS: string[] = [
  "-1",
  "1.5",
  "1e3",
  "0x10",
  "%205",
  "5%20",
  "NaN",
  "Infinity",
  "",
  "99999999999999999",
  "9007199254740993",
  "%D9%A1", // Arabic-Indic digit one
  "1%00",
  "+1",
  "abc",
  "x".repeat(300),
];

/** Raw request bodies that are not a JSON object. */
export const RAW_BODIES: (string | Uint8Array)[] = [
  "{",
  "}",
  "not json",
  "{'a': 1}",
  '{"a": 1,}',
  "[1, 2",
  "null",
  "true",
  "42",
  '"string"',
  "[]",
  "[{}]",
  '{"a": NaN}',
  '{"a": Infinity}',
  "\u0000",
  "\ufeff{}x",
  '{"a": "\\ud800"',
  new Uint8Array([0xff, 0xfe, 0xfd]),
  new Uint8Array([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]), // ["<invalid UTF-8>"]: refused whether or not the bytes are replaced
  new Uint8Array([0x5b, 0xff, 0x5d]), // [<invalid UTF-8>]
  new Uint8Array([0xef, 0xbb, 0xbf, 0x5b, 0x5d]), // BOM + []
  "[".repeat(100_000),
  `{"a":${"[".repeat(50_000)}`,
];

/** Content types a JSON endpoint may be sent with. */
export const CONTENT_TYPES: (string | null)[] = [
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "application/octet-stream",
  "application/vnd.api+json",
  null,
];

/**
 * Random junk from fast-check, sampled deterministically from `seed`:
 * unicode/binary strings as raw bodies, random JSON values, and random objects
 * (with none of the endpoint's required keys).
 */
export function junk(seed: number, n: number) {
  const strings = fc.sample(
    fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.string({ unit: "grapheme", maxLength: 200 }),
      fc.string({ unit: fc.constantFrom("{", "}", "[", "]", '"', ":", ",", "\\", "u", "d", "8", "0", " ", "n", "1", "e", "-", "."), maxLength: 60 }),
    ),
    { seed, numRuns: n },
  );
  const values = fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed: seed + 1, numRuns: n });
  const objects = fc.sample(fc.dictionary(fc.string({ unit: "grapheme", maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }), { seed: seed + 2, numRuns: n });
  const ints = fc.sample(
    fc.oneof(fc.integer({ min: -(2 ** 31), max: -1 }), fc.double({ noInteger: true }), fc.constantFrom(2 ** 53, 2 ** 64, -0)),
    { seed: seed + 3, numRuns: n },
  );
  return { strings, values, objects, ints };
}

/** A JSON body of about `bytes` bytes. */
export function padded(bytes: number, extra: Record<string, unknown> = {}): string {
  const base = JSON.stringify({ ...extra, pad: "" });
  return JSON.stringify({ ...extra, pad: "x".repeat(Math.max(0, bytes - base.length)) });
}
