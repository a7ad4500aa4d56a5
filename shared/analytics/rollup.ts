/**
 * Keeps `lead_metrics_hourly` and `lead_metrics_daily` up to date: the
 * `refresh_lead_metrics` task's work.
 *
 * Tiers 2–3 (rollup tables): which buckets to recompute is found from
 * `lead_events.ingest_xid`, the id of the inserting transaction (migration
 * 004). A refresh takes one snapshot S and recomputes every hour and day
 * bucket holding a row whose ingest_xid is at or above the previous horizon,
 * then stores `pg_snapshot_xmin(S)` as the new horizon. Every transaction
 * below that xmin had finished when S was taken, so its rows were visible
 * and are reflected; every row S could not see has an xid at or above it and
 * is picked up next time. That is what makes it correct for late events (an
 * old `time` still dirties its bucket: buckets come from the rows, not from a
 * time watermark) and for slow transactions that commit after a newer one
 * (a sequence or `max(time)` watermark would skip them). The horizon can lag
 * behind a long-running writer; the cost is rescanning its rows, not losing
 * them. The scan is cheap: the B-tree on ingest_xid (migration 018) reads
 * only the rows above the horizon.
 *
 * Buckets are recomputed whole from raw rows (count, count DISTINCT) and
 * upserted; rows of a recomputed bucket that no longer exist are deleted,
 * so running it twice changes nothing. The whole refresh is ONE statement
 * (one snapshot) in a transaction that first locks the `lead_metrics_state`
 * row: concurrent refreshers serialise (or skip, by default) and each sees
 * the horizon its predecessor committed.
 *
 * Tier 1 (continuous aggregates): the policies refresh the last hours; this
 * calls `refresh_continuous_aggregate` over a longer window so that late
 * events older than the policy window are materialised too.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { Queryable } from "../leads/transaction.ts";
import { withTransaction } from "../leads/transaction.ts";
import { bucketSql, readTier, type Tier } from "./tier.ts";

/** The rollups one refresh brings up to date (the `rollup` label of `lead_metrics_refresh_lag_seconds`). */
export const LEAD_METRICS_ROLLUPS = ["lead_metrics_hourly", "lead_metrics_daily"] as const;

/** Options of {@linkcode refreshLeadMetrics}. */
export interface RefreshOptions {
  /** The clock (epoch ms): recorded as `refreshed_at`; tier 1 windows end an hour before it. */
  now: number;
  /**
   * When another refresh holds the watermark: wait for it and then refresh
   * (true), or return at once with `skipped` (false; the other one is doing
   * the work). @default false
   */
  wait?: boolean;
  /**
   * Tier 1: how far back `refresh_continuous_aggregate` looks for late
   * events. Keep it well inside the raw retention. @default 7 days
   */
  lateWindowMs?: number;
  /** The tier, if the caller has read it. @default read from analytics_tier */
  tier?: Tier;
}

/** What a refresh did. */
export interface RefreshResult {
  tier: Tier;
  /** Another refresh was running and `wait` was false. */
  skipped: boolean;
  /** First refresh (or after a reset): every bucket was rebuilt. */
  full: boolean;
  /** Hour and day buckets recomputed. */
  hours: number;
  days: number;
  /** Rollup rows inserted or changed, and deleted. */
  upserted: number;
  deleted: number;
  /** The new horizon (a transaction id), null on tier 1. */
  horizon: string | null;
}

const DAY_MS = 86_400_000;

/**
 * The CTEs that rebuild one rollup table's touched buckets (`touched_<size>`):
 * `fresh_<size>` recounts them from the raw events, `gone_<size>` deletes rows
 * whose bucket has no events of that type any more, `put_<size>` upserts the
 * rest, writing only rows whose counts changed.
 */
function rebuildCtes(size: "hours" | "days", table: string, column: string, width: string) {
  return `fresh_${size} AS MATERIALIZED (
  SELECT t.b, e.event_type, count(*) AS n, count(DISTINCT e.lead_id) AS u
    FROM touched_${size} t
    JOIN lead_events e ON e.time >= t.b AND e.time < t.b + interval '${width}'
   GROUP BY t.b, e.event_type
),
gone_${size} AS (
  DELETE FROM ${table} r USING touched_${size} t
   WHERE r.${column} = t.b
     AND NOT EXISTS (SELECT 1 FROM fresh_${size} f WHERE f.b = r.${column} AND f.event_type = r.event_type)
  RETURNING 1
),
put_${size} AS (
  INSERT INTO ${table} AS r (${column}, event_type, event_count, unique_leads)
  SELECT b, event_type, n, u FROM fresh_${size}
  ON CONFLICT (${column}, event_type) DO UPDATE
     SET event_count = EXCLUDED.event_count, unique_leads = EXCLUDED.unique_leads
   WHERE (r.event_count, r.unique_leads) IS DISTINCT FROM (EXCLUDED.event_count, EXCLUDED.unique_leads)
  RETURNING 1
)`;
}

