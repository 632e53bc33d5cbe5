/**
 * Durable Object calls with the retry policy the platform asks for: retry only
 * errors marked `retryable` and not `overloaded`, with full-jitter backoff, on a
 * fresh stub (a broken stub stays broken).
 */
import type { Env } from "../env";
import type { ConversationDO } from "../conversation/conversation-do";
import type { UserDO } from "../user/user-do";

const MAX_ATTEMPTS = 4;
const BASE_DELAY_MS = 20;

interface PlatformError {
  retryable?: boolean;
  overloaded?: boolean;
}

export function isRetryable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as PlatformError;
  return e.retryable === true && e.overloaded !== true;
}

export function isOverloaded(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as PlatformError).overloaded === true;
}

export async function withRetry<S, T>(makeStub: () => S, call: (stub: S) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(makeStub());
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * BASE_DELAY_MS * 2 ** attempt));
    }
  }
}

/** Names of an object's async methods: its RPC surface. */
type RpcMethod<T> = {
  [K in keyof T]: T[K] extends (...args: never[]) => Promise<unknown> ? K : never;
}[keyof T] &
  string;

type AsyncFn = (...args: never[]) => Promise<unknown>;
type Callable = (...args: unknown[]) => Promise<unknown>;
interface Namespace {
  get(id: DurableObjectId): unknown;
  idFromName(name: string): DurableObjectId;
}

function invoke<T, K extends RpcMethod<T>>(
  namespace: Namespace,
  name: string,
  method: K,
  args: unknown[],
): Promise<Awaited<ReturnType<T[K] extends AsyncFn ? T[K] : never>>> {
  return withRetry(
    () => namespace.get(namespace.idFromName(name)) as Record<string, Callable>,
    (stub) => stub[method]!(...args),
  ) as Promise<Awaited<ReturnType<T[K] extends AsyncFn ? T[K] : never>>>;
}

/**
 * Calls one RPC method of the ConversationDO named `id`, with the retry policy above.
 * @example const page = await callConversation(env, "c1", "page", "alice", { limit: 50 });
 */
export function callConversation<K extends RpcMethod<ConversationDO>>(
  env: Env,
  id: string,
  method: K,
  ...args: Parameters<ConversationDO[K] extends AsyncFn ? ConversationDO[K] : never>
) {
  return invoke<ConversationDO, K>(env.CONVERSATIONS, id, method, args);
}

/** Calls one RPC method of the UserDO of `user`, with the retry policy above. */
export function callUser<K extends RpcMethod<UserDO>>(
  env: Env,
  user: string,
  method: K,
  ...args: Parameters<UserDO[K] extends AsyncFn ? UserDO[K] : never>
) {
  return invoke<UserDO, K>(env.USERS, user, method, args);
}
