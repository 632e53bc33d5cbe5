/**
 * Queue consumers. `push` hands each task to its provider through the
 * provider's gate; `push-dlq` records what died and why. Every message is
 * settled on its own (ack or retry), so one bad message never fails its batch.
 */
import type { Env } from "../env";
import { log } from "../observability/log";
import { callUser } from "../worker/stubs";
import type { GateReport } from "./gate-do";
import { adapterFor } from "./providers";
import { pushTuning } from "./settings";
import type { PushTask, SendOutcome } from "./types";

/** A dead letter: the task and why it died. */
export interface DeadPush {
  task: PushTask;
  reason: string;
  attempts: number;
}

const MAX_BACKOFF_SECONDS = 3600;
/** Gate deferrals before a task is dead-lettered (with 1–30 s waits: minutes of a throttling provider). */
const MAX_DEFERRALS = 50;

/** Full-jitter exponential backoff in whole seconds (the queue's unit), at least 1. */
export function backoffSeconds(attempts: number): number {
  const cap = Math.min(MAX_BACKOFF_SECONDS, 2 ** Math.min(attempts, 12));
  return Math.max(1, Math.ceil(Math.random() * cap));
}

function gateFor(env: Env, task: PushTask) {
  return env.PUSH_GATE.get(env.PUSH_GATE.idFromName(task.target.provider));
}

function report(outcome: SendOutcome): GateReport {
  if (outcome.kind === "retry") return outcome.status === 429 ? "throttled" : "server_error";
  return outcome.kind;
}

async function deadLetter(env: Env, task: PushTask, attempts: number, reason: string): Promise<void> {
  await env.PUSH_DLQ.send({ task, reason, attempts } satisfies DeadPush);
}

async function deliver(message: Message<PushTask>, env: Env): Promise<void> {
  const task = message.body;
  const tuning = pushTuning(env);
  const gate = gateFor(env, task);
  const permit = await gate.acquire();
  if (!permit.granted) {
    // Waiting for the bucket, a provider pause or an open circuit is not the task's fault:
    // the task goes back on the queue as a new message (its delivery attempts stay unspent),
    // up to MAX_DEFERRALS times, so a provider that never recovers still ends in the DLQ.
    const deferred = (task.deferred ?? 0) + 1;
    if (deferred > MAX_DEFERRALS) {
      await deadLetter(env, task, message.attempts, `gave up waiting after ${MAX_DEFERRALS} deferrals: ${permit.reason}`);
    } else {
      const delaySeconds = Math.max(1, Math.ceil(permit.retryAfterMs / 1000)) + Math.floor(Math.random() * 2);
      await env.PUSH_QUEUE.send({ ...task, deferred }, { delaySeconds });
    }
    message.ack();
    return;
  }
  const outcome = await adapterFor(task.target.provider).send(task, env);
  await gate.report(report(outcome), outcome.kind === "retry" ? outcome.retryAfterSeconds : undefined);
  log("push_attempt", { provider: task.target.provider, user: task.user_id, device: task.device_id, outcome: outcome.kind, status: outcome.status, attempts: message.attempts, ...(outcome.kind === "retry" ? { retry_after: outcome.retryAfterSeconds } : {}) });
  switch (outcome.kind) {
    case "delivered":
      message.ack();
      return;
    case "dead_token":
      await callUser(env, task.user_id, "removePushTarget", task.device_id, task.target.token);
      message.ack();
      return;
    case "rejected":
      await deadLetter(env, task, message.attempts, `rejected (${outcome.status}): ${outcome.reason}`);
      message.ack();
      return;
    case "retry":
      if (message.attempts >= tuning.maxAttempts) {
        await deadLetter(env, task, message.attempts, `retries exhausted (${outcome.status}): ${outcome.reason}`);
        message.ack();
        return;
      }
      message.retry({ delaySeconds: outcome.retryAfterSeconds ?? backoffSeconds(message.attempts) });
  }
}

export async function handlePushBatch(batch: MessageBatch<PushTask>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    try {
      await deliver(message, env);
    } catch (err) {
      log("push_failed", { error: String(err), attempts: message.attempts });
      message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    }
  }
}

/** Dead letters: one row each in the provider's gate (bounded), and a log line. */
export async function handleDeadLetters(batch: MessageBatch<DeadPush | PushTask>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    // A task the platform moved here after max_retries arrives bare, without a reason.
    const body = message.body;
    const dead: DeadPush = "task" in body ? body : { task: body, reason: "moved to the DLQ by the queue after max_retries", attempts: message.attempts };
    try {
      await gateFor(env, dead.task).recordDeadLetter({
        user_id: dead.task.user_id,
        device_id: dead.task.device_id,
        conversation_id: dead.task.conversation_id,
        attempts: dead.attempts,
        reason: dead.reason,
      });
      log("push_dead_letter", { provider: dead.task.target.provider, user: dead.task.user_id, device: dead.task.device_id, reason: dead.reason });
      message.ack();
    } catch (err) {
      log("dead_letter_record_failed", { error: String(err) });
      message.retry();
    }
  }
}
