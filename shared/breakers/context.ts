/**
 * What a breaker shares with its registry: counters, the Redis operations
 * (with the store timeout and the switch to local breakers) and the
 * transition sink; plus the conversion of a shared state to a local view.
 *
 * @module
 */
import type { LoopLag } from "../loop_lag.ts";
import type { BreakerScripts, SharedState } from "./scripts.ts";
import type { BreakerTransition, BreakerView } from "./types.ts";

/** Metrics of a registry (shared by its breakers); plain counters, read at will. */
export interface BreakerMetrics {
  /** Transitions this instance observed or made, by `"from>to"`. */
  transitions: Record<string, number>;
  /** Calls refused (BreakerOpenError). */
  rejected: number;
  /** Probes this instance ran (shared and local). */
  probes: number;
  /** Report script calls, and the outcomes they carried. */
  flushes: number;
  flushedOutcomes: number;
  /** Reports Redis did not count (the breaker had changed state meanwhile). */
  staleReports: number;
  /** Redis operations that failed or timed out. */
  storeErrors: number;
  /** Times the registry switched to local breakers, and back. */
  fallbacks: number;
  resyncs: number;
  /** Calls decided by a local breaker while Redis was unreachable. */
  localDecisions: number;
  /** Event subscriptions re-opened after the stream died. */
  resubscribes: number;
}

/** Creates zeroed metrics. */
export function createBreakerMetrics(): BreakerMetrics {
  return {
    transitions: {},
    rejected: 0,
    probes: 0,
    flushes: 0,
    flushedOutcomes: 0,
    staleReports: 0,
    storeErrors: 0,
    fallbacks: 0,
    resyncs: 0,
    localDecisions: 0,
    resubscribes: 0,
  };
}

/** What a breaker needs from its registry. */
export interface BreakerContext {
  readonly instanceId: string;
  readonly now: () => number;
  /** This process's event-loop stall: slow calls are judged net of it (loop_lag.ts). */
  readonly lag: LoopLag;
  readonly scripts: BreakerScripts;
  readonly flushMs: number;
  readonly flushMax: number;
  readonly metrics: BreakerMetrics;
  /** Runs a Redis operation with the store timeout; a failure switches the registry to local breakers, then rethrows. */
  op<T>(what: string, fn: () => Promise<T>): Promise<T>;
  emit(t: BreakerTransition): void;
}

/** Converts a shared state (durations) into a view on this instance's clock. */
export function toView(s: SharedState, now: number): BreakerView {
  switch (s.state) {
    case "open":
      return { state: "open", epoch: s.epoch, openUntil: now + Math.max(0, s.openRemainingMs) };
    case "half_open":
      return {
        state: "half_open",
        epoch: s.epoch,
        probeUntil: s.probeRemainingMs >= 0 ? now + s.probeRemainingMs : null,
      };
    default:
      return { state: s.state, epoch: s.epoch };
  }
}
