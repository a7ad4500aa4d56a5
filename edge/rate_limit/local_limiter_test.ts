import assert from "node:assert/strict";
import type { RateLimitPolicy } from "../../shared/config/mod.ts";
import { createLocalLimiter } from "./local_limiter.ts";

function policy(p: Partial<RateLimitPolicy>): RateLimitPolicy {
  return {
    algorithm: "sliding_window",
    limit: 4,
    window_s: 10,
    on_store_error: "fail_open",
    ...p,
  };
}

function run(limiter: ReturnType<typeof createLocalLimiter>, n: number, now: number): boolean[] {
  return Array.from({ length: n }, () => limiter.limit("a", now).success);
}

Deno.test("local sliding window weights the previous window like the Lua script", () => {
  const limiter = createLocalLimiter(policy({}));
  assert.deepEqual(run(limiter, 5, 1_000), [true, true, true, true, false]);
  // Half-way through the next window: floor(0.5 * 4) = 2 of the old requests still count.
  assert.deepEqual(run(limiter, 3, 15_000), [true, true, false]);
  assert.deepEqual(limiter.limit("a", 15_000), { success: false, remaining: 0, reset: 20_000 });
  // Two windows later nothing is carried over.
  assert.deepEqual(run(limiter, 5, 30_000), [true, true, true, true, false]);
});

Deno.test("local fixed window resets at the aligned window edge", () => {
  const limiter = createLocalLimiter(policy({ algorithm: "fixed_window", limit: 2 }));
  assert.deepEqual(limiter.limit("a", 9_000), { success: true, remaining: 1, reset: 10_000 });
  assert.deepEqual(run(limiter, 2, 9_999), [true, false]);
  assert.deepEqual(run(limiter, 3, 10_000), [true, true, false]);
});

Deno.test("local token bucket refills `refill` tokens per window up to the capacity", () => {
  const limiter = createLocalLimiter(policy({ algorithm: "token_bucket", limit: 3, refill: 1 }));
  assert.deepEqual(limiter.limit("a", 0), { success: true, remaining: 2, reset: 10_000 });
  assert.deepEqual(run(limiter, 3, 5_000), [true, true, false]);
  assert.deepEqual(run(limiter, 2, 10_000), [true, false]);
  assert.deepEqual(run(limiter, 4, 100_000), [true, true, true, false]);
});

Deno.test("the local limiter tracks at most maxEntries identities", () => {
  const limiter = createLocalLimiter(policy({ limit: 1 }), { maxEntries: 3 });
  for (const id of ["a", "b", "c", "d", "e"]) limiter.limit(id, 1_000);
  assert.equal(limiter.size, 3);
  // "e" is still tracked and limited; "a" was forgotten first.
  assert.equal(limiter.limit("e", 1_000).success, false);
  assert.equal(limiter.limit("a", 1_000).success, true);
});
