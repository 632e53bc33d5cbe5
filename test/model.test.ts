/**
 * Model-based test (issues 7 and 15): random schedules of sends, retries, live
 * socket connects/disconnects, sync (with v1.1 timelines), page reads, catch-up,
 * cursor acks, receipts, joins/leaves (up to 5 members, so the notification tree
 * of the sharded config has two levels), retention, device deletion, faults
 * between objects and evictions (also mid-drain), across 3 acting users × 2
 * devices, a stranger, two "crowd" users and 2 conversations; every step is
 * checked against an in-memory model (test/model/model.ts; the checks are
 * listed in test/model/runner.ts). `npm test` runs this file twice: as is, and
 * with NOTIFY_FANOUT=2 / LIVE_ROOT_SOCKETS=1 (vitest.sharded.config.ts), so the
 * same schedules go through NotifyShardDO trees and LiveShardDOs.
 *
 * Budget. Default (CI): random schedules of ≤ MODEL_STEPS steps (default 25)
 * for MODEL_BUDGET_MS (default 100 s), however many fit; a fresh seed per run,
 * printed first. MODEL_RUNS=N runs exactly N schedules instead (no time limit
 * unless MODEL_BUDGET_MS is given too). In the local runtime each new Durable
 * Object costs more than the one before within a test file (measured: ~20 ms
 * for the first objects of a file, ~200 ms after ~1,000; a schedule makes 6-10),
 * so long runs are many processes: `node test/model/nightly.mjs` (see there).
 *
 * Replaying a failure: the failure prints the seed, the path and the schedule up
 * to the failing step as JSON. Re-run with
 *   MODEL_SEED=<seed> MODEL_PATH=<path> npx vitest run test/model.test.ts
 * or replay the printed schedule alone (no seed needed):
 *   MODEL_SCHEDULE='<json>' npx vitest run test/model.test.ts
 * MODEL_SHRINK=1 lets fast-check shrink the failing schedule (no time limit
 * then; slower). A finding becomes a fixed test in "model findings" below:
 * `await runSchedule(<the JSON>)`.
 *
 * Settings are read by test/model/settings.ts (MODEL_… or VITE_MODEL_…).
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { ConversationSummary, SendResult, SyncResponse } from "../src/protocol/types";
import { flush, token, uid } from "./helpers";
import { DirectDevice } from "./model/direct";
import { faultStats } from "./model/faults";
import { runSchedule, ScheduleFailure, stats } from "./model/runner";
import { intSetting, setting } from "./model/settings";
import { scheduleArb, type Schedule } from "./model/steps";

const RUNS = intSetting("MODEL_RUNS", null);
const BUDGET_MS = intSetting("MODEL_BUDGET_MS", RUNS === null ? 100_000 : 0);
const MAX_STEPS = intSetting("MODEL_STEPS", 25);
const SEED = intSetting("MODEL_SEED", (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0);
const PATH = setting("MODEL_PATH");
const SHRINK = setting("MODEL_SHRINK") === "1";
const SCHEDULE = setting("MODEL_SCHEDULE");
/** With a time budget, far more runs than ever fit: the budget ends the run. */
const NUM_RUNS = RUNS ?? 1_000_000;
const TIME_LIMIT = SHRINK || BUDGET_MS <= 0 ? undefined : BUDGET_MS;
const TEST_TIMEOUT = TIME_LIMIT !== undefined && RUNS === null ? TIME_LIMIT + 90_000 : Math.max(180_000, (RUNS ?? 25) * 20_000) * (SHRINK ? 10 : 1);

