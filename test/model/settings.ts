/**
 * Settings of the model test from the environment. The Workers pool forwards
 * only VITE_-, MODEL_- and HOSTILE_-prefixed variables into the test runtime
 * (envPrefix in vitest.config.ts); both spellings are read (MODEL_SEED or
 * VITE_MODEL_SEED, …).
 */
const viteEnv = (import.meta as unknown as { env?: Record<string, string | undefined> }).env ?? {};
const nodeEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};

export function setting(name: string): string | undefined {
  const value = viteEnv[name] ?? viteEnv[`VITE_${name}`] ?? nodeEnv[name] ?? nodeEnv[`VITE_${name}`];
  return value === undefined || value === "" ? undefined : value;
}

export function intSetting(name: string, fallback: number): number;
export function intSetting(name: string, fallback: null): number | null;
export function intSetting(name: string, fallback: number | null): number | null {
  const raw = setting(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}
