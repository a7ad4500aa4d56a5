/**
 * The analytics tier of the database (`analytics_tier`, detected and recorded
 * by migration 004; the tiers and their features: docs/reference/timescale-tiers.md) and
 * what follows from it: which features are native and which the application
 * emulates (`GET /v1/analytics/capabilities`), and the bucketing SQL each tier
 * uses.
 *
 * @module
 */
import type { Queryable } from "../leads/transaction.ts";

/** 1: TimescaleDB with TSL features; 2: TimescaleDB Apache-only (Neon); 3: plain PostgreSQL. */
export type Tier = 1 | 2 | 3;

/** Bucket widths the rollups and the query API support. */
export type BucketWidth = "1h" | "1d";

/** The features the analytics schema relies on. */
export type AnalyticsFeature =
  | "partitioning"
  | "bucketing"
  | "hourly_rollup"
  | "daily_rollup"
  | "refresh"
  | "real_time"
  | "retention"
  | "compression";

/** What `GET /v1/analytics/capabilities` reports. */
export interface TierInfo {
  tier: Tier;
  /** `timescaledb`, `timescaledb-apache` or `postgresql`. */
  name: string;
  /** When migration 004 detected the tier. */
  detected_at: string;
  /** Server and extension versions, licence, and why CREATE EXTENSION failed if it did. */
  details: Record<string, unknown>;
  /** Features the database provides itself, with the object that provides each. */
  native: Partial<Record<AnalyticsFeature, string>>;
  /** Features the application provides instead, with how. */
  emulated: Partial<Record<AnalyticsFeature, string>>;
}

/** Migration 004 has not run: there is no tier row. */
export class AnalyticsTierMissingError extends Error {
  override name = "AnalyticsTierMissingError";
}

const NAMES: Record<Tier, string> = {
  1: "timescaledb",
  2: "timescaledb-apache",
  3: "postgresql",
};

type Capabilities = Pick<TierInfo, "native" | "emulated">;

const CAPABILITIES: Record<Tier, Capabilities> = {
  1: {
    native: {
      partitioning: "hypertable lead_events, 1-day chunks",
      bucketing: "time_bucket",
      hourly_rollup: "continuous aggregate lead_metrics_hourly",
      daily_rollup: "continuous aggregate lead_metrics_daily",
      refresh: "refresh policies (hourly: 3 h to 1 h ago, every hour); late events by " +
        "refresh_lead_metrics calling refresh_continuous_aggregate",
      real_time: "real-time aggregation (materialized_only = false)",
      retention: "retention policies (lead_events and both aggregates)",
      compression: "compression policy, chunks older than 7 days",
    },
    emulated: {},
  },
  2: {
    native: {
      partitioning: "hypertable lead_events, 1-day chunks",
      bucketing: "time_bucket",
    },
    emulated: {
      hourly_rollup: "table lead_metrics_hourly",
      daily_rollup: "table lead_metrics_daily",
      refresh: "refresh_lead_metrics task: recomputes buckets touched since its watermark",
      real_time: "rollup plus the buckets of not yet refreshed events, from raw rows",
      retention: "apply_retention task calling drop_chunks",
      compression: "none: retention plus rollups",
    },
  },
  3: {
    native: {},
    emulated: {
      partitioning: "one table lead_events with a B-tree index on time",
      bucketing: "date_bin with origin 2000-01-03 (equals time_bucket)",
      hourly_rollup: "table lead_metrics_hourly",
      daily_rollup: "table lead_metrics_daily",
      refresh: "refresh_lead_metrics task: recomputes buckets touched since its watermark",
      real_time: "rollup plus the buckets of not yet refreshed events, from raw rows",
      retention: "apply_retention task deleting in bounded batches",
      compression: "none: retention plus rollups",
    },
  },
};

/** Reads the recorded tier; throws {@linkcode AnalyticsTierMissingError} before migration 004. */
export async function readTier(sql: Queryable): Promise<TierInfo> {
  let rows: { tier: number; details: Record<string, unknown>; detected_at: Date }[];
  try {
    ({ rows } = await sql.query("SELECT tier, details, detected_at FROM analytics_tier"));
  } catch (err) {
    if ((err as { code?: string }).code === "42P01") {
      throw new AnalyticsTierMissingError(
        "Cannot read the analytics tier: table analytics_tier does not exist (run the migrations)",
        { cause: err },
      );
    }
    throw err;
  }
  const row = rows[0];
  if (!row) {
    throw new AnalyticsTierMissingError("Cannot read the analytics tier: analytics_tier is empty");
  }
  const tier = Number(row.tier) as Tier;
  return {
    tier,
    name: NAMES[tier],
    detected_at: new Date(row.detected_at).toISOString(),
    details: row.details,
    native: { ...CAPABILITIES[tier].native },
    emulated: { ...CAPABILITIES[tier].emulated },
  };
}

/** Milliseconds of a bucket width. */
export const BUCKET_MS: Record<BucketWidth, number> = { "1h": 3_600_000, "1d": 86_400_000 };

/** The SQL interval literal of a bucket width. */
export function bucketInterval(width: BucketWidth): string {
  return width === "1h" ? "interval '1 hour'" : "interval '1 day'";
}

/**
 * The SQL expression that buckets `column`: `time_bucket` on tiers 1–2,
 * `date_bin` with time_bucket's origin on tier 3 (the two agree for every
 * stride when the origin is given, docs/reference/timescale-tiers.md §4.2).
 */
export function bucketSql(tier: Tier, width: BucketWidth, column: string): string {
  return tier === 3
    ? `date_bin(${bucketInterval(width)}, ${column}, timestamptz '2000-01-03 00:00:00+00')`
    : `time_bucket(${bucketInterval(width)}, ${column})`;
}

/**
 * The start of the bucket holding `ms`. Hours and days since the Unix epoch
 * are aligned with the 2000-01-03 origin, so plain flooring gives the same
 * bucket as the database.
 */
export function bucketStart(ms: number, width: BucketWidth): number {
  const size = BUCKET_MS[width];
  return Math.floor(ms / size) * size;
}

/** The rollup relation and its bucket column for a width. */
export function rollupOf(width: BucketWidth): { table: string; column: string } {
  return width === "1h"
    ? { table: "lead_metrics_hourly", column: "hour" }
    : { table: "lead_metrics_daily", column: "day" };
}
