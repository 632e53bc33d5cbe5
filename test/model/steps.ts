/**
 * Schedules for test/model.test.ts: fast-check arbitraries of operation
 * descriptors. A step names actors by index (user 0..2, 3 = a stranger who is
 * never a member; device 0..1; conversation 0..1) and positions as plain
 * numbers that the runner folds into the current range (`pos % (head + 2)`),
 * so every generated step is meaningful in every state and shrinking keeps
 * schedules valid. Membership targets also reach two "crowd" users (4, 5)
 * who only ever join and leave: with them conversation 1 grows to 5 members,
 * enough for a two-level notification tree at NOTIFY_FANOUT=2.
 *
 * A schedule is plain JSON: a failure prints it, and a test replays it with
 * `runSchedule(<that JSON>)` (see "model findings" in test/model.test.ts).
 * Fields added later are optional, so old schedules stay valid.
 */
import fc from "fast-check";

export type Step =
  | { k: "send"; u: number; d: number; c: number; socket: boolean }
  | { k: "retry"; u: number; d: number; c: number; pick: number; socket: boolean; crossConversation: boolean }
  | { k: "open"; u: number; d: number; c: number; after: number | null }
  | { k: "close"; u: number; d: number; c: number }
  /** `timeline`: the v1.1 `timeline_limit` (0 or absent: summaries only). */
  | { k: "sync"; u: number; d: number; limit: number; full: boolean; timeline?: number }
  | { k: "page"; u: number; d: number; c: number; backward: boolean; pos: number | null; limit: number; badEpoch: boolean }
  | { k: "catchup"; u: number; d: number; c: number; limit: number }
  | { k: "ack"; u: number; d: number; c: number; received: number | null; read: number | null; socket: boolean }
  /** `target` 0..2 are users 0..2, 3 and 4 the crowd users 4 and 5. */
  | { k: "member"; u: number; d: number; c: number; target: number; add: boolean }
  | { k: "retention"; c: number }
  /** Kills objects: every object (`all`, the default), one conversation, one UserDO, or a conversation's live shards. */
  | { k: "evict"; scope?: EvictScope; c?: number; u?: number }
  | { k: "attachments"; c: number }
  /** GET …/receipts?seq=pos folded into 0..head+1. */
  | { k: "receipts"; u: number; d: number; c: number; pos: number }
  /**
   * DELETE /v1/devices/:id (a lost phone); the device may come back later as a
   * new one. `back`: it comes back at once (same token) and acks conversation
   * `c` up to `at` folded into 0..head (absent: the head), while its
   * conversations may still be forgetting it.
   */
  | { k: "deleteDevice"; u: number; d: number; back?: boolean; c?: number; at?: number }
  /** The next `times` object-to-object calls of FAULT_TARGETS[target] fail. */
  | { k: "fault"; target: number; times: number; retryable: boolean }
  /**
   * A send, then its notification drain starts and objects die `delay`×5 ms
   * into it: `all` = the conversations with their tree nodes and live shards,
   * `conv` = that conversation, `user` = one UserDO, `live` = its live shards.
   */
  | { k: "crash"; u: number; d: number; c: number; scope: EvictScope; delay: number };

export type EvictScope = "all" | "conv" | "user" | "live";

export type FaultBinding = "USERS" | "NOTIFY" | "LIVE" | "CONVERSATIONS";

/**
 * The object-to-object calls a `fault` step may break (test/model/faults.ts),
 * what the service must do about each, and how many failures in a row a step
 * may ask for: view-path retries back off exponentially (100 ms · 2^n), so more
 * than a few would only make the drain slow; a live batch is given up after 6
 * attempts, so up to 7 failures there test what happens after that.
 */