describe("model-based schedules", () => {
  const started = Date.now();
  afterAll(() => {
    const faults = [...faultStats.byTarget].map(([k, n]) => `${k} ${n}`).join(", ") || "none";
    console.log(
      `model: ${stats.schedules} schedules, ${stats.steps} steps, ${stats.requests} requests, ${stats.checks} checks, ` +
        `${stats.timelines} timelines, ${stats.receipts} receipts, ${stats.faultsArmed} faults armed (${faultStats.hits} hits: ${faults}), ` +
        `${stats.evictions} evictions in ${Math.round((Date.now() - started) / 1000)} s (seed ${SEED})`,
    );
    console.log(
      `model: time in create ${stats.createMs} ms, apply ${stats.applyMs} ms, settle ${stats.settleMs} ms, sockets ${stats.socketMs} ms, ` +
        `indexes ${stats.indexMs} ms, attachment polls ${stats.pollMs} ms`,
    );
  });

  if (SCHEDULE !== undefined) {
    it("the schedule in MODEL_SCHEDULE matches the model", async () => {
      await runSchedule(JSON.parse(SCHEDULE) as Schedule);
    }, 300_000);
    return;
  }

  const size = RUNS !== null ? `${RUNS} random schedules` : `random schedules for ${Math.round(BUDGET_MS / 1000)} s`;
  it(
    `${size} of ≤ ${MAX_STEPS} steps match the model`,
    async () => {
      console.log(
        `model: seed ${SEED}, ${RUNS !== null ? `${RUNS} runs` : `a ${BUDGET_MS} ms budget`} of ≤ ${MAX_STEPS} steps; ` +
          `replay with MODEL_SEED=${SEED} (VITE_MODEL_SEED in the Workers pool)`,
      );
      let run = PATH !== undefined ? Number(PATH.split(":")[0]) - 1 : -1;
      const deadline = TIME_LIMIT === undefined ? Infinity : Date.now() + TIME_LIMIT;
      await fc.assert(
        fc.asyncProperty(scheduleArb(MAX_STEPS), async (schedule) => {
          // The budget ends the run between schedules, never inside one:
          // fast-check's interruptAfterTimeLimit abandons the schedule in
          // flight, which then goes on (evicting every object) under the next test.
          if (Date.now() >= deadline) throw new fc.PreconditionFailure(true);
          run += 1;
          try {
            await runSchedule(schedule);
          } catch (err) {
            if (err instanceof ScheduleFailure && !SHRINK) {
              console.error(
                `model: FAILED seed ${SEED} path ${PATH ?? run} at step ${err.step}: ${err.message.split("\n").slice(0, 4).join("\n  ")}\n` +
                  `replay with\n  MODEL_SEED=${SEED} MODEL_PATH=${PATH ?? run} npx vitest run test/model.test.ts   (add MODEL_SHRINK=1 to shrink)\n` +
                  `  MODEL_SCHEDULE='${JSON.stringify(err.schedule)}' npx vitest run test/model.test.ts`,
              );
            }
            throw err;
          }
          if (stats.schedules % 25 === 0) {
            console.log(`model: ${stats.schedules} schedules, ${stats.steps} steps after ${Math.round((Date.now() - started) / 1000)} s (apply ${stats.applyMs} ms, settle ${stats.settleMs} ms)`);
          }
        }),
        {
          seed: SEED,
          numRuns: NUM_RUNS,
          endOnFailure: !SHRINK,
          ...(PATH !== undefined ? { path: PATH } : {}),
        },
      );
      expect(stats.running, "a schedule outlived the test, so it would act under the next one").toBe(0);
    },
    TEST_TIMEOUT,
  );
});

/**
 * Deterministic reproductions of what the schedules found (each a minimal schedule,
 * written out so the failure is readable without a seed).
 */
