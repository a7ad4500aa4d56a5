-- 019: book_appointment's lead lock and bookings in ONE call.
--
-- After 017 a batch of bookings still took four round trips in turn: BEGIN,
-- the leads' lock, book_appointments, COMMIT. With a worker's batches coming
-- one after another, those waits, not CPU, bounded bookings per second: the
-- machine was 62-80 % busy (docs/benchmarks.md, bench:outreach, second
-- round). This function takes the lock and books in one statement, so a
-- batch sent on its own (autocommit) is one round trip:
--
-- 1. The batch's leads are locked FOR UPDATE in lead order (as before: two
--    batches that share leads do not deadlock).
-- 2. Each booking's outcome without a booking: `missing` (no such lead) or
--    `closed` (the lead is not_interested; the edge refuses it up front, but
--    a lead can say no after the booking was queued).
-- 3. The others are booked by book_appointments (017), unchanged, with the
--    state machine's steps for the lead's locked status: the caller passes
--    the steps from EVERY status (shared/leads/status.ts, stepsToReach), as
--    the status is only known here. book_appointments' statements run after
--    the lock statement, each with a new snapshot, so what they read of
--    other transactions is committed.
--
-- The rows come back in input order with the lead's name and locked status
-- (the confirmation names the business; a caller that rescores moved leads
-- needs the status). A caller may still wrap it in its own transaction.

CREATE FUNCTION lock_and_book_appointments(
  lead_ids uuid[], sources text[], task_ids text[], starts text[], durations integer[],
  attendees text[], zones text[], steps_by_status jsonb
) RETURNS TABLE (
  n bigint, outcome text, lead_name text, from_status text, id uuid, lead_id uuid,
  starts_at timestamptz, duration_min integer, attendee_email text, day text, time_zone text,
  status text, task_id text, created_at timestamptz
)
LANGUAGE plpgsql AS $fn$
-- The result columns are named like table columns: a bare name means the column.
#variable_conflict use_column
DECLARE
  found_ids uuid[];
  found_names text[];
  found_statuses text[];
  open_n bigint[];
  open_steps jsonb[];
  open_from text[];
  open_leads uuid[];
  open_sources text[];
  open_tasks text[];
  open_starts text[];
  open_durations integer[];
  open_attendees text[];
  open_zones text[];
BEGIN
  SELECT coalesce(array_agg(l.id), '{}'), coalesce(array_agg(l.name), '{}'),
         coalesce(array_agg(l.outreach_status), '{}')
    INTO found_ids, found_names, found_statuses
    FROM (SELECT b.id, b.name, b.outreach_status FROM businesses b
           WHERE b.id = ANY(lead_ids) ORDER BY b.id FOR UPDATE) l;

  SELECT array_agg(i.k ORDER BY i.k), array_agg(steps_by_status -> l.status ORDER BY i.k),
         array_agg(l.status ORDER BY i.k), array_agg(i.lead ORDER BY i.k),
         array_agg(i.source ORDER BY i.k), array_agg(i.task ORDER BY i.k),
         array_agg(i.start_text ORDER BY i.k), array_agg(i.duration ORDER BY i.k),
         array_agg(i.attendee ORDER BY i.k), array_agg(i.zone ORDER BY i.k)
    INTO open_n, open_steps, open_from, open_leads, open_sources, open_tasks, open_starts,
         open_durations, open_attendees, open_zones
    FROM unnest(lead_ids, sources, task_ids, starts, durations, attendees, zones)
         WITH ORDINALITY AS i(lead, source, task, start_text, duration, attendee, zone, k)
    JOIN unnest(found_ids, found_statuses) AS l(id, status) ON l.id = i.lead
   WHERE l.status <> 'not_interested';

  IF array_position(open_steps, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'lock_and_book_appointments: no steps given for status %',
      open_from[array_position(open_steps, NULL)];
  END IF;

  RETURN QUERY
    SELECT i.k,
           CASE WHEN l.id IS NULL THEN 'missing'
                WHEN l.status = 'not_interested' THEN 'closed'
                ELSE r.outcome END,
           l.name, l.status, r.id, r.lead_id, r.starts_at, r.duration_min, r.attendee_email,
           r.day, r.time_zone, r.status, r.task_id, r.created_at
      FROM unnest(lead_ids) WITH ORDINALITY AS i(lead, k)
      LEFT JOIN unnest(found_ids, found_names, found_statuses) AS l(id, name, status)
        ON l.id = i.lead
      LEFT JOIN (
        SELECT open_n[b.n] AS k, b.*
          FROM book_appointments(coalesce(open_leads, '{}'), coalesce(open_sources, '{}'),
                                 coalesce(open_tasks, '{}'), coalesce(open_starts, '{}'),
                                 coalesce(open_durations, '{}'), coalesce(open_attendees, '{}'),
                                 coalesce(open_zones, '{}'), coalesce(open_from, '{}'),
                                 coalesce(open_steps, '{}')) b
      ) r ON r.k = i.k
     ORDER BY i.k;
END;
$fn$;
