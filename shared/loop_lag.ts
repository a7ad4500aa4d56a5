/**
 * How long this process's own event loop has been late: the time a call
 * "took" while this process was not running (a CPU-starved machine, a long
 * GC pause, a synchronous stretch of our own code) says nothing about the
 * downstream. The breakers judge slow calls on durations net of it, and the
 * lead writes' transaction deadline (shared/leads/transaction.ts) counts
 * net time too (docs/breakers.md, "Slow calls and a starved process"), the
 * way a client measuring a dependency's latency should not charge it with
 * its own queueing.
 *
 * The meter wakes every `everyMs`; each wake-up later than planned adds the
 * delay beyond `graceMs` (timer jitter) to a running total. `stalledMs()`
 * includes the stall in progress (the time past the planned wake-up), so a
 * call ending inside a stall is credited with it before the meter's own
 * timer has run. A stall is undercounted by up to `everyMs + graceMs` (the
 * part before the planned wake-up), never overcounted: the error leaves slow
 * calls slightly more likely to be judged slow, not less.
 *
 * @module
 */

/** A source of this process's event-loop stall time. */
export interface LoopLag {
  /** Ms the event loop has been late in all, the stall in progress included; never decreases. */
  stalledMs(): number;
}

/** A meter that counts only while started. */
export interface LoopLagMeter extends LoopLag {
  start(): void;
  stop(): void;
}

/** Options of {@linkcode createLoopLagMeter}. */
export interface LoopLagOptions {
  /**
   * Time between wake-ups, ms. 40 a second cost an idle process a few ms of
   * CPU per second (docs/benchmarks.md, "the meter's wake-ups"). @default 25
   */
  everyMs?: number;
  /** Lateness of one wake-up not counted (timer jitter), ms. @default 5 */
  graceMs?: number;
  /** Monotonic clock, ms. @default performance.now */
  now?: () => number;
}

/** Creates a stopped meter. */
export function createLoopLagMeter(options: LoopLagOptions = {}): LoopLagMeter {
  const everyMs = options.everyMs ?? 25;
  const graceMs = options.graceMs ?? 5;
  const now = options.now ?? (() => performance.now());
  let total = 0;
  let due: number | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = (t: number) => due === null ? 0 : Math.max(0, t - due - graceMs);
  const tick = () => {
    const t = now();
    total += late(t);
    due = t + everyMs;
    timer = setTimeout(tick, everyMs);
    // A meter never keeps a process alive.
    Deno.unrefTimer(timer);
  };
  return {
    stalledMs: () => total + late(now()),
    start() {
      if (due === null) tick();
    },
    stop() {
      clearTimeout(timer);
      total += late(now());
      due = null;
    },
  };
}

/** A source that never reports a stall (no meter). */
export const NO_LAG: LoopLag = { stalledMs: () => 0 };

/** Time since `started` (on `now`) minus the stall accrued since `stalledAt`. */
export function netElapsed(
  now: () => number,
  lag: LoopLag,
  started: number,
  stalledAt: number,
): number {
  return now() - started - (lag.stalledMs() - stalledAt);
}

/**
 * Calls `fire` once `ms` of net time (wall time minus this process's stall)
 * has passed: when the timer comes due having been partly eaten by a stall,
 * it waits again for the rest. Returns a cancel function.
 */
export function netTimer(
  ms: number,
  now: () => number,
  lag: LoopLag,
  fire: () => void,
): () => void {
  const started = now();
  const stalledAt = lag.stalledMs();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    const left = ms - netElapsed(now, lag, started, stalledAt);
    if (left <= 0) fire();
    else timer = setTimeout(check, left);
  };
  timer = setTimeout(check, ms);
  return () => clearTimeout(timer);
}
