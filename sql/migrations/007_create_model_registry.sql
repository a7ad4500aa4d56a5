-- 007: the lead-scoring model registry (docs/lead-scoring.md).
--
-- ml_models: one row per training run, whatever its fate: its parameters,
-- data window, row counts, metrics, feature list and the serialised model,
-- its status and why. At most one champion, enforced by a partial unique
-- index, so an activation that forgets to retire the old champion fails
-- instead of leaving two.
--
-- ml_model_activations: every switch of the champion (activation or
-- rollback) with the champion it replaced; rollback follows this chain.
--
-- ml_rescore_runs: progress of the rescoring of open leads after a champion
-- switch, one row per activation (a rollback to an earlier model rescores
-- again). Each chunk moves last_id forward in
-- the same transaction as its UPDATE, so a killed rescoring resumes after
-- the last committed chunk: no lead is rescored twice or skipped.
--
-- businesses gains where its lead_score came from: the model version, or the
-- heuristic (no champion), or a caller (manual); and the features that moved
-- the score most. Added without defaults: no table rewrite.

CREATE TABLE ml_models (
  version integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  status text NOT NULL CHECK (status IN ('candidate', 'champion', 'retired', 'rejected')),
  status_reason text NOT NULL DEFAULT '',
  task_id text UNIQUE,
  params jsonb NOT NULL DEFAULT '{}'::jsonb,
  window_start timestamptz,
  window_end timestamptz NOT NULL,
  row_counts jsonb NOT NULL DEFAULT '{}'::jsonb,
  metrics jsonb,
  feature_names text[] NOT NULL DEFAULT '{}',
  model jsonb,
  mlflow_run_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz,
  retired_at timestamptz,
  CHECK (status IN ('candidate', 'rejected') OR model IS NOT NULL)
);
CREATE UNIQUE INDEX ml_models_one_champion_key ON ml_models ((true)) WHERE status = 'champion';
CREATE INDEX ml_models_created_idx ON ml_models (created_at DESC);

CREATE TABLE ml_model_activations (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  version integer NOT NULL REFERENCES ml_models (version),
  previous_version integer REFERENCES ml_models (version),
  action text NOT NULL CHECK (action IN ('activate', 'rollback')),
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ml_rescore_runs (
  activation_id integer PRIMARY KEY REFERENCES ml_model_activations (id),
  model_version integer NOT NULL REFERENCES ml_models (version),
  last_id uuid,
  rows_done bigint NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

ALTER TABLE businesses
  ADD COLUMN lead_score_model integer,
  ADD COLUMN lead_score_source text CHECK (lead_score_source IN ('model', 'heuristic', 'manual')),
  ADD COLUMN lead_score_factors jsonb;
