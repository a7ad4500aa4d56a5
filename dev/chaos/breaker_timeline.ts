/**
 * The breakers' transitions over a chaos run, summarised per breaker: how
 * often each opened, how long it stayed away from CLOSED in all, and when it
 * closed for good after the last fault ended (the recovery time the
 * starvation runs of docs/reliability.md measure), plus the transitions
 * themselves (capped) for a report.
 *
 * @module
 */
import type { BreakerTransition } from "../../shared/breakers/types.ts";

/** One breaker's run. Times are ms; `null` when it never left CLOSED (or never came back). */
export interface BreakerRunSummary {
  name: string;
  /** Transitions into OPEN (shared and local). */
  opens: number;
  /** Time spent out of CLOSED between `t0` and `end`. */
  not_closed_ms: number;
  /** Last transition to CLOSED, ms after the last fault ended (0 when it closed before). */
  closed_after_last_fault_ms: number | null;
  /** Still out of CLOSED at `end`. */
  open_at_end: boolean;
}

/** A transition as the report lists it: seconds after the load began. */
export interface TimelineEntry {
  t_s: number;
  name: string;
  from: string;
  to: string;
  reason: string | null;
  source: string;
}

/**
 * Summarises `transitions` (in any order) between `t0` and `end`; the last
 * fault ended at `lastFaultEnd`. Only shared transitions are used for the
 * durations (a local breaker's are one instance's view while Redis was away).
 */
export function summariseBreakers(
  transitions: readonly BreakerTransition[],
  t0: number,
  lastFaultEnd: number,
  end: number,
): BreakerRunSummary[] {
  const byName = new Map<string, BreakerTransition[]>();
  for (const t of [...transitions].sort((a, b) => a.at - b.at)) {
    if (t.source !== "redis" || t.at < t0) continue;
    byName.set(t.name, [...byName.get(t.name) ?? [], t]);
  }
  return [...byName].map(([name, list]) => {
    let notClosed = 0;
    let leftAt: number | null = null;
    let lastClose: number | null = null;
    for (const t of list) {
      if (t.to !== "closed" && leftAt === null) leftAt = t.at;
      if (t.to === "closed") {
        if (leftAt !== null) notClosed += t.at - leftAt;
        leftAt = null;
        lastClose = t.at;
      }
    }
    if (leftAt !== null) notClosed += Math.max(0, end - leftAt);
    return {
      name,
      opens: list.filter((t) => t.to === "open").length,
      not_closed_ms: notClosed,
      closed_after_last_fault_ms: leftAt === null && lastClose !== null
        ? Math.max(0, lastClose - lastFaultEnd)
        : null,
      open_at_end: leftAt !== null,
    };
  });
}

/** The first `max` transitions after `t0`, for the report. */
export function timeline(
  transitions: readonly BreakerTransition[],
  t0: number,
  max = 200,
): TimelineEntry[] {
  return [...transitions].filter((t) => t.at >= t0).sort((a, b) => a.at - b.at).slice(0, max)
    .map((t) => ({
      t_s: Math.round((t.at - t0) / 100) / 10,
      name: t.name,
      from: t.from,
      to: t.to,
      reason: t.reason,
      source: t.source,
    }));
}