describe("model findings", () => {
  /**
   * Issue 15, seed 1747240287 (MODEL_RUNS=100), path 13: failed at step 19/23
   * `{"k":"sync","u":0,"d":0,"limit":2,"full":false}` with max_messages 1: u0's
   * sync row for conversation 1 said floor_seq 4 where the model (then: the
   * plain floor) expected 5. The events, in conversation 1 (members u1, u0, u2;
   * retention keeps the newest entry):
   *   seq 2 u0 sends (floor 1) · seq 3 u2 removes u0: u0's leave (floor 2) ·
   *   seq 4 (floor 3: everything u0 could see is gone) · seq 5 (floor 4) · seq 6 (floor 5).
   * The old server told former members about floor moves while their leave was
   * at or above the old floor, so u0 heard 3 and 4 but not 5; no finite rule of
   * "keep telling former members" holds without a poke to every former member on
   * every floor move, forever. The contract decision since: a former member's
   * floor is min(floor, their leave seq) (views.ts `view`, floor clamped at the
   * visible head). Here that is 3, and it stays 3; u0 learns it because the
   * retention batch that moved the floor from 2 to 3 still overlapped u0's
   * interval (retention.ts `enforce`: formerMembersAbove(old floor) get a view).
   * Without that retention view u0's index keeps the floor it was told with
   * its leave (1). Without the clamp
   * the next view u0 gets says the plain floor: here u0's read cursor moves
   * after the floor passed 3 (ConversationDO.cursor re-tells the member), so the
   * row would say 5. The runner checks u0's index after every step (not only
   * at the syncs). Checked by mutation (a copy of src/ without each rule): the
   * minimal schedule fails both ways.
   */
  const SEED_1747240287: Schedule = {
    maxMessages: 1,
    steps: [
      { k: "send", u: 0, d: 0, c: 1, socket: false }, // seq 2
      { k: "member", u: 2, d: 1, c: 1, target: 0, add: false }, // seq 3: u0 leaves
      { k: "sync", u: 0, d: 0, limit: 2, full: false }, // u0: head 3, floor 2, left
      { k: "send", u: 1, d: 0, c: 1, socket: false }, // seq 4, floor 3 = u0's leave
      { k: "send", u: 2, d: 0, c: 1, socket: false }, // seq 5, floor 4
      { k: "send", u: 2, d: 1, c: 1, socket: false }, // seq 6, floor 5
      { k: "sync", u: 0, d: 0, limit: 2, full: false }, // step 19 of the seed: floor_seq 3 = min(5, 3)
      { k: "ack", u: 0, d: 0, c: 1, received: 3, read: 3, socket: false }, // u0 reads: its view is sent now, floor 5 → capped at 3
      { k: "sync", u: 0, d: 0, limit: 2, full: true },
    ],
  };
  it("seed 1747240287: a former member's floor stops at their leave seq while retention moves on (minimal schedule)", async () => {
    await runSchedule(SEED_1747240287);
  });
  it("seed 1747240287: the generated schedule up to its failing step (path 13)", async () => {
    await runSchedule({
      maxMessages: 1,
      steps: [
        { k: "retry", u: 2, d: 0, c: 0, pick: 12, socket: true, crossConversation: false },
        { k: "send", u: 2, d: 0, c: 0, socket: true },
        { k: "page", u: 0, d: 1, c: 0, backward: false, pos: 0, limit: 2, badEpoch: true },
        { k: "page", u: 0, d: 0, c: 1, backward: false, pos: 21, limit: 1, badEpoch: true },
        { k: "send", u: 0, d: 0, c: 1, socket: false },
        { k: "member", u: 2, d: 1, c: 1, target: 0, add: false },
        { k: "send", u: 1, d: 0, c: 0, socket: true },
        { k: "member", u: 1, d: 1, c: 0, target: 1, add: true },
        { k: "catchup", u: 2, d: 1, c: 1, limit: 2 },
        { k: "open", u: 0, d: 0, c: 0, after: 1 },
        { k: "send", u: 0, d: 0, c: 1, socket: false },
        { k: "send", u: 1, d: 0, c: 1, socket: false },
        { k: "sync", u: 2, d: 0, limit: 3, full: true },
        { k: "close", u: 1, d: 0, c: 1 },
        { k: "send", u: 2, d: 0, c: 1, socket: false },
        { k: "close", u: 1, d: 1, c: 1 },
        { k: "close", u: 2, d: 1, c: 0 },
        { k: "send", u: 2, d: 1, c: 1, socket: false },
        { k: "sync", u: 0, d: 0, limit: 2, full: false },
      ],
    });
  });

  async function pair(maxMessages: number) {
    const a = uid("fa");
    const b = uid("fb");
    const alice = new DirectDevice(a, "d0", await token(a, "d0"));
    const bob = new DirectDevice(b, "d0", await token(b, "d0"));
    const created = await alice.post<ConversationSummary>("/v1/conversations", { members: [b], retention: { max_messages: maxMessages } });
    expect(created.status).toBe(201);
    return { alice, bob, conv: created.body.id };
  }
  const send = (d: DirectDevice, conv: string, cmid: string) => d.post<SendResult>(`/v1/conversations/${conv}/messages`, { client_msg_id: cmid, body: { text: cmid } });

  /**
   * Found by seed 342742388 path 37 (plain config), step 19; fixed in 60dc620.
   * Receipts exclude the entry's own sender (PROTOCOL.md v1.1), but once
   * retention removed a `member` entry the conversation no longer knew who wrote
   * it: src/conversation/receipts.ts `#senderOf` reads `entries`, then the
   * idempotency table, which held message keys only. So receipts of the
   * creation entry (seq 1, by u1) counted u1: members 3 instead of 2, read 1
   * instead of 0. Now member entries keep their actor under a key no client can
   * use (store.ts `rememberActor`).
   */
  it("receipts of a member entry retention removed exclude its sender (seed 342742388)", async () => {
    await runSchedule({
      maxMessages: 1,
      steps: [
        { k: "send", u: 0, d: 0, c: 1, socket: false }, // seq 2: the floor passes seq 1 (u1 created the conversation)
        { k: "ack", u: 1, d: 0, c: 1, received: 2, read: 2, socket: false }, // the creator has read it all
        { k: "receipts", u: 0, d: 0, c: 1, pos: 1 }, // seq 1: members u0, u2 (not u1); delivered 0, read 0
      ],
    });
  });

  /**
   * Found by a targeted schedule of the `deleteDevice … back` step (no fault
   * needed). DELETE /v1/devices/d0 drops the device in its UserDO and queues
   * "forget this device" for each conversation it acked in (src/user/devices.ts
   * `drop` → `forget`, run by the UserDO alarm). The same device acked again
   * before that alarm ran: the conversation still had the old row (2), so the
   * ack did not move it (nor its `updated_at`), and the late forget deleted it;
   * receipts counted 0 devices where the UserDO said 1. Now a cursor request
   * from a device with a pending forget in that conversation settles it first,
   * keeping the new life's cursor (Devices.settle → forgetDevice `keep`).
   */
  it("a deleted device that is back before the forget keeps its new cursor in the conversation", async () => {
    await runSchedule({
      maxMessages: 4,
      steps: [
        { k: "send", u: 1, d: 0, c: 0, socket: false }, // seq 2
        { k: "ack", u: 0, d: 0, c: 0, received: 2, read: null, socket: false }, // u0/d0 received 2
        { k: "deleteDevice", u: 0, d: 0, back: true, c: 0 }, // deleted, then back at once: acks 2 again
        { k: "receipts", u: 1, d: 0, c: 0, pos: 2 }, // delivered to u0's d0
      ],
    });
    // Back with a lower cursor than its old life had: the conversation must say the new one.
    await runSchedule({
      maxMessages: 4,
      steps: [
        { k: "send", u: 1, d: 0, c: 0, socket: false }, // seq 2
        { k: "ack", u: 0, d: 0, c: 0, received: 2, read: null, socket: false },
        { k: "deleteDevice", u: 0, d: 0, back: true, c: 0, at: 1 }, // back, acks 1
        { k: "receipts", u: 1, d: 0, c: 0, pos: 2 }, // not delivered to u0's d0 in this life
      ],
    });
  });

  /**
   * Found by seed 394295927 path 54 (plain config), step 16/21. The same return
   * as above, but the conversation's `forgetDevice` failed when the returning
   * device's ack tried to settle it (a fault of 6, not retryable), so the forget
   * stayed queued and the UserDO alarm sent it later as a plain forget: the old
   * row went and the new life's cursor with it (received cursors [u0/d0] where
   * the UserDO has d0 and d1). Now the alarm's forget keeps the device's current
   * cursor when it is back, and a kept cursor never lowers one the new life
   * already raised.
   */
  it("a deleted device back while its forget keeps failing keeps its new cursor (seed 394295927)", async () => {
    await runSchedule({
      maxMessages: 4,
      steps: [
        { k: "send", u: 1, d: 0, c: 0, socket: false }, // seq 2
        { k: "ack", u: 0, d: 0, c: 0, received: 2, read: null, socket: false }, // the old life's row: 2
        { k: "fault", target: 7, times: 6, retryable: false }, // CONVERSATIONS.forgetDevice fails 6 times
        { k: "deleteDevice", u: 0, d: 0, back: true, c: 0, at: 1 }, // back at once with 1: settling fails; then the alarm's forget
        { k: "receipts", u: 1, d: 0, c: 0, pos: 1 }, // delivered to u0's d0 in this life
      ],
    });
  });

  /**
   * Found by seed 1461799564 path 30 (sharded config), step 23: after a
   * `LIVE.deliver` fault of 6, a socket in a live shard never got the entry.
   * With LIVE_ROOT_SOCKETS=1 the second socket lives in a LiveShardDO; the
   * conversation's batch to it failed 6 times in a row and was given up
   * (src/conversation/live.ts `#deliver`), and nothing brought it back while the
   * conversation stayed quiet. Now a given-up shard is reconciled by the alarm
   * (told the head, it fetches what it missed) until that gets through.
   */
  it("a live shard's socket gets an entry whose batch failed 6 times, with no further send (seed 1461799564)", async () => {
    await runSchedule({
      maxMessages: 4,
      steps: [
        { k: "open", u: 0, d: 0, c: 0, after: null }, // kept by the conversation itself
        { k: "open", u: 1, d: 0, c: 0, after: null }, // handed to a LiveShardDO (sharded config)
        { k: "fault", target: 5, times: 6, retryable: false }, // the next 6 LIVE.deliver calls fail
        { k: "send", u: 0, d: 1, c: 0, socket: false }, // seq 2: u1's socket must get it
      ],
    });
  });

  /**
   * Found by the nightly run, seed 745403645 path 42 (sharded config), step 18
   * (and seed 1735287234 path 24 the same way): a `send` frame on a socket held
   * by a LiveShardDO got no reply at all. The shard accepted sockets and pushed
   * entries to them but had no frame handler, so sends and acks on every socket
   * past the conversation's own (LIVE_ROOT_SOCKETS) were dropped silently. Now
   * the shard answers them through the same use cases (socket-frames.ts).
   */
  it("a send frame on a socket held by a live shard is answered (seed 745403645)", async () => {
    await runSchedule({"maxMessages": 1, "crowd": 2, "steps": [{"k": "deleteDevice", "u": 1, "d": 1, "back": false, "c": 1, "at": 17}, {"k": "send", "u": 0, "d": 0, "c": 0, "socket": true}, {"k": "fault", "target": 4, "times": 6, "retryable": true}, {"k": "fault", "target": 3, "times": 2, "retryable": true}, {"k": "member", "u": 2, "d": 0, "c": 0, "target": 3, "add": false}, {"k": "retry", "u": 2, "d": 0, "c": 0, "pick": 47, "socket": true, "crossConversation": true}, {"k": "page", "u": 0, "d": 1, "c": 1, "backward": true, "pos": null, "limit": 2, "badEpoch": true}, {"k": "open", "u": 0, "d": 1, "c": 0, "after": 9}, {"k": "send", "u": 2, "d": 0, "c": 0, "socket": false}, {"k": "page", "u": 3, "d": 1, "c": 1, "backward": true, "pos": 34, "limit": 3, "badEpoch": false}, {"k": "retry", "u": 2, "d": 1, "c": 1, "pick": 14, "socket": false, "crossConversation": true}, {"k": "retry", "u": 2, "d": 1, "c": 0, "pick": 48, "socket": true, "crossConversation": true}, {"k": "open", "u": 1, "d": 1, "c": 0, "after": 10}, {"k": "fault", "target": 0, "times": 5, "retryable": true}, {"k": "page", "u": 1, "d": 1, "c": 0, "backward": true, "pos": null, "limit": 1, "badEpoch": false}, {"k": "evict", "scope": "user", "c": 0, "u": 0}, {"k": "sync", "u": 1, "d": 0, "limit": 1, "full": true, "timeline": 2}, {"k": "retry", "u": 1, "d": 1, "c": 0, "pick": 10, "socket": true, "crossConversation": false}]});
  });

  it("a retry whose original entry retention already removed is still a duplicate (no second entry)", async () => {
    const { alice, bob, conv } = await pair(2);
    const first = await send(alice, conv, "once");
    expect(first.status).toBe(201);
    for (const cmid of ["b1", "b2", "b3"]) expect((await send(bob, conv, cmid)).status).toBe(201);
    await flush(conv); // retention keeps the newest 2: the floor passes alice's entry
    const summary = await alice.get<ConversationSummary>(`/v1/conversations/${conv}`);
    expect(summary.body.floor_seq).toBeGreaterThanOrEqual(first.body.seq);
    // The client never saw the 201 (lost response) and retries the same client_msg_id.
    const retry = await send(alice, conv, "once");
    expect({ status: retry.status, seq: retry.body.seq, duplicate: retry.body.duplicate }).toEqual({ status: 200, seq: first.body.seq, duplicate: true });
  });

  it("a former member's sync summary follows retention until everything they could see is gone (floor capped at their leave)", async () => {
    const { alice, bob, conv } = await pair(2);
    for (const cmid of ["a1", "a2"]) expect((await send(alice, conv, cmid)).status).toBe(201);
    const removed = await alice.post<ConversationSummary>(`/v1/conversations/${conv}/members`, { remove: [bob.user] });
    expect(removed.status).toBe(200);
    const leaveSeq = removed.body.head_seq;
    for (const cmid of ["a3", "a4", "a5"]) expect((await send(alice, conv, cmid)).status).toBe(201);
    await flush(conv);
    const floor = (await alice.get<ConversationSummary>(`/v1/conversations/${conv}`)).body.floor_seq;
    expect(floor).toBeGreaterThanOrEqual(leaveSeq); // everything bob could see is gone
    const sync = await bob.get<SyncResponse>("/v1/sync");
    const row = sync.body.conversations.find((c) => c.id === conv);
    expect(row && { head_seq: row.head_seq, floor_seq: row.floor_seq, unread: row.unread, membership: row.membership }).toEqual({
      head_seq: leaveSeq,
      floor_seq: Math.min(floor, leaveSeq),
      unread: 0,
      membership: "left",
    });
  });
});
