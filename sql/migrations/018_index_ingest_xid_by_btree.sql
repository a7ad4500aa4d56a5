-- 018: lead_events.ingest_xid indexed by a B-tree instead of migration 004's
-- BRIN index.
--
-- Three readers look for the rows at or above an ingest_xid: the live-feed
-- relay's page (edge/ws/lead_events_relay_progress.ts, every 250 ms on one
-- edge), the lead-metrics tail (shared/analytics/queries.ts) and the rollup
-- refresh (shared/analytics/rollup.ts). A BRIN range is only summarised when
-- autovacuum gets to it, and an unsummarised range is always read whole, so
-- under steady ingest every relay page re-read every block written since the
-- last autovacuum: in a profile of POST /v1/events (2026-12-07) a page of 500
-- events read 3,548 blocks to find 6,000 candidate rows (33 ms), and the
-- relay was a fifth of the database's busy time. Transaction ids only grow,
-- so a B-tree on ingest_xid is appended at its right edge (cheap to keep) and
-- finds exactly the rows asked for, summarised or not (docs/benchmarks.md,
-- design measurements). The same name, so the readers and the tier tests
-- need no change; on a hypertable both statements apply to every chunk.
DROP INDEX lead_events_ingest_xid_idx;
CREATE INDEX lead_events_ingest_xid_idx ON lead_events (ingest_xid);
