/**
 * `refresh_lead_metrics`: brings the hourly and daily lead-metrics rollups up
 * to date (shared/analytics/rollup.ts), every minute by default schedule.
 *
 * Idempotent by construction of the data layer: buckets are recomputed whole
 * from raw rows and upserted, so a redelivered or repeated task changes
 * nothing. Two workers refreshing at once do not wait for each other: the
 * second returns `skipped: true` (the first one is doing the work).
 *
 * @module
 */
import {
  LEAD_METRICS_ROLLUPS,
  refreshLeadMetrics,
  type RefreshResult,
} from "../../shared/analytics/rollup.ts";
import type { AnalyticsMaintenancePayload } from "../../shared/tasks/catalog.ts";
import type { z } from "zod";
import type { TaskContext } from "../runner.ts";

/** What refresh_lead_metrics needs besides the task context. */
export interface RefreshLeadMetricsServices {
  /** TimescaleDB with continuous aggregates: how far back late events are materialised. */
  lateWindowMs: number;
}

/** Builds the handler; the task result is the refresh summary. */
export function refreshLeadMetricsHandler(s: RefreshLeadMetricsServices) {
  return async function refreshLeadMetricsTask(
    _p: z.output<typeof AnalyticsMaintenancePayload>,
    ctx: TaskContext,
  ): Promise<RefreshResult> {
    const now = ctx.deps.now();
    const result = await refreshLeadMetrics(ctx.deps.sql, { now, lateWindowMs: s.lateWindowMs });
    // A skipped run refreshed nothing here (another worker holds the
    // watermark): the lag keeps growing until a refresh of this process succeeds.
    if (!result.skipped) {
      for (const rollup of LEAD_METRICS_ROLLUPS) {
        ctx.deps.metrics.rollupsRefreshedAt.set(rollup, now);
      }
    }
    // A full rebuild happens once (first refresh, or after a reset): worth a line.
    if (result.full) ctx.log.info("lead metrics rebuilt from every event", { ...result });
    return result;
  };
}
