import assert from "node:assert/strict";
import { fakeClock } from "../../testing/clock.ts";
import { Deadlines } from "./deadlines.ts";

/** Deadlines on a fake clock whose single timer the test fires by hand. */
function fakeDeadlines(resolutionMs = 100) {
  const clock = fakeClock();
  const timers = new Map<number, { fn: () => void; at: number }>();
  let nextId = 1;
  const deadlines = new Deadlines({
    now: clock.now,
    resolutionMs,
    setTimer: (fn, ms) => {
      timers.set(nextId, { fn, at: clock.now() + ms });
      return nextId++;
    },
    clearTimer: (id) => void timers.delete(id as number),
  });
  /** Moves the clock and fires every timer due by then, earliest first. */
  const advance = (ms: number) => {
    const until = clock.now() + ms;
    for (;;) {
      const due = [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at);
      if (due.length === 0) break;
      const [id, t] = due[0]!;
      timers.delete(id);
      clock.set(Math.max(clock.now(), t.at));
      t.fn();
    }
    clock.set(until);
  };
  return { clock, deadlines, timers, advance };
}

Deno.test("Deadlines run each callback once, never before its deadline, in deadline order", () => {
  const { clock, deadlines, timers, advance } = fakeDeadlines();
  const ran: string[] = [];
  const t0 = clock.now();
  deadlines.add(t0 + 250, () => ran.push("b"));
  deadlines.add(t0 + 50, () => ran.push("a"));
  deadlines.add(t0 + 5_000, () => ran.push("c"));
  assert.equal(timers.size, 1, "one runtime timer for all of them");
  advance(40);
  assert.deepEqual(ran, []);
  advance(60);
  assert.deepEqual(ran, ["a"]);
  advance(199);
  assert.deepEqual(ran, ["a"], "b's deadline (250) falls in the bucket ending at 300");
  advance(1);
  assert.deepEqual(ran, ["a", "b"]);
  advance(10_000);
  assert.deepEqual(ran, ["a", "b", "c"]);
  assert.equal(deadlines.size, 0);
  assert.equal(timers.size, 0, "no timer left once nothing waits");
});

Deno.test("Deadlines.cancel forgets a callback; the timer stops when nothing waits", () => {
  const { clock, deadlines, timers, advance } = fakeDeadlines();
  const ran: number[] = [];
  const first = deadlines.add(clock.now() + 100, () => ran.push(1));
  const second = deadlines.add(clock.now() + 100, () => ran.push(2));
  const far = deadlines.add(clock.now() + 30 * 86_400_000, () => ran.push(3));
  deadlines.cancel(first);
  advance(100);
  assert.deepEqual(ran, [2]);
  deadlines.cancel(second); // already ran: a no-op
  deadlines.cancel(far);
  assert.equal(deadlines.size, 0);
  assert.equal(timers.size, 0);
});

Deno.test("Deadlines keep running the others when a callback throws, and report it", () => {
  const errors: unknown[] = [];
  const clock = fakeClock();
  let fire: (() => void) | undefined;
  const deadlines = new Deadlines({
    now: clock.now,
    setTimer: (fn) => {
      fire = fn;
      return 1;
    },
    clearTimer: () => {},
    onError: (err) => errors.push(err),
  });
  const ran: number[] = [];
  deadlines.add(clock.now() + 10, () => {
    throw new Error("boom");
  });
  deadlines.add(clock.now() + 10, () => ran.push(1));
  clock.advance(100);
  fire!();
  assert.deepEqual(ran, [1]);
  assert.equal((errors[0] as Error).message, "boom");
});

Deno.test("Deadlines drop stale heap entries of cancelled far-off buckets", () => {
  const { clock, deadlines, advance } = fakeDeadlines(10);
  const keep = deadlines.add(clock.now() + 1_000_000, () => {});
  for (let i = 0; i < 10_000; i++) {
    deadlines.cancel(deadlines.add(clock.now() + 3_600_000 + i * 10, () => {}));
  }
  assert.equal(deadlines.size, 1);
  assert.ok(deadlines.buckets <= 66, `bounded by live buckets, not by churn: ${deadlines.buckets}`);
  const ran: number[] = [];
  deadlines.add(clock.now() + 20, () => ran.push(1));
  advance(20);
  assert.deepEqual(ran, [1]);
  deadlines.cancel(keep);
  assert.equal(deadlines.size, 0);
});

Deno.test("Deadlines reject a resolution that is not positive", () => {
  assert.throws(() => new Deadlines({ resolutionMs: 0 }), RangeError);
});
