/**
 * Durable Object calls with the retry policy the platform asks for: retry only
 * errors marked `retryable` and not `overloaded`, with full-jitter backoff, on a
 * fresh stub (a broken stub stays broken). Typed from the namespace, so callers
 * get each object's own method signatures.
 */
import { TUNING } from "../config/tuning";
import { remembered } from "./remembered";
import { backoffMs } from "./retry";

interface PlatformError {
  retryable?: boolean;
  overloaded?: boolean;
}

export function isRetryable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as PlatformError;
  return e.retryable === true && e.overloaded !== true;
}

/**
 * An object too busy to answer (the platform's `overloaded`), or one whose SQLite
 * ran out of memory (the process's heap is shared by its objects: a local
 * workerd past ~2,000 open objects): either way, later, not a bug.
 */
export function isOverloaded(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  return (err as PlatformError).overloaded === true || isStorageOutOfMemory(err);
}

export function isStorageOutOfMemory(err: unknown): boolean {
  return err instanceof Error && err.message.includes("SQLITE_NOMEM");
}

export async function withRetry<S, T>(makeStub: () => S, call: (stub: S) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(makeStub());
    } catch (err) {
      if (attempt >= TUNING.rpcAttempts || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(attempt, TUNING.rpcBaseDelayMs, 10_000)));
    }
  }
}

type AsyncFn = (...args: never[]) => Promise<unknown>;

/** Names of an object's async methods: its RPC surface. */
export type RpcMethod<T> = {
  [K in keyof T]: T[K] extends AsyncFn ? K : never;
}[keyof T] &
  string;

type Method<T, K extends keyof T> = T[K] extends AsyncFn ? T[K] : never;

interface Namespace<T> {
  get(id: DurableObjectId): DurableObjectStub<T extends Rpc.DurableObjectBranded ? T : never>;
  idFromName(name: string): DurableObjectId;
}

/** Object ids by name, per namespace (deriving one hashes the name): a stub stays fresh per attempt, the id need not. */
const ids = new WeakMap<object, Map<string, DurableObjectId>>();
const MAX_IDS = 10_000;

function idOf<T>(namespace: Namespace<T>, name: string): DurableObjectId {
  let byName = ids.get(namespace);
  if (!byName) ids.set(namespace, (byName = new Map()));
  return remembered(byName, name, MAX_IDS, () => namespace.idFromName(name));
}

/**
 * Calls one RPC method of the object named `name` in `namespace`, with the retry policy above.
 * @example const page = await call(env.CONVERSATIONS, "c1", "page", who, { limit: 50 });
 */
export function call<T, K extends RpcMethod<T>>(
  namespace: Namespace<T>,
  name: string,
  method: K,
  ...args: Parameters<Method<T, K>>
): Promise<Awaited<ReturnType<Method<T, K>>>> {
  type Callable = (...a: unknown[]) => Promise<unknown>;
  const id = idOf(namespace, name);
  return withRetry(
    () => namespace.get(id) as unknown as Record<string, Callable>,
    (stub) => stub[method]!(...args),
  ) as Promise<Awaited<ReturnType<Method<T, K>>>>;
}

/** An object's RPC surface as plain async functions (what a local object also satisfies). */
export type Remote<T> = { [K in RpcMethod<T>]: (...args: Parameters<Method<T, K>>) => Promise<Awaited<ReturnType<Method<T, K>>>> };

/**
 * The object named `name` as a `Remote`: every method is a `call` with the retry policy.
 * @example const conversation = remote(env.CONVERSATIONS, "c1"); await conversation.send(…);
 */
export function remote<T>(namespace: Namespace<T>, name: string): Remote<T> {
  return new Proxy({} as Remote<T>, {
    // `then` stays undefined, so a Remote is never mistaken for a promise.
    get: (_target, method) =>
      method === "then" || typeof method !== "string"
        ? undefined
        : (...args: unknown[]) => call(namespace, name, method as RpcMethod<T>, ...(args as Parameters<Method<T, RpcMethod<T>>>)),
  });
}
