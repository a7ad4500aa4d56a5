-- 009: accent-insensitive lead search and the indexes of the lead list's sorts
-- (GET /v1/leads, docs/api.md "Leads: list, search, sort").
--
-- lead_search_fold(text): the form names are compared in, lower case without
-- accents, so `q=cafe` finds "Café". It is IMMUTABLE so that it can be
-- indexed. With the `unaccent` extension (contrib: in Debian's postgresql
-- package and on Neon) it calls unaccent() with its dictionary named
-- explicitly — the one-argument form depends on search_path and is only
-- STABLE, which is why the wrapper, not unaccent() itself, is indexed. Where
-- the extension cannot be created (not installed, no privilege) the migration
-- must not fail, like 004 with TimescaleDB: the error is caught and the
-- function folds the common Latin-1/Latin Extended-A accents with translate()
-- instead. Which one was installed is recorded in lead_search_config.
--
-- With pg_trgm (also contrib) a trigram GIN index on the folded name serves
-- the substring search; without it the search scans, as it did before.

CREATE TABLE lead_search_config (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  fold text NOT NULL CHECK (fold IN ('unaccent', 'translate')),
  trigram_index boolean NOT NULL,
  details jsonb NOT NULL DEFAULT '{}'::jsonb
);

DO $migration$
DECLARE
  unaccent_schema text;
  unaccent_error text;
  trgm_schema text;
  trgm_error text;
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS unaccent;
  EXCEPTION WHEN OTHERS THEN
    unaccent_error := SQLERRM;
  END;
  SELECT n.nspname INTO unaccent_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'unaccent';

  IF unaccent_schema IS NOT NULL THEN
    EXECUTE format(
      $f$CREATE FUNCTION lead_search_fold(text) RETURNS text
           LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
           AS $body$ SELECT lower(%1$I.unaccent(%2$L::regdictionary, $1)) $body$$f$,
      unaccent_schema, unaccent_schema || '.unaccent');
  ELSE
    CREATE FUNCTION lead_search_fold(text) RETURNS text
      LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
      AS $body$ SELECT lower(translate($1,
        'ÀÁÂÃÄÅàáâãäåĀāĂăĄąÇçĆćĈĉĊċČčĎďĐđÈÉÊËèéêëĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħÌÍÎÏìíîïĨĩĪīĬĭĮįİıĴĵĶķĹĺĻļĽľĿŀŁłÑñŃńŅņŇňÒÓÔÕÖØòóôõöøŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲųŴŵÝýÿŶŷŸŹźŻżŽž',
        'AAAAAAaaaaaaAaAaAaCcCcCcCcCcDdDdEEEEeeeeEeEeEeEeEeGgGgGgGgHhHhIIIIiiiiIiIiIiIiIiJjKkLlLlLlLlLlNnNnNnNnOOOOOOooooooOoOoOoRrRrRrSsSsSsSsTtTtTtUUUUuuuuUuUuUuUuUuUuWwYyyYyYZzZzZz'))
      $body$;
  END IF;

  BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
  EXCEPTION WHEN OTHERS THEN
    trgm_error := SQLERRM;
  END;
  SELECT n.nspname INTO trgm_schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_trgm';
  IF trgm_schema IS NOT NULL THEN
    EXECUTE format(
      'CREATE INDEX businesses_name_fold_trgm_idx ON businesses USING gin (lead_search_fold(name) %I.gin_trgm_ops)',
      trgm_schema);
  END IF;

  INSERT INTO lead_search_config (fold, trigram_index, details) VALUES (
    CASE WHEN unaccent_schema IS NULL THEN 'translate' ELSE 'unaccent' END,
    trgm_schema IS NOT NULL,
    jsonb_strip_nulls(jsonb_build_object(
      'unaccent_error', unaccent_error,
      'pg_trgm_error', trgm_error
    )));
END
$migration$;

-- The sorts of GET /v1/leads, each with the id tie-break of its keyset
-- cursor; a btree serves both directions. created_at already has
-- businesses_created_id_idx (002). lead_score sorts NULL (never scored) as -1:
-- below every score, so last when descending and first when ascending.
CREATE INDEX businesses_updated_id_idx ON businesses (updated_at, id);
CREATE INDEX businesses_score_id_idx ON businesses ((COALESCE(lead_score, -1)), id);
