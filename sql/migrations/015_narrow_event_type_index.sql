-- 015: the (event_type, time) index of lead_events only where a query reads
-- events by type across leads: the funnel (status_changed) and the booking
-- rate (appointment_booked, appointment_cancelled) of
-- shared/analytics/queries.ts. Every other read of lead_events goes by lead
-- (lead_events_lead_time_idx), by time (lead_events_time_idx: rollup refresh,
-- retention, the lead-metrics tail) or by ingest_xid (the BRIN index), and
-- lead metrics per type come from the rollups. Migration 002's index on every
-- row cost each ingested event an insert into a large B-tree that no query
-- read: about a quarter of the database's time per ingested batch
-- (docs/benchmarks.md, design measurements). The types ingest accepts
-- (shared/analytics/ingest.ts) are none of these three, so ingested events
-- never enter the new index.
--
-- A query on another type across leads by time needs its type added here
-- (a later migration), or it reads the time index and filters.
-- The same on every tier: on a hypertable both statements apply to every
-- chunk.
DROP INDEX lead_events_type_time_idx;
CREATE INDEX lead_events_type_time_idx ON lead_events (event_type, time DESC)
  WHERE event_type IN ('status_changed', 'appointment_booked', 'appointment_cancelled');
