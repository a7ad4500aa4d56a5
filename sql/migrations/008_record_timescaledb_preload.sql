-- 008: record why a server that has TimescaleDB installed is still tier 3.
--
-- Migration 004 tried CREATE EXTENSION whenever the server offered the
-- extension, and its header says a failure is caught and recorded. That does
-- not hold when the library is installed but not in shared_preload_libraries:
-- TimescaleDB then raises a FATAL error, which ends the session, so no
-- EXCEPTION block can catch it (docs/reference/timescale-tiers.md §5). The
-- migration runner now checks the preload state first and hides a
-- non-preloaded TimescaleDB from 004 (shared/db/timescale_preload.ts), which
-- therefore records tier 3 without trying; this file adds what it saw, so
-- GET /v1/analytics/capabilities can say why.
--
-- A timescaledb.* setting exists only when the loader library was preloaded
-- (it defines them), so its absence is the "not preloaded" signal; it needs
-- no privilege, unlike reading shared_preload_libraries. Catalog names are
-- schema-qualified so the runner's temporary view does not apply here.
-- Nothing changes on tiers 1 and 2, or where TimescaleDB is not installed.

UPDATE analytics_tier
   SET details = details || jsonb_build_object(
     'timescaledb_available',
       (SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb'),
     'timescaledb_preloaded',
       EXISTS (SELECT 1 FROM pg_catalog.pg_settings WHERE name LIKE 'timescaledb.%')
   )
 WHERE tier = 3
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'timescaledb');
