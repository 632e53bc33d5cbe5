/**
 * Schedules for test/model.test.ts: fast-check arbitraries of operation
 * descriptors. A step names actors by index (user 0..2, 3 = a stranger who is
 * never a member; device 0..1; conversation 0..1) and positions as plain
 * numbers that the runner folds into the current range (`pos % (head + 2)`),
 * so every generated step is meaningful in every state and shrinking keeps
 * schedules valid.
 */
import fc from "fast-check";

export type Step =
  | { k: "send"; u: number; d: number; c: number; socket: boolean }
  | { k: "retry"; u: number; d: number; c: number; pick: number; socket: boolean; crossConversation: boolean }
  | { k: "open"; u: number; d: number; c: number; after: number | null }
  | { k: "close"; u: number; d: number; c: number }
  | { k: "sync"; u: number; d: number; limit: number; full: boolean }
  | { k: "page"; u: number; d: number; c: number; backward: boolean; pos: number | null; limit: number; badEpoch: boolean }
  | { k: "catchup"; u: number; d: number; c: number; limit: number }
  | { k: "ack"; u: number; d: number; c: number; received: number | null; read: number | null; socket: boolean }
  | { k: "member"; u: number; d: number; c: number; target: number; add: boolean }
  | { k: "retention"; c: number }
  | { k: "evict" }
  | { k: "attachments"; c: number };

export interface Schedule {
  /** Retention `max_messages` of conversation 1 (conversation 0 keeps everything). */
  maxMessages: number;
  steps: Step[];
}

const user = fc.integer({ min: 0, max: 2 });
const anyone = fc.integer({ min: 0, max: 3 });
const device = fc.integer({ min: 0, max: 1 });
const conv = fc.integer({ min: 0, max: 1 });
const pos = fc.nat({ max: 60 });

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ k: fc.constant("send" as const), u: user, d: device, c: conv, socket: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("retry" as const), u: user, d: device, c: conv, pick: fc.nat({ max: 50 }), socket: fc.boolean(), crossConversation: fc.boolean() }),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("open" as const), u: anyone, d: device, c: conv, after: fc.option(pos, { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("close" as const), u: user, d: device, c: conv }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("sync" as const), u: user, d: device, limit: fc.integer({ min: 1, max: 3 }), full: fc.boolean() }) },
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
  { weight: 4, arbitrary: fc.record({ k: fc.constant("member" as const), u: user, d: device, c: conv, target: user, add: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("retention" as const), c: conv }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("evict" as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("attachments" as const), c: conv }) },
);

export function scheduleArb(maxSteps: number): fc.Arbitrary<Schedule> {
  return fc.record({
    maxMessages: fc.integer({ min: 1, max: 4 }),
    steps: fc.array(stepArb, { minLength: Math.min(5, maxSteps), maxLength: maxSteps, size: "max" }),
  });
}
