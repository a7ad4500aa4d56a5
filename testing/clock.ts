/**
 * A fake clock for code that takes an injected `now` (docs/operations.md,
 * "Testing": no real sleeps where time can be injected).
 *
 * @module
 */

/** Mid-2026, in ms; suites start their fake clock here unless they need another instant. */
export const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

/** A clock that only moves when told to. */
export interface FakeClock {
  now: () => number;
  /** Moves the clock forward by `ms`. */
  advance: (ms: number) => void;
  /** Sets the clock to `ms` (epoch milliseconds). */
  set: (ms: number) => void;
}

/** A {@linkcode FakeClock} starting at `start`. @default T0 */
export function fakeClock(start = T0): FakeClock {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms), set: (ms) => void (t = ms) };
}
