import assert from "node:assert/strict";
import { formatPolicy, formatState, retryAfterSeconds } from "./headers.ts";

Deno.test("formatPolicy() and formatState() write draft-11 structured-field list members", () => {
  const p = { algorithm: "sliding_window", limit: 600, window_s: 60, on_store_error: "fail_open" };
  assert.equal(formatPolicy("default", p as never), '"default";q=600;w=60');
  assert.equal(formatPolicy("sub", { ...p, window_s: 0.5 } as never), '"sub";q=600;w=1');
  assert.equal(formatState("default", 599, 60_000, 18_000), '"default";r=599;t=42');
  assert.equal(formatState("default", -3, 60_000, 59_001), '"default";r=0;t=1');
  assert.equal(formatState("default", 0, 1_000, 2_000), '"default";r=0;t=0');
});

Deno.test("retryAfterSeconds() is at least the time to reset and adds up to 10 % of the window", () => {
  assert.equal(retryAfterSeconds(42_000, 0, 60, () => 0), 42);
  assert.equal(retryAfterSeconds(42_000, 0, 60, () => 0.9999), 48);
  assert.equal(retryAfterSeconds(41_001, 0, 60, () => 0), 42);
  // Never 0, even when the reset has just passed.
  assert.equal(retryAfterSeconds(1_000, 5_000, 60, () => 0), 1);
  // Jitter is capped at 30 s and is at least 1 s.
  assert.equal(retryAfterSeconds(0, 0, 86_400, () => 0.9999), 31);
  assert.equal(retryAfterSeconds(0, 0, 1, () => 0.9999), 2);
});
