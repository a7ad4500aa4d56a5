-- 004: which of the three analytics tiers this database is (timescale-tiers.md),
-- recorded once in analytics_tier, and the tier-independent changes to
-- lead_events the rollups rely on.
--
--   tier 1  TimescaleDB with the Timescale-License (TSL) features: hypertable,
--           continuous aggregates, policies, compression (self-hosted, Timescale Cloud)
--   tier 2  TimescaleDB with Apache-2 features only (Neon: 2.10.1 on PG 15):
--           hypertable, time_bucket, drop_chunks
--   tier 3  plain PostgreSQL (local, CI): a regular table, date_bin
--
-- The extension is created only when the server offers it
-- (pg_available_extensions). CREATE EXTENSION can still fail (the library was
-- not preloaded, no privilege); that is caught and recorded, and the database
-- is tier 3. The licence comes from the timescaledb.license setting, which
-- only the server configuration can change (timescale-tiers.md §3).
--
-- lead_events.ingest_xid: the id of the transaction that inserted the row.
-- The tier 2–3 refresh (shared/analytics/rollup.ts) recomputes the buckets of
-- rows whose ingest_xid is at or above the xmin of its previous snapshot, so a
-- late event (an old `time`) still dirties its bucket. Added without a default
-- first and given one afterwards so that existing rows are not rewritten; they
-- stay NULL and are covered by the first refresh, which rebuilds everything.
-- BRIN: the values grow with insertion order, so the index is tiny and
-- free to maintain, and a scan for recent values reads only recent blocks.

CREATE TABLE analytics_tier (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  tier smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  detected_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE lead_events ADD COLUMN ingest_xid bigint;
ALTER TABLE lead_events ALTER COLUMN ingest_xid SET DEFAULT (pg_current_xact_id()::text)::bigint;
-- autosummarize: autovacuum summarises each filled block range soon after, so
-- scans skip it; until then a range is always read (correct, just slower).
CREATE INDEX lead_events_ingest_xid_idx ON lead_events USING brin (ingest_xid)
  WITH (autosummarize = on);
-- Rollup refreshes and retention read time ranges across every event type.
CREATE INDEX lead_events_time_idx ON lead_events (time DESC);

DO $$
DECLARE
  available text;
  installed text;
  license text;
  failure text;
  detected smallint;
BEGIN
  SELECT default_version INTO available FROM pg_available_extensions WHERE name = 'timescaledb';
  IF available IS NOT NULL THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
    EXCEPTION WHEN OTHERS THEN
      failure := SQLERRM;
    END;
  END IF;
  SELECT extversion INTO installed FROM pg_extension WHERE extname = 'timescaledb';
  IF installed IS NULL THEN
    detected := 3;
  ELSE
    license := current_setting('timescaledb.license', true);
    detected := CASE WHEN license = 'timescale' THEN 1 ELSE 2 END;
  END IF;

  INSERT INTO analytics_tier (tier, details) VALUES (detected, jsonb_strip_nulls(jsonb_build_object(
    'server_version', current_setting('server_version'),
    'timescaledb_available', available,
    'timescaledb_version', installed,
    'timescaledb_license', license,
    'create_extension_error', failure
  )));

  IF detected IN (1, 2) THEN
    -- The pre-2.13 signature (no by_range): it exists on Neon's 2.10.1 and on
    -- current releases alike. The indexes above are copied to every chunk, so
    -- the default time index is not wanted.
    EXECUTE $sql$
      SELECT create_hypertable('lead_events', 'time',
        chunk_time_interval => interval '1 day',
        create_default_indexes => false,
        if_not_exists => true,
        migrate_data => true)
    $sql$;
  END IF;
END
$$;
