/**
 * Faults between objects for the model test, without any hook in src/.
 *
 * In the Workers pool every Durable Object of a file shares one `env` object
 * (the one its constructor got; the test's own `env` from cloudflare:test is a
 * different object, so requests from the test into the Worker never see a
 * fault). That shared object is writable: `install()` replaces its namespace
 * bindings (USERS, NOTIFY, LIVE, CONVERSATIONS) with wrappers whose stubs throw
 * for the calls a rule names, a given number of times, and pass everything else
 * through to the real stub. Production code is untouched: it reads
 * `env.USERS` etc. lazily at each call (src/platform/rpc.ts `call`), so it
 * simply meets a stub that fails, as it would when the other object is
 * unreachable, overloaded or restarting.
 *
 * A fault throws like a platform error: `retryable: true` errors are retried by
 * `call` (up to TUNING.rpcAttempts times), others fail the call at once.
 */
import { env as testEnv, runInDurableObject } from "cloudflare:test";
import type { FaultBinding } from "./steps";


interface Rule {
  binding: FaultBinding;
  method: string;
  left: number;
  retryable: boolean;
}

const rules: Rule[] = [];
export const faultStats = { armed: 0, hits: 0, byTarget: new Map<string, number>() };

function take(binding: FaultBinding, method: string): Rule | undefined {
  const rule = rules.find((r) => r.binding === binding && r.method === method && r.left > 0);
  if (!rule) return undefined;
  rule.left -= 1;
  faultStats.hits += 1;
  const key = `${binding}.${method}`;
  faultStats.byTarget.set(key, (faultStats.byTarget.get(key) ?? 0) + 1);
  if (rule.left === 0) rules.splice(rules.indexOf(rule), 1);
  return rule;
}

const WRAPPED = Symbol.for("offline-delivery.model.faults");
/** A namespace as the runtime made it (the test's env may see the wrapper: the objects' env backs it). */
function unwrap(ns: object): DurableObjectNamespace {
  return ((ns as Record<symbol, unknown>)[WRAPPED] as DurableObjectNamespace | undefined) ?? (ns as DurableObjectNamespace);
}

/** A real stub, for the runner's own introspection (runInDurableObject and runDurableObjectAlarm insist on real ones). */
export function rawStub(binding: FaultBinding, name: string): DurableObjectStub {
  const ns = unwrap((testEnv as unknown as Record<string, object>)[binding]!);
  return ns.get(ns.idFromName(name));
}

function wrapStub(binding: FaultBinding, stub: object): object {
  return new Proxy(stub, {
    get(target, prop) {
      const real = Reflect.get(target, prop) as unknown;
      if (typeof prop !== "string" || typeof real !== "function") return real;
      return (...args: unknown[]) => {
        const rule = take(binding, prop);
        if (rule) return Promise.reject(Object.assign(new Error(`model fault: ${binding}.${prop}`), { retryable: rule.retryable }));
        // Reflect.apply: an RPC stub's method is itself a stub, whose `.apply` would be a remote call.
        return Reflect.apply(real as (...a: unknown[]) => unknown, target, args);
      };
    },
  });
}

function wrapNamespace(binding: FaultBinding, ns: object): object {
  return new Proxy(ns, {
    get(target, prop) {
      const real = Reflect.get(target, prop) as unknown;
      if (prop === WRAPPED) return target;
      if (typeof real !== "function") return real;
      if (prop === "get") {
        return (...args: unknown[]) => {
          const stub = Reflect.apply(real as (...a: unknown[]) => object, target, args);
          // A real stub whenever nothing is armed here (the pool's helpers insist on real stubs).
          return rules.some((r) => r.binding === binding && r.left > 0) ? wrapStub(binding, stub) : stub;
        };
      }
      return (...args: unknown[]) => Reflect.apply(real as (...a: unknown[]) => unknown, target, args);
    },
  });
}

/**
 * Wraps the objects' shared env (idempotent). Called again after evictions:
 * restarted objects may get a fresh env. `conversation` names any live object.
 */
export async function installFaults(conversation: string): Promise<void> {
  await runInDurableObject(rawStub("CONVERSATIONS", conversation), (instance: unknown) => {
    const env = (instance as { env: Record<string, object> }).env;
    for (const binding of ["USERS", "NOTIFY", "LIVE", "CONVERSATIONS"] as const) {
      const ns = env[binding]!;
      if ((ns as Record<symbol, unknown>)[WRAPPED] === undefined) env[binding] = wrapNamespace(binding, ns);
    }
  });
}

/** The next `times` calls of `binding.method` between objects fail. */
export function armFault(binding: FaultBinding, method: string, times: number, retryable: boolean): void {
  faultStats.armed += 1;
  rules.push({ binding, method, left: times, retryable });
}

/** Rules not yet used up (a schedule's leftovers are dropped at its end). */
export function pendingFaults(): string[] {
  return rules.map((r) => `${r.binding}.${r.method}×${r.left}${r.retryable ? " (retryable)" : ""}`);
}

export function clearFaults(): void {
  rules.length = 0;
}
