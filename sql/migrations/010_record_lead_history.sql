-- 010: lead history — every change to a lead with the old and new value of
-- each field, who made it and when (GET /v1/leads/{id}/history, docs/api.md
-- "Lead history").
--
-- Field changes are recorded by a trigger on businesses, so every writer
-- (edge routes, workers, imports, scoring) is covered in the transaction of
-- its write without having to remember to. The trigger cannot see the
-- caller, so writers name themselves with a transaction-local setting,
-- set_config('pleasant_cove.change_source', '<source>', true), in the same
-- transaction (shared/leads/history.ts); a write that did not is recorded as
-- 'platform'. 'pleasant_cove.change_action' may name the change
-- ('reopened'); otherwise the trigger derives it from what changed.
-- Notes are not a field of businesses: they are inserted here by the code
-- that records the note_added event, in the same transaction.
--
--   source   who: 'api:<principal sub>', 'worker:<task>', 'platform', …
--   action   created | updated | status_changed | scored | reopened | note_added
--   changes  {"<field>": {"old": <json>, "new": <json>}, …}; a created lead
--            lists its non-null initial values with old null
--
-- updated_at (every write bumps it) and lead_score_factors (the model's
-- explanation, large and derived) are not history. Rows go with their lead
-- (ON DELETE CASCADE): erasing a lead erases its history.

CREATE TABLE lead_history (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lead_id uuid NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  source text NOT NULL,
  action text NOT NULL CHECK (action ~ '^[a-z][a-z_]{0,39}$'),
  changes jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'object')
);

-- The history of one lead, keyset-paged by (at, id) in either direction.
CREATE INDEX lead_history_lead_at_idx ON lead_history (lead_id, at, id);

CREATE FUNCTION record_lead_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_row jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
  new_row jsonb := to_jsonb(NEW) - 'id' - 'created_at' - 'updated_at' - 'lead_score_factors';
  changed jsonb;
  fields text[];
  action text := nullif(current_setting('pleasant_cove.change_action', true), '');
BEGIN
  SELECT coalesce(jsonb_object_agg(n.key, jsonb_build_object('old', old_row -> n.key, 'new', n.value)),
                  '{}'::jsonb),
         coalesce(array_agg(n.key ORDER BY n.key), '{}')
    INTO changed, fields
    FROM jsonb_each(new_row) AS n
   WHERE (TG_OP = 'UPDATE' AND n.value IS DISTINCT FROM old_row -> n.key)
      OR (TG_OP = 'INSERT' AND n.value <> 'null'::jsonb);
  IF TG_OP = 'UPDATE' AND changed = '{}'::jsonb THEN
    RETURN NULL;
  END IF;
  IF action IS NULL THEN
    action := CASE
      WHEN TG_OP = 'INSERT' THEN 'created'
      WHEN fields = ARRAY['outreach_status'] THEN 'status_changed'
      WHEN fields <@ ARRAY['lead_score', 'lead_score_model', 'lead_score_source'] THEN 'scored'
      ELSE 'updated'
    END;
  END IF;
  INSERT INTO lead_history (lead_id, source, action, changes)
  VALUES (NEW.id,
          coalesce(nullif(current_setting('pleasant_cove.change_source', true), ''), 'platform'),
          action, changed);
  RETURN NULL;
END;
$$;

CREATE TRIGGER businesses_record_history
  AFTER INSERT OR UPDATE ON businesses
  FOR EACH ROW EXECUTE FUNCTION record_lead_history();
