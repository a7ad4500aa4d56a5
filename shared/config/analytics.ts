/**
 * The analytics area: retention of raw lead events and rollups, and the
 * late-event window of the refresh (shared/analytics/, docs/analytics.md).
 *
 * @module
 */
import { z } from "zod";
import { DAY_MS, days, defineArea } from "./spec.ts";

/** The analytics maintenance tasks (refresh_lead_metrics, apply_retention). */
export const analytics = defineArea(
  "Analytics",
  {
    ANALYTICS_RETENTION_DAYS: {
      description:
        "Raw lead events older than this many days are removed by the daily `apply_retention` task (TimescaleDB with policies: the retention policy's `drop_after`)",
      default: "90",
      schema: days,
    },
    ANALYTICS_ROLLUP_RETENTION_DAYS: {
      description:
        "Hourly and daily lead-metrics rollup buckets older than this many days are removed; at least `ANALYTICS_RETENTION_DAYS` (rollups outlive raw events)",
      default: "400",
      schema: days,
    },
    ANALYTICS_RETENTION_BATCH: {
      description:
        "Plain PostgreSQL: rows per `DELETE` statement of `apply_retention` (short transactions and locks)",
      default: "10000",
      schema: z.coerce.number().int().min(1).max(1_000_000),
    },
    ANALYTICS_RETENTION_MAX_BATCHES: {
      description:
        "Plain PostgreSQL: `DELETE` statements per `apply_retention` task at most; when old rows remain the task enqueues its own continuation",
      default: "1000",
      schema: z.coerce.number().int().min(1).max(100_000),
    },
    ANALYTICS_REFRESH_LATE_WINDOW_DAYS: {
      description:
        "TimescaleDB with continuous aggregates: how many days back `refresh_lead_metrics` re-materialises for late events; less than `ANALYTICS_RETENTION_DAYS`",
      default: "7",
      schema: days,
    },
  },
  [],
  (v) => ({
    analytics: {
      /** Raw lead events older than this are removed. */
      retentionMs: v.ANALYTICS_RETENTION_DAYS * DAY_MS,
      /** Rollup buckets older than this are removed; at least retentionMs. */
      rollupRetentionMs: v.ANALYTICS_ROLLUP_RETENTION_DAYS * DAY_MS,
      /** Plain PostgreSQL: rows per DELETE. */
      retentionBatchSize: v.ANALYTICS_RETENTION_BATCH,
      /** Plain PostgreSQL: DELETE statements per apply_retention task. */
      retentionMaxBatches: v.ANALYTICS_RETENTION_MAX_BATCHES,
      /** Tier 1: how far back a refresh re-materialises for late events. */
      refreshLateWindowMs: v.ANALYTICS_REFRESH_LATE_WINDOW_DAYS * DAY_MS,
    },
  }),
);