function refreshSql(tier: Tier, full: boolean): string {
  const hourOf = (col: string) => bucketSql(tier, "1h", col);
  const dayOf = (col: string) => bucketSql(tier, "1d", col);
  // $1 previous horizon, $2 retained_from, $3 now.
  return `
WITH snap AS MATERIALIZED (
  SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin
),
consumed AS (
  DELETE FROM lead_metrics_invalidations RETURNING range_start, range_end
),
touched_hours AS MATERIALIZED (
  SELECT b FROM (
    SELECT DISTINCT ${hourOf("e.time")} AS b FROM lead_events e
    ${full ? "WHERE $1::bigint IS NULL" : "WHERE e.ingest_xid >= $1::bigint"}
    UNION
    SELECT g.b FROM consumed c CROSS JOIN LATERAL generate_series(
      ${hourOf("c.range_start")}, c.range_end - interval '1 microsecond', interval '1 hour') AS g(b)
    ${full ? "UNION SELECT hour FROM lead_metrics_hourly" : ""}
  ) t
  WHERE $2::timestamptz IS NULL OR b >= $2::timestamptz
),
touched_days AS MATERIALIZED (
  SELECT b FROM (
    SELECT DISTINCT ${dayOf("h.b")} AS b FROM touched_hours h
    ${full ? "UNION SELECT day FROM lead_metrics_daily" : ""}
  ) t
  WHERE $2::timestamptz IS NULL OR b >= $2::timestamptz
),
${rebuildCtes("hours", "lead_metrics_hourly", "hour", "1 hour")},
${rebuildCtes("days", "lead_metrics_daily", "day", "1 day")},
state AS (
  UPDATE lead_metrics_state
     SET horizon = (SELECT xmin FROM snap), refreshed_at = $3::timestamptz
  RETURNING horizon
)
SELECT (SELECT count(*) FROM touched_hours)::int AS hours,
       (SELECT count(*) FROM touched_days)::int AS days,
       ((SELECT count(*) FROM put_hours) + (SELECT count(*) FROM put_days))::int AS upserted,
       ((SELECT count(*) FROM gone_hours) + (SELECT count(*) FROM gone_days))::int AS deleted,
       (SELECT horizon::text FROM state) AS horizon`;
}

async function refreshTables(
  sql: Pool,
  tier: Tier,
  options: RefreshOptions,
): Promise<RefreshResult> {
  return await withTransaction(sql, async (client) => {
    // The planner cannot know how few rows are touched; its estimates grow
    // with the table and made JIT compile for longer than the work took.
    await client.query("SET LOCAL jit = off");
    const { rows: state } = await client.query<
      { horizon: string | null; retained_from: Date | null }
    >(
      `SELECT horizon::text AS horizon, retained_from FROM lead_metrics_state
         FOR UPDATE${options.wait ? "" : " SKIP LOCKED"}`,
    );
    const row = state[0];
    if (!row) {
      return {
        tier,
        skipped: true,
        full: false,
        hours: 0,
        days: 0,
        upserted: 0,
        deleted: 0,
        horizon: null,
      };
    }
    const full = row.horizon === null;
    const { rows } = await client.query<
      { hours: number; days: number; upserted: number; deleted: number; horizon: string }
    >(refreshSql(tier, full), [
      row.horizon,
      row.retained_from,
      new Date(options.now).toISOString(),
    ]);
    const r = rows[0]!;
    return { tier, skipped: false, full, ...r };
  });
}

function literal(ms: number): string {
  return `timestamptz '${new Date(ms).toISOString()}'`;
}

async function refreshAggregates(sql: Queryable, options: RefreshOptions): Promise<RefreshResult> {
  const end = options.now - 3_600_000;
  const start = options.now - (options.lateWindowMs ?? 7 * DAY_MS);
  // A procedure that must run outside any transaction block (docs/reference/timescale-tiers.md
  // §5): one autocommitted simple-protocol statement each, hence literals.
  for (const view of ["lead_metrics_hourly", "lead_metrics_daily"]) {
    await sql.query(
      `CALL refresh_continuous_aggregate('${view}', ${literal(start)}, ${literal(end)})`,
    );
  }
  return {
    tier: 1,
    skipped: false,
    full: false,
    hours: 0,
    days: 0,
    upserted: 0,
    deleted: 0,
    horizon: null,
  };
}

/**
 * Brings the lead metrics rollups up to date (see the module doc per tier).
 * Safe to run from several workers at once and as often as wanted.
 */
export async function refreshLeadMetrics(
  sql: Pool,
  options: RefreshOptions,
): Promise<RefreshResult> {
  const tier = options.tier ?? (await readTier(sql)).tier;
  if (tier === 1) return await refreshAggregates(sql, options);
  return await refreshTables(sql, tier, options);
}

/**
 * Marks `[from, to)` for recomputation by the next refresh (tiers 2–3). New
 * rows are found by themselves; call this after UPDATE or DELETE of
 * `lead_events` rows other than by retention, in the same transaction.
 * On tier 1 TimescaleDB tracks such changes itself; the row is harmless.
 */
export async function invalidateLeadMetrics(
  sql: Queryable,
  range: { from: Date; to: Date },
): Promise<void> {
  if (!(range.from.getTime() < range.to.getTime())) {
    throw new RangeError(
      `Cannot invalidate lead metrics: from (${range.from}) must be a date before to (${range.to})`,
    );
  }
  await sql.query(
    "INSERT INTO lead_metrics_invalidations (range_start, range_end) VALUES ($1, $2)",
    [range.from.toISOString(), range.to.toISOString()],
  );
}
