/**
 * How a breaker transition is made known in this process: counted in the
 * metrics, logged, and dispatched to the registry's listeners. Transitions
 * this instance made (or decided locally) are logged at info, openings at
 * warn; those made by another instance, which every instance observes, only
 * at debug.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { BreakerMetrics } from "./context.ts";
import type { BreakerTransition } from "./types.ts";

/** Where {@linkcode announceTransition} reports. */
export interface TransitionSink {
  readonly events: EventTarget;
  readonly metrics: BreakerMetrics;
  readonly log: Logger | null;
  /** Transitions made by this instance are logged louder than those observed. */
  readonly instanceId: string;
}

/** Counts, logs and dispatches (as `CustomEvent<BreakerTransition>` "transition") one transition. */
export function announceTransition(t: BreakerTransition, sink: TransitionSink): void {
  const key = `${t.from}>${t.to}`;
  sink.metrics.transitions[key] = (sink.metrics.transitions[key] ?? 0) + 1;
  const fields = {
    breaker: t.name,
    from: t.from,
    to: t.to,
    reason: t.reason,
    source: t.source,
    by: t.by,
    epoch: t.epoch,
  };
  if (t.source === "local" || t.by === sink.instanceId) {
    const opened = t.to === "open" || t.to === "forced_open";
    sink.log?.[opened ? "warn" : "info"]("breaker transition", fields);
  } else {
    sink.log?.debug("breaker transition observed", fields);
  }
  sink.events.dispatchEvent(new CustomEvent<BreakerTransition>("transition", { detail: t }));
}
