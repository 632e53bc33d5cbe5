/**
 * HTTP requests straight into the Worker's fetch handler (src/index.ts) instead of
 * through `SELF`, for the high-volume suites (model, hostile).
 *
 * Why: in @cloudflare/vitest-pool-workers 0.15.1, `SELF.fetch` latency grows
 * with every call made in a test file (measured: GET /healthz 5 ms for the
 * first 100 calls, 42 ms for calls 300-400, ~300 ms after 1,000), while
 * `worker.fetch(request, env, ctx)` stays at ~0.1 ms. The Worker code under
 * test is the same; only the static-assets layer in front of it is skipped,
 * and no API path is served by assets (`not_found_handling = "none"`).
 */
import { createExecutionContext, env } from "cloudflare:test";
import worker from "../../src/index";
import type { Env } from "../../src/env";
import { BASE } from "../helpers";

export async function directFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const request = new Request(BASE + path, init);
  return worker.fetch(request, env as unknown as Env, createExecutionContext());
}

export interface Res<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function directJson<T>(method: string, path: string, token: string | null, body?: unknown): Promise<Res<T>> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await directFetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** A device acting through the Worker (the subset of test/helpers.ts Device the model needs). */
export class DirectDevice {
  constructor(
    readonly user: string,
    readonly device: string,
    readonly jwt: string,
  ) {}

  get<T>(path: string) {
    return directJson<T>("GET", path, this.jwt);
  }
  post<T>(path: string, body: unknown = {}) {
    return directJson<T>("POST", path, this.jwt, body);
  }
  delete<T>(path: string) {
    return directJson<T>("DELETE", path, this.jwt);
  }
}
