-- 012: stage-aware lead scoring (docs/lead-scoring.md §Populations).
--
-- A model serves one population: `pre_reply` (leads without a recorded
-- reply, scored from what is known before one) or `replied` (leads with a
-- response time, scored from every feature). Each population has its own
-- champion, activation chain and rescoring; a training task records one run
-- per population.
--
-- Existing runs were trained on every feature, the replied model's feature
-- set: they become `replied`. The default exists only to backfill them and is
-- dropped, so every new run states its population. ADD COLUMN with a constant
-- default does not rewrite the table.

ALTER TABLE ml_models
  ADD COLUMN population text NOT NULL DEFAULT 'replied'
    CHECK (population IN ('pre_reply', 'replied'));
ALTER TABLE ml_models ALTER COLUMN population DROP DEFAULT;

-- At most one champion per population (was: one overall).
DROP INDEX ml_models_one_champion_key;
CREATE UNIQUE INDEX ml_models_one_champion_per_population_key ON ml_models (population)
  WHERE status = 'champion';

-- A redelivered training task finds the run it recorded for each population.
ALTER TABLE ml_models DROP CONSTRAINT ml_models_task_id_key;
ALTER TABLE ml_models ADD CONSTRAINT ml_models_task_population_key UNIQUE (task_id, population);
