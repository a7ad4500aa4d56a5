-- 016: the email ledger's claim and record steps for many sends in ONE call.
--
-- A worker runs many send_email tasks at once; each used to claim its ledger
-- row and record its delivery with statements of its own. Per email, the
-- statements' round trips, parsing, planning, executor start-up and commit
-- cost far more than their rows (docs/benchmarks.md, bench:outreach). These
-- functions take a batch of sends as parallel arrays and decide every send
-- with set-based statements, with the same outcome per send as the single
-- statements they replace (shared/leads/email_ledger.ts):
--
-- * claim_email_sends: the row of the once-per-day key is inserted as
--   `sending` with the send's claim token, or taken over when it is neither
--   sent nor claimed by a live sender (or claimed by the same task);
--   otherwise the send is `sent` or `busy` (looked up by a second statement,
--   which sees rows other transactions committed meanwhile). A key given
--   twice is claimed by its first send; the later one finds that claim.
-- * record_email_deliveries: marks a row sent only while its claim is held,
--   moves the lead from `new` to `contacted`, stamps last_contacted, writes
--   the `status_changed` and `email_sent` events, and the lead's history row
--   with the send's own source (task id). The history trigger (010, 013)
--   reads one source per statement, so this statement writes the history
--   rows itself, with what the trigger would have written, and tells the
--   trigger so (pleasant_cove.lead_history = 'written', transaction-local,
--   cleared again before the function returns).
--
-- Rows are locked in lead order, so batches that share leads do not deadlock.

-- The trigger of 010 with a WHEN: skipped while a writer records history itself.
DROP TRIGGER businesses_record_history ON businesses;
CREATE TRIGGER businesses_record_history
  AFTER INSERT OR UPDATE ON businesses
  FOR EACH ROW
  WHEN (current_setting('pleasant_cove.lead_history', true) IS DISTINCT FROM 'written')
  EXECUTE FUNCTION record_lead_history();

CREATE FUNCTION claim_email_sends(
  ids uuid[], business_ids uuid[], to_addresses text[], templates text[], send_days date[],
  subjects text[], providers text[], message_ids text[], task_ids text[], tokens uuid[],
  claim_ms double precision[]
) RETURNS TABLE (n bigint, outcome text, message_id text, claimed_until timestamptz)
LANGUAGE plpgsql AS $fn$
-- The result columns are named like table columns: a bare name means the column.
#variable_conflict use_column
DECLARE
  claimed_tokens uuid[];
  claimed_ids text[];
BEGIN
  WITH input AS (
    SELECT DISTINCT ON (u.to_address, u.template, u.business_id, u.send_day) u.*
      FROM unnest(ids, business_ids, to_addresses, templates, send_days, subjects, providers,
                  message_ids, task_ids, tokens, claim_ms)
           WITH ORDINALITY AS u(id, business_id, to_address, template, send_day, subject,
                                provider, message_id, task_id, token, claim_ms, n)
     ORDER BY u.to_address, u.template, u.business_id, u.send_day, u.n
  ), claimed AS (
    INSERT INTO email_messages AS m
      (id, business_id, to_address, template, send_day, subject, provider, message_id, task_id,
       status, claim_token, claimed_until, attempts)
    SELECT i.id, i.business_id, i.to_address, i.template, i.send_day, i.subject, i.provider,
           i.message_id, i.task_id, 'sending', i.token,
           clock_timestamp() + i.claim_ms * interval '1 millisecond', 1
      FROM input i
     ORDER BY i.business_id, i.n
    ON CONFLICT (to_address, template, business_id, send_day) DO UPDATE
      SET status = 'sending', claim_token = EXCLUDED.claim_token,
          claimed_until = EXCLUDED.claimed_until, attempts = m.attempts + 1,
          task_id = EXCLUDED.task_id
      WHERE m.status <> 'sent'
        AND (m.status <> 'sending' OR m.claimed_until < clock_timestamp()
             -- A redelivery of the SAME task (its lease expired: the earlier
             -- attempt crashed or stalled) takes its own claim over at once;
             -- the queue's lease lets only one attempt of a task be live.
             OR m.task_id = EXCLUDED.task_id)
    RETURNING m.claim_token, m.message_id
  )
  SELECT coalesce(array_agg(c.claim_token), '{}'), coalesce(array_agg(c.message_id), '{}')
    INTO claimed_tokens, claimed_ids
    FROM claimed c;
  -- An existing row keeps its Message-ID: every attempt of one send carries the same one.
  RETURN QUERY
    SELECT u.n, CASE WHEN c.token IS NOT NULL THEN 'claimed'
                     WHEN e.status = 'sent' THEN 'sent' ELSE 'busy' END,
           coalesce(c.message_id, e.message_id),
           CASE WHEN c.token IS NULL THEN e.claimed_until END
      FROM unnest(business_ids, to_addresses, templates, send_days, tokens)
           WITH ORDINALITY AS u(business_id, to_address, template, send_day, token, n)
      LEFT JOIN unnest(claimed_tokens, claimed_ids) AS c(token, message_id) ON c.token = u.token
      LEFT JOIN email_messages e
        ON c.token IS NULL AND e.to_address = u.to_address AND e.template = u.template
       AND e.business_id = u.business_id AND e.send_day = u.send_day
     ORDER BY u.n;
