/**
 * An in-process breaker with the same rules as the Redis scripts. A registry
 * switches every breaker to one of these while Redis is unreachable: calls
 * stay protected (never "assume CLOSED"), and the local state is reconciled
 * with the shared one when Redis returns (see registry.ts).
 *
 * @module
 */
import { type BreakerPolicy, bucketMs } from "./policy.ts";
import { continueRun, OutcomeBatch } from "./batch.ts";
import type { Outcome } from "./classify.ts";
import type { BreakerStateName, BreakerView } from "./types.ts";

type LocalState =
  | { state: "closed"; consecutive: number }
  | { state: "open"; openUntil: number }
  | { state: "half_open"; probeUntil: number | null; successes: number }
  | { state: "forced_open" }
  | { state: "disabled" };

/** What to do with one call. */
export type Admission =
  | { kind: "call" }
  | { kind: "probe" }
  | { kind: "reject"; state: BreakerStateName; retryAfterMs: number | null };

/** A local transition, with the rule that caused it. */
export interface LocalTransition {
  from: BreakerStateName;
  to: BreakerStateName;
  reason: string;
}

/** Options for {@linkcode LocalBreaker}. */
export interface LocalBreakerOptions {
  /** Clock, ms. @default Date.now */
  now?: () => number;
  /** State to start from (e.g. the last shared view). @default closed */
  initial?: BreakerView;
  /** Called on every transition. */
  onTransition?: (t: LocalTransition) => void;
}

/** Sliding time window of failure-rate buckets (a ring of 10). */
class RateWindow {
  readonly #bucketMs: number;
  readonly #index: number[];
  readonly #calls: number[];
  readonly #failures: number[];

  constructor(bucket: number, buckets: number) {
    this.#bucketMs = bucket;
    this.#index = new Array(buckets).fill(-1);
    this.#calls = new Array(buckets).fill(0);
    this.#failures = new Array(buckets).fill(0);
  }

  add(calls: number, failures: number, now: number): void {
    const idx = Math.floor(now / this.#bucketMs);
    const slot = idx % this.#index.length;
    if (this.#index[slot] !== idx) {
      this.#index[slot] = idx;
      this.#calls[slot] = 0;
      this.#failures[slot] = 0;
    }
    this.#calls[slot]! += calls;
    this.#failures[slot]! += failures;
  }

  totals(now: number): { calls: number; failures: number } {
    const idx = Math.floor(now / this.#bucketMs);
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < this.#index.length; i++) {
      if (this.#index[i]! > idx - this.#index.length) {
        calls += this.#calls[i]!;
        failures += this.#failures[i]!;
      }
    }
    return { calls, failures };
  }

  clear(): void {
    this.#index.fill(-1);
  }
}

/** The breaker state machine in process memory. */
export class LocalBreaker {
  readonly #policy: BreakerPolicy;
  readonly #now: () => number;
  readonly #onTransition: (t: LocalTransition) => void;
  readonly #window: RateWindow | null;
  #state: LocalState;

  constructor(policy: BreakerPolicy, options: LocalBreakerOptions = {}) {
    this.#policy = policy;
    this.#now = options.now ?? Date.now;
    this.#onTransition = options.onTransition ?? (() => {});
    const rate = policy.failure_rate;
    this.#window = rate ? new RateWindow(bucketMs(rate), 10) : null;
    const initial = options.initial ?? { state: "closed", epoch: 0 };
    switch (initial.state) {
      case "closed":
        this.#state = { state: "closed", consecutive: 0 };
        break;
      case "open":
        this.#state = { state: "open", openUntil: initial.openUntil };
        break;
      case "half_open":
        this.#state = { state: "half_open", probeUntil: null, successes: 0 };
        break;
      default:
        this.#state = { state: initial.state };
    }
  }

  /** Current state (OPEN stays OPEN until a call finds its reset timeout over). */
  get state(): BreakerStateName {
    return this.#state.state;
  }

  /** Consecutive failures counted in CLOSED. */
  get consecutiveFailures(): number {
    return this.#state.state === "closed" ? this.#state.consecutive : 0;
  }

