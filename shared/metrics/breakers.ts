/**
 * Circuit-breaker metrics of one process: `breaker_state` (one gauge, the
 * state as a number), `breaker_state_since_timestamp_seconds`,
 * `breaker_reset_timeout_seconds` (so one alert rule can compare "open for"
 * with each breaker's own reset timeout) and `breaker_transitions_total`.
 * The state is the registry's cached view: reading it costs no Redis call.
 *
 * @module
 */
import type { BreakerPolicy } from "../breakers/policy.ts";
import type { BreakerRegistry } from "../breakers/registry.ts";
import type { BreakerStateName, BreakerTransition } from "../breakers/types.ts";
import type { Metrics } from "./metrics.ts";

/** `breaker_state` values; the rules file compares against 2 (open). */
export const BREAKER_STATE_VALUES: Record<BreakerStateName, number> = {
  closed: 0,
  half_open: 1,
  open: 2,
  forced_open: 3,
  disabled: -1,
};

/** Options for {@linkcode observeBreakers}. */
export interface ObserveBreakersOptions {
  policies: Record<string, BreakerPolicy>;
  /** Epoch ms. */
  now: () => number;
}

/**
 * Feeds the breaker metrics from `registry`. A breaker already open when the
 * process starts is dated from the start (its real opening time is not
 * known here), so the "open too long" alert can only fire late, never early.
 */
export function observeBreakers(
  metrics: Metrics,
  registry: BreakerRegistry,
  options: ObserveBreakersOptions,
): void {
  const since = new Map<string, number>();
  const started = options.now() / 1000;
  for (const [name, policy] of Object.entries(options.policies)) {
    metrics.breakerResetTimeout.set({ breaker: name }, policy.reset_timeout_ms / 1000);
    metrics.breakerTransitions.inc({ breaker: name, to: "open" }, 0);
  }
  registry.events.addEventListener("transition", (event) => {
    const t = (event as CustomEvent<BreakerTransition>).detail;
    if (!Object.hasOwn(options.policies, t.name)) return;
    since.set(t.name, t.at / 1000);
    metrics.breakerTransitions.inc({ breaker: t.name, to: t.to });
  });
  metrics.collectors.push(() => {
    for (const name of Object.keys(options.policies)) {
      const state = registry.get(name).state;
      metrics.breakerState.set({ breaker: name }, BREAKER_STATE_VALUES[state]);
      metrics.breakerStateSince.set({ breaker: name }, since.get(name) ?? started);
    }
  });
}
