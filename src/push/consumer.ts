/**
 * Queue consumers. `push` handles a batch of up to 50 tasks per provider at
 * once: it asks the provider's gate for that many permits (a few calls, not
 * one per task), sends what was granted, reports the outcomes in one call per
 * gate shard, and puts the rest back on the queue. `push-dlq` records what died
 * and why. Every message is settled on its own (ack or retry), so one bad
 * message never fails its batch.
 */
import type { Env } from "../env";
import { log } from "../platform/log";
import { call } from "../platform/rpc";
import { forEachLimited } from "../platform/concurrency";
import { deadLetterGateName, gateShardCount, gateShardName, type DeadLetter, type GateOutcome, type Refusal } from "./gate-do";
import { adapterFor } from "./providers";
import { settings } from "../config/settings";
import { TUNING } from "../config/tuning";
import { backoffSeconds as backoff, retryAfterSeconds } from "../platform/retry";
import type { PushTask, SendOutcome } from "./types";

/** A dead letter: the task and why it died. */
export interface DeadPush {
  task: PushTask;
  reason: string;
  attempts: number;
}

/** Full-jitter exponential backoff in whole seconds (the queue's unit), at least 1. */
export function backoffSeconds(attempts: number): number {
  return backoff(attempts, TUNING.pushMaxBackoffSeconds);
}

/** Permits from a provider's gate: `shards[i]` is the shard that granted permit i; `refused` is set when short. */
export interface Allotment {
  shards: number[];
  refused: Refusal | null;
}

/**
 * Up to `wanted` permits: first from a random shard, so batches spread over
 * the shards, then from the next ones while the buckets run short. A pause or
 * an open circuit holds the whole provider, so it ends the search.
 */
export async function acquirePermits(env: Env, provider: string, wanted: number, random: () => number = Math.random): Promise<Allotment> {
  const count = gateShardCount(settings(env).push);
  const start = Math.floor(random() * count) % count;
  const shards: number[] = [];
  let refused: Refusal | null = null;
  for (let i = 0; i < count && shards.length < wanted; i++) {
    const shard = (start + i) % count;
    // Only the last shard asked counts what stays ungranted, so each deferred task is counted once.
    const permits = await call(env.PUSH_GATE, gateShardName(provider, shard), "acquire", wanted - shards.length, i === count - 1);
    for (let p = 0; p < permits.granted; p++) shards.push(shard);
    if (permits.refused === null) continue;
    if (permits.refused.reason !== "rate") {
      refused = permits.refused;
      break;
    }
    // The deferred tasks come back when the first of the shards has refilled.
    if (refused === null || permits.refused.retryAfterMs < refused.retryAfterMs) refused = permits.refused;
  }
  if (shards.length >= wanted) return { shards, refused: null };
  return { shards, refused: refused ?? { retryAfterMs: 1000, reason: "rate" } };
}

/** A granted task, the shard that granted it, and what the provider said. */
interface Attempt {
  message: Message<PushTask>;
  shard: number;
  outcome: SendOutcome;
}

