-- 017: book_appointment's writes for many bookings in ONE call.
--
-- A booking used to take about ten statements in its transaction (the lead
-- lock, its own earlier booking, the insert, the status walk and the events);
-- per booking, their round trips, parsing, planning and commit cost far more
-- than their rows (docs/benchmarks.md, bench:outreach). The worker now locks
-- the leads of a batch (one statement, in lead order), decides each lead's
-- status steps with the state machine in code (shared/leads/status.ts), and
-- makes every booking of the batch with this function, in the same
-- transaction, with the outcome one booking's statements had:
--
-- * `own`: this task already booked (its appointment_booked event, by
--   source, names the appointment), or the day's booked row carries its task
--   id: the follow-up steps only. `cancelled`: its own booking was cancelled
--   since.
-- * `duplicate`: another booking holds the lead's day (the unique index of
--   003, ON CONFLICT DO NOTHING).
-- * `booked`: inserted; the lead walks the given steps (one status_changed
--   event each, the last one naming the appointment) and appointment_booked
--   is recorded. The history row of the status change names the booking's
--   own source, written here as the trigger would (016's WHEN skips it).
--
-- The caller holds the leads' row locks (FOR UPDATE), so the day's existing
-- booking, read after the insert in this statement's snapshot, is committed.

CREATE FUNCTION book_appointments(
  lead_ids uuid[], sources text[], task_ids text[], starts text[], durations integer[],
  attendees text[], zones text[], from_statuses text[], steps jsonb[]
) RETURNS TABLE (
  n bigint, outcome text, id uuid, lead_id uuid, starts_at timestamptz, duration_min integer,
  attendee_email text, day text, time_zone text, status text, task_id text,
  created_at timestamptz
)
LANGUAGE plpgsql AS $fn$
-- The result columns are named like table columns: a bare name means the column.
#variable_conflict use_column
BEGIN
  PERFORM set_config('pleasant_cove.lead_history', 'written', true);
  RETURN QUERY
    WITH input AS (
      SELECT u.*, (u.start_text::timestamptz AT TIME ZONE u.zone)::date AS on_day
        FROM unnest(lead_ids, sources, task_ids, starts, durations, attendees, zones,
                    from_statuses, steps)
             WITH ORDINALITY AS u(lead_id, source, task_id, start_text, duration, attendee, zone,
                                  from_status, steps, n)
    ), mine AS (
      -- A run of this task already booked: its appointment may have been
      -- rescheduled or cancelled since, so the day's index would not find it.
      SELECT DISTINCT ON (i.n) i.n, a.id
        FROM input i
        JOIN lead_events e ON e.lead_id = i.lead_id AND e.event_type = 'appointment_booked'
                          AND e.source = i.source
        JOIN appointments a ON a.id = (e.event_data->>'appointment_id')::uuid
       ORDER BY i.n
    ), ins AS (
      INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day,
                                time_zone, task_id)
      SELECT i.lead_id, i.start_text::timestamptz, i.duration, lower(i.attendee), i.on_day, i.zone,
             i.task_id
        FROM input i WHERE NOT EXISTS (SELECT 1 FROM mine m WHERE m.n = i.n)
       ORDER BY i.lead_id
      ON CONFLICT (business_id, day) WHERE status = 'booked' DO NOTHING
      RETURNING appointments.id, appointments.business_id, appointments.starts_at,
                appointments.duration_min, appointments.attendee_email, appointments.day,
                appointments.time_zone, appointments.status, appointments.task_id,
                appointments.created_at
    ), outcomes AS (
      SELECT i.n, i.lead_id, i.source, i.from_status, i.steps,
             coalesce(m.id, s.id, x.id) AS appointment_id,
             CASE WHEN m.id IS NOT NULL THEN 'own'
                  WHEN s.id IS NOT NULL THEN 'booked'
                  WHEN x.task_id = i.task_id THEN 'own'
                  ELSE 'duplicate' END AS outcome
        FROM input i
        LEFT JOIN mine m ON m.n = i.n
        LEFT JOIN ins s ON s.business_id = i.lead_id AND m.id IS NULL
        LEFT JOIN appointments x
          ON m.id IS NULL AND s.id IS NULL AND x.business_id = i.lead_id AND x.day = i.on_day
         AND x.status = 'booked'
    ), moved AS (
      UPDATE businesses b SET outreach_status = o.steps -> -1 ->> 'to'
        FROM outcomes o
       WHERE o.outcome = 'booked' AND jsonb_array_length(o.steps) > 0 AND b.id = o.lead_id
      RETURNING b.id
    ), history AS (
      -- What the history trigger (013) records for a status-only update.
      INSERT INTO lead_history (lead_id, source, action, changes)
      SELECT o.lead_id, o.source, 'status_changed',
             jsonb_build_object('outreach_status', jsonb_build_object(
               'old', to_jsonb(o.from_status), 'new', to_jsonb(o.steps -> -1 ->> 'to')))
        FROM outcomes o JOIN moved mv ON mv.id = o.lead_id
      RETURNING 1
    ), events AS (
      -- One status_changed per step (the last names the appointment), then
      -- appointment_booked, 1 µs apart in that order.
      INSERT INTO lead_events (lead_id, event_type, event_data, source, time)
      SELECT e.lead_id, e.event_type, e.event_data, e.source,
             clock_timestamp() + (e.k - 1) * interval '1 microsecond'
        FROM (
          SELECT o.lead_id, 'status_changed' AS event_type,
                 CASE WHEN st.k = jsonb_array_length(o.steps)
                      THEN jsonb_build_object('appointment_id', o.appointment_id) || st.step
                      ELSE st.step END AS event_data,
                 o.source, st.k
            FROM outcomes o CROSS JOIN LATERAL jsonb_array_elements(o.steps)
                 WITH ORDINALITY AS st(step, k)
           WHERE o.outcome = 'booked'
          UNION ALL
          SELECT o.lead_id, 'appointment_booked',
                 jsonb_build_object(
                   'appointment_id', s.id,
                   'starts_at', to_char(s.starts_at AT TIME ZONE 'UTC',
                                        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'duration_min', s.duration_min),
                 o.source, jsonb_array_length(o.steps) + 1
            FROM outcomes o JOIN ins s ON s.id = o.appointment_id
           WHERE o.outcome = 'booked'
        ) e
      RETURNING 1
    )
    -- A booked row comes from the insert (the statement's own inserts are not
    -- visible to its reads); the others existed before it.
    SELECT o.n, CASE WHEN o.outcome = 'own' AND a.status = 'cancelled' THEN 'cancelled'
                     ELSE o.outcome END,
           a.id, a.business_id, a.starts_at, a.duration_min, a.attendee_email, a.day::text,
           a.time_zone, a.status, a.task_id, a.created_at
      FROM outcomes o
      LEFT JOIN LATERAL (
        SELECT s.* FROM ins s WHERE s.id = o.appointment_id
        UNION ALL
        SELECT p.id, p.business_id, p.starts_at, p.duration_min, p.attendee_email, p.day,
               p.time_zone, p.status, p.task_id, p.created_at
          FROM appointments p WHERE p.id = o.appointment_id AND o.outcome <> 'booked'
      ) a ON true
     ORDER BY o.n;
  PERFORM set_config('pleasant_cove.lead_history', '', true);
END;
$fn$;
