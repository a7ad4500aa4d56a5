/**
 * Outcomes of one flush interval, summarised so that the report script can
 * continue the consecutive-failure count exactly as if the calls had been
 * reported one by one.
 *
 * @module
 */

/** A batch of call outcomes of one breaker (order-aware for consecutive failures). */
export class OutcomeBatch {
  successes = 0;
  /** Failures, slow calls included. */
  failures = 0;
  /** Slow calls among the failures. */
  slow = 0;
  /** Failures before the first success (all of them while there is none). */
  lead = 0;
  /** Longest failure run after the first success. */
  maxRun = 0;
  /** Current failure run after the first success (the tail once the batch closes). */
  run = 0;

  /** Adds one outcome. */
  add(failed: boolean, slow: boolean): void {
    if (!failed) {
      this.successes++;
      this.run = 0;
      return;
    }
    this.failures++;
    if (slow) this.slow++;
    if (this.successes === 0) {
      this.lead++;
    } else if (++this.run > this.maxRun) {
      this.maxRun = this.run;
    }
  }

  /** Number of outcomes. */
  get size(): number {
    return this.successes + this.failures;
  }

  /** Failures after the last success (0 while there is no success: see `lead`). */
  get tail(): number {
    return this.run;
  }
}

/**
 * Consecutive-failure count after applying `batch` to `consecutive`, and
 * whether some run reached `failMax`. The Lua report script does the same.
 */
export function continueRun(
  consecutive: number,
  batch: OutcomeBatch,
  failMax: number,
): { consecutive: number; tripped: boolean } {
  if (batch.successes === 0) {
    const c = consecutive + batch.failures;
    return { consecutive: c, tripped: batch.failures > 0 && c >= failMax };
  }
  const tripped = (batch.lead > 0 && consecutive + batch.lead >= failMax) ||
    batch.maxRun >= failMax;
  return { consecutive: batch.tail, tripped };
}
