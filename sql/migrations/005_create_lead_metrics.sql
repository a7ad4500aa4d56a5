-- 005: hourly and daily lead metrics, per tier (recorded by 004).
--
--   lead_metrics_hourly (hour, event_type, event_count, unique_leads)
--   lead_metrics_daily  (day,  event_type, event_count, unique_leads)
--
-- unique_leads is count(DISTINCT lead_id) per bucket, so a day's value cannot
-- be summed from its hours: the daily rollup is computed from raw events on
-- every tier (on tier 1 a second continuous aggregate on lead_events, not a
-- hierarchical one on the hourly aggregate).
--
-- Tiers 2–3: two rollup tables, kept by refreshLeadMetrics()
-- (shared/analytics/rollup.ts), which recomputes whole buckets touched since
-- its watermark (lead_metrics_state.horizon, a transaction-id horizon; see
-- 004 on ingest_xid). Tier 1: continuous aggregates created WITH NO DATA
-- (allowed in a transaction, timescale-tiers.md §5) with refresh policies,
-- real-time aggregation, compression after 7 days and 90-day retention. That
-- block only runs on tier 1 and is kept apart from the portable one.

-- Used by tiers 2–3; present everywhere so that the schema's tables are the
-- same on every tier.
CREATE TABLE lead_metrics_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- pg_snapshot_xmin of the last refresh's snapshot: every row with a smaller
  -- ingest_xid is reflected in the rollups. NULL: never refreshed, the next
  -- refresh rebuilds everything.
  horizon bigint,
  -- Retention removed raw events before this instant: buckets before it are
  -- final in the rollups and never recomputed from the (partial) raw rows.
  retained_from timestamptz,
  refreshed_at timestamptz
);
INSERT INTO lead_metrics_state DEFAULT VALUES;

-- Time ranges whose buckets the next refresh recomputes although no new row
-- landed there: what an UPDATE or DELETE of lead_events other than retention
-- must record (invalidateLeadMetrics()).
CREATE TABLE lead_metrics_invalidations (
  id bigserial PRIMARY KEY,
  range_start timestamptz NOT NULL,
  range_end timestamptz NOT NULL CHECK (range_end > range_start),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Tiers 2–3: rollup tables.
DO $$
BEGIN
  IF (SELECT tier FROM analytics_tier) = 1 THEN
    RETURN;
  END IF;
  CREATE TABLE lead_metrics_hourly (
    hour timestamptz NOT NULL,
    event_type text NOT NULL,
    event_count bigint NOT NULL,
    unique_leads bigint NOT NULL,
    PRIMARY KEY (hour, event_type)
  );
  CREATE TABLE lead_metrics_daily (
    day timestamptz NOT NULL,
    event_type text NOT NULL,
    event_count bigint NOT NULL,
    unique_leads bigint NOT NULL,
    PRIMARY KEY (day, event_type)
  );
END
$$;

-- Tier 1 only (TSL features): continuous aggregates and policies. EXECUTE
-- keeps these statements from being parsed on the other tiers.
DO $$
BEGIN
  IF (SELECT tier FROM analytics_tier) <> 1 THEN
    RETURN;
  END IF;
  -- materialized_only = false: real-time aggregation (no longer the default
  -- from 2.13 on), so rows newer than the last refresh are included.
  EXECUTE $sql$
    CREATE MATERIALIZED VIEW lead_metrics_hourly
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(interval '1 hour', time) AS hour,
           event_type,
           count(*) AS event_count,
           count(DISTINCT lead_id) AS unique_leads
      FROM lead_events
     GROUP BY time_bucket(interval '1 hour', time), event_type
    WITH NO DATA
  $sql$;
  EXECUTE $sql$
    CREATE MATERIALIZED VIEW lead_metrics_daily
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(interval '1 day', time) AS day,
           event_type,
           count(*) AS event_count,
           count(DISTINCT lead_id) AS unique_leads
      FROM lead_events
     GROUP BY time_bucket(interval '1 day', time), event_type
    WITH NO DATA
  $sql$;
  EXECUTE $sql$
    SELECT add_continuous_aggregate_policy('lead_metrics_hourly',
      start_offset => interval '3 hours',
      end_offset => interval '1 hour',
      schedule_interval => interval '1 hour')
  $sql$;
  -- The window must span at least two buckets: three days back to an hour ago.
  EXECUTE $sql$
    SELECT add_continuous_aggregate_policy('lead_metrics_daily',
      start_offset => interval '3 days',
      end_offset => interval '1 hour',
      schedule_interval => interval '1 hour')
  $sql$;
  -- Every primary-key column is a segmentby or orderby column, as
  -- compression wants for unique constraints.
  EXECUTE $sql$
    ALTER TABLE lead_events SET (
      timescaledb.compress,
      timescaledb.compress_segmentby = 'event_type',
      timescaledb.compress_orderby = 'time DESC, id')
  $sql$;
  EXECUTE $sql$
    SELECT add_compression_policy('lead_events', compress_after => interval '7 days')
  $sql$;
  -- Raw events and both aggregates keep 90 days, as the batched deletes of
  -- the other tiers do by default; applyRetention() re-aligns these policies
  -- when the configured intervals differ. The aggregate refresh windows
  -- (3 h, 3 days) stay far inside the raw retention, so a refresh never
  -- reaches a range whose raw rows were dropped (timescale-tiers.md §4.4).
  EXECUTE $sql$
    SELECT add_retention_policy('lead_events', drop_after => interval '90 days')
  $sql$;
  EXECUTE $sql$
    SELECT add_retention_policy('lead_metrics_hourly', drop_after => interval '90 days')
  $sql$;
  EXECUTE $sql$
    SELECT add_retention_policy('lead_metrics_daily', drop_after => interval '90 days')
  $sql$;
END
$$;
