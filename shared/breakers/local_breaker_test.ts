import assert from "node:assert/strict";
import { LocalBreaker, type LocalTransition } from "./local_breaker.ts";
import { type BreakerPolicyInput, resolvePolicies } from "./policy.ts";
import { fakeClock } from "../../testing/clock.ts";

function setup(input: BreakerPolicyInput) {
  const clock = fakeClock(1_000_000);
  const transitions: LocalTransition[] = [];
  const policy = resolvePolicies({ t: input }).t!;
  const breaker = new LocalBreaker(policy, {
    now: clock.now,
    onTransition: (t) => transitions.push(t),
  });
  return { breaker, transitions, advance: clock.advance };
}

Deno.test("LocalBreaker trips after fail_max consecutive failures; a success resets the count", () => {
  const { breaker, transitions } = setup({ fail_max: 3, reset_timeout_ms: 1000 });
  breaker.record("failure");
  breaker.record("failure");
  breaker.record("success");
  breaker.record("failure");
  breaker.record("failure");
  assert.equal(breaker.state, "closed");
  assert.equal(breaker.consecutiveFailures, 2);
  breaker.record("failure");
  assert.equal(breaker.state, "open");
  assert.deepEqual(transitions, [{ from: "closed", to: "open", reason: "consecutive_failures" }]);
  assert.deepEqual(breaker.admit(), { kind: "reject", state: "open", retryAfterMs: 1000 });
});

Deno.test("LocalBreaker ignores ignored outcomes and counts slow calls as failures", () => {
  const { breaker } = setup({ fail_max: 2, reset_timeout_ms: 1000 });
  breaker.record("failure");
  breaker.record("ignored");
  assert.equal(breaker.consecutiveFailures, 1);
  breaker.record("success", true);
  assert.equal(breaker.state, "open");
});

Deno.test("LocalBreaker lets exactly one probe through after the reset timeout", () => {
  const { breaker, advance, transitions } = setup({ fail_max: 1, reset_timeout_ms: 200 });
  breaker.record("failure");
  advance(199);
  assert.equal(breaker.admit().kind, "reject");
  advance(1);
  assert.deepEqual(breaker.admit(), { kind: "probe" });
  assert.equal(breaker.state, "half_open");
  for (let i = 0; i < 100; i++) assert.equal(breaker.admit().kind, "reject");
  breaker.endProbe("failure");
  assert.equal(breaker.state, "open");
  advance(200);
  assert.deepEqual(breaker.admit(), { kind: "probe" });
  breaker.endProbe("success");
  assert.equal(breaker.state, "closed");
  assert.deepEqual(transitions.map((t) => `${t.from}>${t.to}:${t.reason}`), [
    "closed>open:consecutive_failures",
    "open>half_open:reset_timeout",
    "half_open>open:probe_failed",
    "open>half_open:reset_timeout",
    "half_open>closed:probe_succeeded",
  ]);
});

Deno.test("LocalBreaker needs success_threshold probe successes and frees the lease between them", () => {
  const { breaker, advance } = setup({ fail_max: 1, reset_timeout_ms: 100, success_threshold: 2 });
  breaker.record("failure");
  advance(100);
  assert.equal(breaker.admit().kind, "probe");
  breaker.endProbe("success");
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.admit().kind, "probe");
  breaker.endProbe("ignored");
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.admit().kind, "probe");
  breaker.endProbe("success");
  assert.equal(breaker.state, "closed");
});

Deno.test("LocalBreaker takes over a probe lease that expired", () => {
  const { breaker, advance } = setup({
    fail_max: 1,
    reset_timeout_ms: 100,
    probe_lease_ms: 500,
  });
  breaker.record("failure");
  advance(100);
  assert.equal(breaker.admit().kind, "probe");
  advance(499);
  assert.deepEqual(breaker.admit(), { kind: "reject", state: "half_open", retryAfterMs: 1 });
  advance(1);
  assert.equal(breaker.admit().kind, "probe");
});

Deno.test("LocalBreaker failure-rate rule waits for the minimum volume and forgets old buckets", () => {
  const { breaker, advance, transitions } = setup({
    fail_max: 100,
    reset_timeout_ms: 1000,
    failure_rate: { threshold_pct: 50, window_ms: 1000, min_calls: 10 },
  });
  for (let i = 0; i < 4; i++) {
    breaker.record("failure");
    breaker.record("success");
  }
  assert.equal(breaker.state, "closed"); // 4/8 failed, below the volume
  advance(1000); // those 8 calls leave the window
  breaker.record("failure");
  breaker.record("success");
  assert.equal(breaker.state, "closed");
  for (let i = 0; i < 8; i++) breaker.record(i < 4 ? "failure" : "success");
  assert.equal(breaker.state, "open"); // 5/10 failed
  assert.equal(transitions[0]!.reason, "failure_rate");
});

Deno.test("LocalBreaker starts from a shared view and keeps operator states", () => {
  const policy = resolvePolicies({ t: { fail_max: 1, reset_timeout_ms: 100 } }).t!;
  const forced = new LocalBreaker(policy, { initial: { state: "forced_open", epoch: 7 } });
  assert.deepEqual(forced.admit(), { kind: "reject", state: "forced_open", retryAfterMs: null });
  const disabled = new LocalBreaker(policy, { initial: { state: "disabled", epoch: 7 } });
  disabled.record("failure");
  assert.deepEqual(disabled.admit(), { kind: "call" });
  const open = new LocalBreaker(policy, {
    now: () => 0,
    initial: { state: "open", epoch: 7, openUntil: 50 },
  });
  assert.equal(open.openRemainingMs(), 50);
});

Deno.test("LocalBreaker.probeAnswered() half-opens an OPEN breaker only", () => {
  const transitions: string[] = [];
  const b = new LocalBreaker(resolvePolicies({ x: { fail_max: 1, reset_timeout_ms: 60_000 } }).x!, {
    onTransition: (t) => transitions.push(`${t.from}>${t.to} ${t.reason}`),
  });
  assert.equal(b.probeAnswered(), false, "CLOSED stays CLOSED");
  b.record("failure");
  assert.equal(b.state, "open");
  assert.equal(b.probeAnswered(), true);
  assert.equal(b.state, "half_open");
  assert.equal(b.admit().kind, "probe");
  assert.deepEqual(transitions, [
    "closed>open consecutive_failures",
    "open>half_open probe_answered",
  ]);
});
