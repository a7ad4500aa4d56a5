-- 013: lead history at a third less cost per written lead. Migration 010's
-- trigger diffed to_jsonb(OLD) against to_jsonb(NEW) key by key; on bulk
-- rescoring that cost about 110 µs per row and took rescoring below its
-- target (docs/benchmarks.md, Design measurements). The function is now
-- GENERATED from the columns of businesses: one IS DISTINCT FROM per column,
-- JSON built only for what changed. Same rows as 010's: the same excluded
-- columns, the same actions, sources and changes.
--
-- A later migration that adds, drops or renames a column of businesses must
-- end with SELECT regenerate_lead_history_function(); so the new column is
-- recorded (shared/leads/history_test.ts fails when a column is missing
-- from the function).

CREATE OR REPLACE FUNCTION regenerate_lead_history_function() RETURNS void
LANGUAGE plpgsql AS $gen$
DECLARE
  on_update text := '';
  on_insert text := '';
  col record;
BEGIN
  FOR col IN
    SELECT a.attname AS name FROM pg_attribute a
     WHERE a.attrelid = 'businesses'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       -- Not history (010): the key, bookkeeping times, the model's explanation.
       AND a.attname NOT IN ('id', 'created_at', 'updated_at', 'lead_score_factors')
     ORDER BY a.attnum
  LOOP
    on_update := on_update || format(
      $f$    IF NEW.%1$I IS DISTINCT FROM OLD.%1$I THEN
      changed := changed || jsonb_build_object(%1$L,
        jsonb_build_object('old', to_jsonb(OLD.%1$I), 'new', to_jsonb(NEW.%1$I)));
      fields := fields || %1$L::text;
    END IF;
$f$, col.name);
    on_insert := on_insert || format(
      $f$    IF NEW.%1$I IS NOT NULL THEN
      changed := changed || jsonb_build_object(%1$L,
        jsonb_build_object('old', NULL, 'new', to_jsonb(NEW.%1$I)));
    END IF;
$f$, col.name);
  END LOOP;
  EXECUTE format($body$
CREATE OR REPLACE FUNCTION record_lead_history() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  changed jsonb := '{}'::jsonb;
  fields text[] := '{}';
  action text := nullif(current_setting('pleasant_cove.change_action', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
%s    action := coalesce(action, 'created');
  ELSE
%s    IF changed = '{}'::jsonb THEN
      RETURN NULL;
    END IF;
    IF action IS NULL THEN
      action := CASE
        WHEN fields = ARRAY['outreach_status'] THEN 'status_changed'
        WHEN fields <@ ARRAY['lead_score', 'lead_score_model', 'lead_score_source'] THEN 'scored'
        ELSE 'updated'
      END;
    END IF;
  END IF;
  INSERT INTO lead_history (lead_id, source, action, changes)
  VALUES (NEW.id,
          coalesce(nullif(current_setting('pleasant_cove.change_source', true), ''), 'platform'),
          action, changed);
  RETURN NULL;
END;
$fn$
$body$, on_insert, on_update);
END;
$gen$;

-- The trigger of 010 calls record_lead_history() by name: replacing the
-- function is enough.
SELECT regenerate_lead_history_function();
