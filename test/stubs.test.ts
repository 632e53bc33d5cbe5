/** The Durable Object call helper: retry only `retryable && !overloaded`, on a fresh stub each time. */
import { describe, expect, it } from "vitest";
import { isOverloaded, isRetryable, withRetry } from "../src/platform/rpc";

function platformError(flags: { retryable?: boolean; overloaded?: boolean }): Error {
  return Object.assign(new Error("platform"), flags);
}

describe("withRetry", () => {
  it("retries a retryable error on a fresh stub and returns the result", async () => {
    const stubs: number[] = [];
    let made = 0;
    const result = await withRetry(
      () => ++made,
      async (stub) => {
        stubs.push(stub);
        if (stubs.length < 3) throw platformError({ retryable: true });
        return "ok";
      },
    );
    expect(result).toBe("ok");
    expect(stubs).toEqual([1, 2, 3]); // a new stub per attempt
  });

  it("never retries an overloaded object, nor an ordinary error", async () => {
    for (const err of [platformError({ retryable: true, overloaded: true }), new Error("bug"), platformError({ retryable: false })]) {
      let calls = 0;
      await expect(
        withRetry(
          () => null,
          async () => {
            calls++;
            throw err;
          },
        ),
      ).rejects.toBe(err);
      expect(calls).toBe(1);
    }
  });

  it("gives up after four attempts", async () => {
    let calls = 0;
    const err = platformError({ retryable: true });
    await expect(
      withRetry(
        () => null,
        async () => {
          calls++;
          throw err;
        },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(4);
  });

  it("classifies platform errors", () => {
    expect(isRetryable(platformError({ retryable: true }))).toBe(true);
    expect(isRetryable(platformError({ retryable: true, overloaded: true }))).toBe(false);
    expect(isRetryable("nope")).toBe(false);
    expect(isOverloaded(platformError({ overloaded: true }))).toBe(true);
    // SQLite out of memory (a local workerd past its objects' shared heap): 503 overloaded, not 500.
    expect(isOverloaded(new Error("out of memory: SQLITE_NOMEM"))).toBe(true);
    expect(isOverloaded(new Error("bug"))).toBe(false);
  });
});
