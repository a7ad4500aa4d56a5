-- 014: the lead-metrics read in ONE statement (shared/analytics/queries.ts).
--
-- The read needs three things: the refresh horizon as a value the planner
-- sees (so that it reads the BRIN index on ingest_xid, not the table), the
-- horizon and the rollup from one snapshot, and JIT off (the planner's
-- estimates for the not yet refreshed tail grow with the table whatever the
-- real tail: docs/benchmarks.md, design measurements). It was a read-only
-- repeatable-read transaction of four round trips (BEGIN and SET LOCAL, the
-- state, the data, COMMIT). This function gives the same in one: every
-- statement of a STABLE function runs on the snapshot of the statement that
-- called it, EXECUTE ... USING plans the query with the values it is given,
-- and the SET clause holds while the function runs.
--
-- `query` is the application's SELECT of one text value, with $1 the range
-- start, $2 its end, $3 the event type or NULL and $4 the horizon (tier 1's
-- query leaves $4 unused). SECURITY INVOKER (the default): it runs with the
-- caller's rights, and being STABLE it cannot write (EXECUTE of anything but
-- a read fails). NULL when lead_metrics_state has no row. The same on every
-- tier: lead_metrics_state exists on all three (migration 005).
CREATE FUNCTION read_lead_metrics(
  query text,
  range_start timestamptz,
  range_end timestamptz,
  only_type text
) RETURNS text LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
  current_horizon bigint;
  answer text;
BEGIN
  SELECT horizon INTO current_horizon FROM lead_metrics_state;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  EXECUTE query INTO answer USING range_start, range_end, only_type, current_horizon;
  RETURN answer;
END
$$;
