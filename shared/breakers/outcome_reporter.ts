/**
 * Failure accounting of one CLOSED breaker in shared mode. The hot path
 * makes no Redis call: outcomes are added to a batch, and the batch is
 * reported in ONE script call per breaker every `flushMs`, or at once when
 * it holds `flushMax` outcomes or when this instance alone has seen
 * `fail_max` failures in a row (the breaker then holds calls until Redis
 * answers). A new epoch discards the batch: outcomes observed under an
 * earlier state say nothing about the current one.
 *
 * @module
 */
import { OutcomeBatch } from "./batch.ts";
import type { BreakerContext } from "./context.ts";
import type { LocalBreaker } from "./local_breaker.ts";
import type { BreakerPolicy } from "./policy.ts";
import type { SharedState } from "./scripts.ts";
import { BREAKER_REPORT } from "../redis/script_codes.ts";

/** What a reporter needs from its breaker. */
export interface ReporterHost {
  readonly name: string;
  readonly policy: BreakerPolicy;
  readonly ctx: BreakerContext;
  /** The shared epoch the pending outcomes were observed in. */
  epoch(): number;
  /** The local breaker while Redis is unreachable, else null. */
  local(): LocalBreaker | null;
  /** Adopts the shared state a script replied with. */
  apply(s: SharedState): void;
}

/** The batch of unreported outcomes of one breaker, and its flushing. */
export class OutcomeReporter {
  readonly #host: ReporterHost;
  #batch = new OutcomeBatch();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | null = null;
  #consecutive = 0;
  readonly #flushCallback = () => {
    this.#flushTimer = undefined;
    void this.#flush();
  };

  constructor(host: ReporterHost) {
    this.#host = host;
  }

  /** Failures in a row seen by this instance in the current epoch. */
  get consecutive(): number {
    return this.#consecutive;
  }

  /** This instance alone saw `fail_max` failures in a row and is reporting them. */
  get holding(): boolean {
    return this.#consecutive >= this.#host.policy.fail_max;
  }

  /** Adds one outcome observed in the current epoch while CLOSED. */
  add(failed: boolean, slow: boolean): void {
    this.#batch.add(failed, slow);
    if (failed) {
      if (++this.#consecutive >= this.#host.policy.fail_max) return this.#flushSoon(true);
    } else {
      this.#consecutive = 0;
    }
    this.#flushSoon(this.#batch.size >= this.#host.ctx.flushMax);
  }

  /** Reports what is pending now (registry stop). */
  async drain(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#flushing;
    await this.#flush();
  }

  /** Stops the flush timer without reporting. */
  halt(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  /** A new epoch: the pending outcomes are dropped and the count restarts. */
  restart(): void {
    this.#batch = new OutcomeBatch();
    this.#consecutive = 0;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  /**
   * Local mode takes over: stops the timer and hands over the outcomes not
   * reported yet (they are recent and belong to the local breaker).
   */
  handOver(): OutcomeBatch {
    this.halt();
    const batch = this.#batch;
    this.#batch = new OutcomeBatch();
    this.#consecutive = 0;
    return batch;
  }

  #flushSoon(now: boolean): void {
    if (this.#flushing !== null) return; // the running flush reschedules when it ends
    if (now) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      void this.#flush();
    } else if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(this.#flushCallback, this.#host.ctx.flushMs);
    }
  }

  #flush(): Promise<void> {
    if (this.#flushing !== null) return this.#flushing;
    const host = this.#host;
    if (this.#batch.size === 0 || host.local() !== null) return Promise.resolve();
    const batch = this.#batch;
    const epoch = host.epoch();
    this.#batch = new OutcomeBatch();
    this.#flushing = (async () => {
      const { metrics, scripts } = host.ctx;
      try {
        const s = await host.ctx.op(
          "report",
          () => scripts.report(host.name, host.policy, epoch, batch, {}),
        );
        metrics.flushes++;
        metrics.flushedOutcomes += batch.size;
        if (s.code === BREAKER_REPORT.notCounted) metrics.staleReports++;
        host.apply(s);
        // Every failure reported and still CLOSED (other instances' successes
        // broke the run): stop holding calls.
        if (s.code === BREAKER_REPORT.counted && this.#batch.size === 0 && this.holding) {
          this.#consecutive = 0;
        }
      } catch {
        // Redis unreachable: the registry has switched to local breakers;
        // these outcomes are recent and belong to the local one.
        host.local()?.ingest(batch);
      } finally {
        this.#flushing = null;
        if (this.#batch.size > 0 && host.local() === null) this.#flushSoon(this.holding);
      }
    })();
    return this.#flushing;
  }
}