export const FAULT_TARGETS: readonly { binding: FaultBinding; method: string; maxTimes: number; what: string }[] = [
  { binding: "USERS", method: "applyTick", maxTimes: 4, what: "a tick poke (conversation or leaf → UserDO): the member gets an exact view instead" },
  { binding: "USERS", method: "applyView", maxTimes: 3, what: "an exact view (conversation or leaf → UserDO): notify_targets retries it" },
  { binding: "NOTIFY", method: "tick", maxTimes: 4, what: "a tick into the tree (conversation → node, branch → child): the leaves' members get views" },
  { binding: "NOTIFY", method: "views", maxTimes: 3, what: "views through a leaf (conversation → leaf): retried from notify_targets" },
  { binding: "CONVERSATIONS", method: "leafMembers", maxTimes: 4, what: "a leaf reading its member list (leaf → conversation): the whole leaf fails" },
  { binding: "LIVE", method: "deliver", maxTimes: 7, what: "a live batch (conversation → live shard): retried; a later batch or reconcile fills the gap" },
  { binding: "CONVERSATIONS", method: "liveRange", maxTimes: 4, what: "a live shard fetching a batch it missed (shard → conversation)" },
  { binding: "CONVERSATIONS", method: "forgetDevice", maxTimes: 3, what: "a deleted device's cursor leaving a conversation (UserDO → conversation): retried" },
];


export interface Schedule {
  /** Retention `max_messages` of conversation 1 (conversation 0 keeps everything). */
  maxMessages: number;
  /** Crowd users (4, 5) in conversation 1 from the start: 0..2. */
  crowd?: number;
  steps: Step[];
}

/** Member-step targets → user index. */
export const TARGET_USERS = [0, 1, 2, 4, 5] as const;

const user = fc.integer({ min: 0, max: 2 });
const anyone = fc.integer({ min: 0, max: 3 });
const device = fc.integer({ min: 0, max: 1 });
const conv = fc.integer({ min: 0, max: 1 });
const pos = fc.nat({ max: 60 });
const scope = fc.constantFrom<EvictScope>("all", "conv", "user", "live");

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant("send" as const), u: user, d: device, c: conv, socket: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("retry" as const), u: user, d: device, c: conv, pick: fc.nat({ max: 50 }), socket: fc.boolean(), crossConversation: fc.boolean() }),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("open" as const), u: anyone, d: device, c: conv, after: fc.option(pos, { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("close" as const), u: user, d: device, c: conv }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant("sync" as const),
      u: user,
      d: device,
      limit: fc.integer({ min: 1, max: 3 }),
      full: fc.boolean(),
      timeline: fc.constantFrom(0, 1, 2, 3, 50),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("page" as const),
      u: anyone,
      d: device,
      c: conv,
      backward: fc.boolean(),
      pos: fc.option(pos, { nil: null }),
      limit: fc.integer({ min: 1, max: 4 }),
      badEpoch: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("catchup" as const), u: user, d: device, c: conv, limit: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("ack" as const),
      u: anyone,
      d: device,
      c: conv,
      received: fc.option(pos, { nil: null }),
      read: fc.option(pos, { nil: null }),
      socket: fc.boolean(),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant("member" as const), u: user, d: device, c: conv, target: fc.integer({ min: 0, max: TARGET_USERS.length - 1 }), add: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("retention" as const), c: conv }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("evict" as const), scope, c: conv, u: user }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("attachments" as const), c: conv }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("receipts" as const), u: anyone, d: device, c: conv, pos }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("deleteDevice" as const), u: user, d: device, back: fc.boolean(), c: conv, at: pos }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("fault" as const),
      target: fc.integer({ min: 0, max: FAULT_TARGETS.length - 1 }),
      times: fc.integer({ min: 1, max: 7 }),
      retryable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("crash" as const), u: user, d: device, c: conv, scope, delay: fc.integer({ min: 0, max: 3 }) }) },
);

export function scheduleArb(maxSteps: number): fc.Arbitrary<Schedule> {
  return fc.record({
    maxMessages: fc.integer({ min: 1, max: 4 }),
    crowd: fc.integer({ min: 0, max: 2 }),
    steps: fc.array(stepArb, { minLength: Math.min(5, maxSteps), maxLength: maxSteps, size: "max" }),
  });
}