function gateOutcome(outcome: SendOutcome): GateOutcome {
  if (outcome.kind !== "retry") return { report: outcome.kind };
  return outcome.status === 429 ? { report: "throttled", retryAfterSeconds: outcome.retryAfterSeconds } : { report: "server_error" };
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Sends the granted tasks. After a 429 the provider is paused: the tasks not yet sent come back unsent. */
async function sendGranted(env: Env, granted: readonly { message: Message<PushTask>; shard: number }[]) {
  const attempts: Attempt[] = [];
  const unsent: Message<PushTask>[] = [];
  const state: { pause: Refusal | null } = { pause: null };
  await forEachLimited(granted, TUNING.pushSendConcurrency, async ({ message, shard }) => {
    if (state.pause) return void unsent.push(message);
    const task = message.body;
    const outcome = await adapterFor(task.target.provider)
      .send(task, env)
      .catch((err: unknown): SendOutcome => ({ kind: "retry", status: 0, reason: `adapter failed: ${String(err)}` }));
    attempts.push({ message, shard, outcome });
    if (outcome.kind === "retry" && outcome.status === 429) state.pause = { retryAfterMs: (outcome.retryAfterSeconds ?? 1) * 1000, reason: "paused" };
    log("push_attempt", { provider: task.target.provider, user: task.user_id, device: task.device_id, outcome: outcome.kind, status: outcome.status, attempts: message.attempts, ...(outcome.kind === "retry" ? { retry_after: outcome.retryAfterSeconds } : {}) });
  });
  return { attempts, unsent, pause: state.pause };
}

/** One report per shard, outcomes in the order they came back. A lost report loses stats only: the sends happened. */
async function reportOutcomes(env: Env, provider: string, attempts: readonly Attempt[]): Promise<void> {
  await Promise.all(
    [...groupBy(attempts, (a) => a.shard)].map(([shard, list]) =>
      call(env.PUSH_GATE, gateShardName(provider, shard), "report", provider, list.map((a) => gateOutcome(a.outcome))).catch((err: unknown) =>
        log("push_report_failed", { provider, shard, error: String(err) }),
      ),
    ),
  );
}

/** Sends one message per item to `queue`, then acks the items; on failure each is retried (nothing was lost). */
async function forward<T>(queue: Queue<T>, items: readonly { message: Message<PushTask>; request: MessageSendRequest<T> }[]): Promise<void> {
  for (let i = 0; i < items.length; i += TUNING.pushSendBatchMax) {
    const chunk = items.slice(i, i + TUNING.pushSendBatchMax);
    try {
      await queue.sendBatch(chunk.map((x) => x.request));
      for (const x of chunk) x.message.ack();
    } catch (err) {
      log("push_forward_failed", { error: String(err), messages: chunk.length });
      for (const x of chunk) x.message.retry({ delaySeconds: backoffSeconds(x.message.attempts) });
    }
  }
}

/**
 * Waiting for the bucket, a provider pause or an open circuit is not the task's fault:
 * the task goes back on the queue as a new message (its delivery attempts stay unspent),
 * up to TUNING.pushMaxDeferrals times, so a provider that never recovers still ends in the DLQ.
 */
async function defer(env: Env, messages: readonly Message<PushTask>[], refusal: Refusal): Promise<void> {
  const exhausted = (m: Message<PushTask>) => (m.body.deferred ?? 0) >= TUNING.pushMaxDeferrals;
  const wait = messages.filter((m) => !exhausted(m));
  const giveUp = messages.filter(exhausted);
  await Promise.all([
    // Jittered per task, so a deferred batch does not come back in one lump.
    forward(env.PUSH_QUEUE, wait.map((message) => ({ message, request: { body: { ...message.body, deferred: (message.body.deferred ?? 0) + 1 }, delaySeconds: retryAfterSeconds(refusal.retryAfterMs, 2) } }))),
    forward(env.PUSH_DLQ, giveUp.map((message) => ({ message, request: { body: { task: message.body, attempts: message.attempts, reason: `gave up waiting after ${TUNING.pushMaxDeferrals} deferrals: ${refusal.reason}` } } }))),
  ]);
}

async function deadLetter(env: Env, task: PushTask, attempts: number, reason: string): Promise<void> {
  await env.PUSH_DLQ.send({ task, reason, attempts } satisfies DeadPush);
}

async function settle(env: Env, { message, outcome }: Attempt): Promise<void> {
  const task = message.body;
  switch (outcome.kind) {
    case "delivered":
      message.ack();
      return;
    case "dead_token":
      await call(env.USERS, task.user_id, "removePushTarget", task.device_id, task.target.token);
      message.ack();
      return;
    case "rejected":
      await deadLetter(env, task, message.attempts, `rejected (${outcome.status}): ${outcome.reason}`);
      message.ack();
      return;
    case "retry":
      if (message.attempts >= settings(env).push.maxAttempts) {
        await deadLetter(env, task, message.attempts, `retries exhausted (${outcome.status}): ${outcome.reason}`);
        message.ack();
        return;
      }
      message.retry({ delaySeconds: outcome.retryAfterSeconds ?? backoffSeconds(message.attempts) });
  }
}

function retryAll(messages: readonly Message<PushTask>[], err: unknown): void {
  log("push_failed", { error: String(err), messages: messages.length });
  for (const m of messages) m.retry({ delaySeconds: backoffSeconds(m.attempts) });
}

async function deliverProvider(env: Env, provider: string, messages: readonly Message<PushTask>[]): Promise<void> {
  let allotment: Allotment;
  try {
    allotment = await acquirePermits(env, provider, messages.length);
  } catch (err) {
    return retryAll(messages, err);
  }
  const granted = allotment.shards.map((shard, i) => ({ message: messages[i]!, shard }));
  const sent = await sendGranted(env, granted);
  const waiting = [...sent.unsent, ...messages.slice(granted.length)];
  const refusal = sent.pause ?? allotment.refused;
  await Promise.all([reportOutcomes(env, provider, sent.attempts), waiting.length > 0 && refusal ? defer(env, waiting, refusal) : undefined]);
  await forEachLimited(sent.attempts, TUNING.pushSendConcurrency, (attempt) =>
    settle(env, attempt).catch((err: unknown) => retryAll([attempt.message], err)),
  );
}

export async function handlePushBatch(batch: MessageBatch<PushTask>, env: Env): Promise<void> {
  const byProvider = groupBy(batch.messages, (m) => m.body.target.provider);
  await Promise.all([...byProvider].map(([provider, messages]) => deliverProvider(env, provider, messages)));
}

function deadLetterOf(dead: DeadPush): DeadLetter {
  return { user_id: dead.task.user_id, device_id: dead.task.device_id, conversation_id: dead.task.conversation_id, attempts: dead.attempts, reason: dead.reason };
}

/** Dead letters: one bulk write per provider into its dead-letter shard (bounded), and a log line each. */
export async function handleDeadLetters(batch: MessageBatch<DeadPush | PushTask>, env: Env): Promise<void> {
  // A task the platform moved here after max_retries arrives bare, without a reason.
  const items = batch.messages.map((message) => {
    const body = message.body;
    const dead: DeadPush = "task" in body ? body : { task: body, reason: "moved to the DLQ by the queue after max_retries", attempts: message.attempts };
    return { message, dead };
  });
  await Promise.all(
    [...groupBy(items, (x) => x.dead.task.target.provider)].map(async ([provider, group]) => {
      try {
        await call(env.PUSH_GATE, deadLetterGateName(provider), "recordDeadLetters", group.map((x) => deadLetterOf(x.dead)));
        for (const { message, dead } of group) {
          log("push_dead_letter", { provider, user: dead.task.user_id, device: dead.task.device_id, reason: dead.reason });
          message.ack();
        }
      } catch (err) {
        log("dead_letter_record_failed", { provider, error: String(err) });
        for (const { message } of group) message.retry();
      }
    }),
  );
}
