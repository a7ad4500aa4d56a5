/**
 * The breaker state machine as data: discriminated unions, as in std's
 * `CircuitBreakerState`, but the shared copy lives in Redis.
 *
 * @module
 */

/** States of a breaker. FORCED_OPEN and DISABLED are set only by an operator. */
export type BreakerStateName = "closed" | "open" | "half_open" | "forced_open" | "disabled";

/** Every state, in a stable order. */
export const BREAKER_STATES: readonly BreakerStateName[] = [
  "closed",
  "open",
  "half_open",
  "forced_open",
  "disabled",
];

/**
 * What one instance knows about a breaker. Times are on the instance's
 * clock (converted from the remaining durations Redis reports, so clock skew
 * between instances and Redis does not matter). `epoch` grows on every
 * shared transition (it is `max(epoch + 1, redis time ms)`, so it keeps
 * growing even if Redis lost its data).
 */
export type BreakerView =
  | { state: "closed"; epoch: number }
  | { state: "open"; epoch: number; openUntil: number }
  | { state: "half_open"; epoch: number; probeUntil: number | null }
  | { state: "forced_open"; epoch: number }
  | { state: "disabled"; epoch: number };

/** A state change as published to listeners (and, later, to a WebSocket feed). */
export interface BreakerTransition {
  name: string;
  from: BreakerStateName;
  to: BreakerStateName;
  /** Shared epoch after the change; for local transitions, the epoch they started from. */
  epoch: number;
  /** Instance clock, ms. */
  at: number;
  /** e.g. "consecutive_failures", "failure_rate", "reset_timeout", "probe_failed", "operator". */
  reason: string | null;
  /** "redis": a shared transition; "local": decided in process while Redis was unreachable. */
  source: "redis" | "local";
  /** Instance that made the change (null when unknown). */
  by: string | null;
}

/** A breaker's state as `registry.list()` reports it. */
export interface BreakerSnapshot {
  name: string;
  state: BreakerStateName;
  /** Where the state comes from: the shared copy, or this instance's local fallback. */
  source: "redis" | "local";
  epoch: number;
  /** Remaining time in OPEN before a probe may run; null outside OPEN. */
  openRemainingMs: number | null;
  /** Remaining time of the probe lease; null when no probe runs. */
  probeRemainingMs: number | null;
  consecutiveFailures: number;
  /** CLOSED → OPEN trips counted in Redis (0 in local snapshots). */
  trips: number;
  reason: string | null;
  by: string | null;
}