  /** Remaining OPEN time (0 once a probe may run); null outside OPEN. */
  openRemainingMs(): number | null {
    return this.#state.state === "open" ? Math.max(0, this.#state.openUntil - this.#now()) : null;
  }

  /** Remaining probe lease; null when no probe runs. */
  probeRemainingMs(): number | null {
    const s = this.#state;
    if (s.state !== "half_open" || s.probeUntil === null) return null;
    const left = s.probeUntil - this.#now();
    return left > 0 ? left : null;
  }

  #to(next: LocalState, reason: string): void {
    const from = this.#state.state;
    this.#state = next;
    this.#window?.clear();
    this.#onTransition({ from, to: next.state, reason });
  }

  #open(reason: string): void {
    this.#to({ state: "open", openUntil: this.#now() + this.#policy.reset_timeout_ms }, reason);
  }

  /** Decides one call: run it, run it as the probe, or refuse it. */
  admit(): Admission {
    const s = this.#state;
    switch (s.state) {
      case "closed":
      case "disabled":
        return { kind: "call" };
      case "forced_open":
        return { kind: "reject", state: "forced_open", retryAfterMs: null };
      case "open": {
        const left = s.openUntil - this.#now();
        if (left > 0) return { kind: "reject", state: "open", retryAfterMs: left };
        this.#to({ state: "half_open", probeUntil: null, successes: 0 }, "reset_timeout");
        return this.admit();
      }
      case "half_open": {
        const now = this.#now();
        // A lease that outlived the probe's timeout belongs to a lost probe.
        if (s.probeUntil !== null && s.probeUntil > now) {
          return { kind: "reject", state: "half_open", retryAfterMs: s.probeUntil - now };
        }
        s.probeUntil = now + this.#policy.probe_lease_ms;
        return { kind: "probe" };
      }
    }
  }

  /** Records the outcome of a call admitted as "call". */
  record(outcome: Outcome, slow = false): void {
    if (outcome === "ignored") return;
    const batch = new OutcomeBatch();
    batch.add(outcome === "failure" || slow, slow);
    this.ingest(batch);
  }

  /** Records a batch of CLOSED outcomes (e.g. a flush Redis did not take). */
  ingest(batch: OutcomeBatch): void {
    const s = this.#state;
    if (s.state !== "closed" || batch.size === 0) return;
    const run = continueRun(s.consecutive, batch, this.#policy.fail_max);
    s.consecutive = run.consecutive;
    if (run.tripped) return this.#open("consecutive_failures");
    const rule = this.#policy.failure_rate;
    if (rule && this.#window) {
      const now = this.#now();
      this.#window.add(batch.size, batch.failures, now);
      const { calls, failures } = this.#window.totals(now);
      if (calls >= rule.min_calls && failures * 100 >= rule.threshold_pct * calls) {
        this.#open("failure_rate");
      }
    }
  }

  /** Records the outcome of the probe ("ignored" just frees the lease). */
  endProbe(outcome: Outcome, slow = false): void {
    const s = this.#state;
    if (s.state !== "half_open") return;
    if (outcome === "ignored") {
      s.probeUntil = null;
    } else if (outcome === "failure" || slow) {
      this.#open("probe_failed");
    } else if (++s.successes >= this.#policy.success_threshold) {
      this.#to({ state: "closed", consecutive: 0 }, "probe_succeeded");
    } else {
      s.probeUntil = null;
    }
  }

  /**
   * The downstream answered a background health check: OPEN moves to
   * HALF_OPEN now (the next call is the probe) instead of at the reset
   * timeout; any other state is left alone. True when it moved.
   */
  probeAnswered(): boolean {
    if (this.#state.state !== "open") return false;
    this.#to({ state: "half_open", probeUntil: null, successes: 0 }, "probe_answered");
    return true;
  }

  /** Operator actions, applied locally. */
  set(state: "closed" | "forced_open" | "disabled", reason = "operator"): void {
    if (state === "closed") this.#to({ state: "closed", consecutive: 0 }, reason);
    else this.#to({ state }, reason);
  }
}