END;
$fn$;

CREATE FUNCTION record_email_deliveries(
  ids uuid[], tokens uuid[], responses text[], events jsonb[], sources text[]
) RETURNS TABLE (n bigint, sent boolean)
LANGUAGE plpgsql AS $fn$
-- The result columns are named like table columns: a bare name means the column.
#variable_conflict use_column
BEGIN
  PERFORM set_config('pleasant_cove.lead_history', 'written', true);
  RETURN QUERY
    WITH input AS (
      SELECT * FROM unnest(ids, tokens, responses, events, sources)
                    WITH ORDINALITY AS u(id, token, response, event, source, n)
    ), sent AS (
      UPDATE email_messages m
         SET status = 'sent', sent_at = now(), provider_response = left(i.response, 2000),
             claim_token = NULL, claimed_until = NULL
        FROM input i
       WHERE m.id = i.id AND m.claim_token = i.token AND m.status = 'sending'
      RETURNING i.n, m.business_id, i.event, i.source
    ), first AS (
      -- One lead update (and history row, and status change) per lead, named after its first send.
      SELECT DISTINCT ON (s.business_id) s.* FROM sent s ORDER BY s.business_id, s.n
    ), before AS (
      SELECT b.id, b.outreach_status AS status, b.last_contacted FROM businesses b
       WHERE b.id IN (SELECT business_id FROM first)
       ORDER BY b.id FOR UPDATE
    ), lead AS (
      UPDATE businesses b
         SET last_contacted = now(),
             outreach_status = CASE WHEN before.status = 'new' THEN 'contacted'
                                    ELSE b.outreach_status END
        FROM before WHERE b.id = before.id
      RETURNING b.id, before.status AS old_status, b.outreach_status AS new_status,
                before.last_contacted AS old_contacted, b.last_contacted AS new_contacted
    ), changed AS (
      -- What the history trigger (013) records for this update: each field that changed.
      SELECT l.id, f.source,
             CASE WHEN l.old_contacted IS DISTINCT FROM l.new_contacted
                  THEN jsonb_build_object('last_contacted', jsonb_build_object(
                    'old', to_jsonb(l.old_contacted), 'new', to_jsonb(l.new_contacted)))
                  ELSE '{}'::jsonb END ||
             CASE WHEN l.old_status IS DISTINCT FROM l.new_status
                  THEN jsonb_build_object('outreach_status', jsonb_build_object(
                    'old', to_jsonb(l.old_status), 'new', to_jsonb(l.new_status)))
                  ELSE '{}'::jsonb END AS changes
        FROM lead l JOIN first f ON f.business_id = l.id
    ), history AS (
      INSERT INTO lead_history (lead_id, source, action, changes)
      SELECT c.id, c.source,
             CASE WHEN c.changes ? 'last_contacted' THEN 'updated' ELSE 'status_changed' END,
             c.changes
        FROM changed c WHERE c.changes <> '{}'::jsonb
      RETURNING 1
    ), events AS (
      INSERT INTO lead_events (lead_id, event_type, event_data, source, time)
      SELECT f.business_id, 'status_changed',
             jsonb_build_object('from', 'new', 'to', 'contacted') || (f.event - 'to' - 'template'),
             f.source, clock_timestamp()
        FROM first f JOIN lead l ON l.id = f.business_id WHERE l.old_status = 'new'
      UNION ALL
      SELECT s.business_id, 'email_sent', s.event, s.source,
             clock_timestamp() + interval '1 microsecond'
        FROM sent s JOIN lead l ON l.id = s.business_id
      RETURNING 1
    )
    -- (history and events run although nothing reads them: data-modifying CTEs always do.)
    SELECT i.n, s.n IS NOT NULL FROM input i LEFT JOIN sent s ON s.n = i.n ORDER BY i.n;
  PERFORM set_config('pleasant_cove.lead_history', '', true);
END;
$fn$;
