/**
 * The model registry in Postgres (sql/migrations/007_create_model_registry.sql):
 * recording runs, reading them, and switching the champion — activation and
 * rollback — each in ONE transaction that locks the registry's champion slot.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { type Queryable, withTransaction } from "../leads/transaction.ts";
import { ModelNotActivatableError, ModelNotFoundError, NoPreviousChampionError } from "./errors.ts";
import type { Population } from "./features.ts";
import { assertModel, type ScoringModel } from "./model.ts";

/** Run statuses. */
export type ModelStatus = "candidate" | "champion" | "retired" | "rejected";

/** A registry row without the serialised model. */
export interface ModelRun {
  version: number;
  /** The leads it serves (migration 012). */
  population: Population;
  status: ModelStatus;
  status_reason: string;
  task_id: string | null;
  params: Record<string, unknown>;
  window_start: Date | null;
  window_end: Date;
  row_counts: Record<string, unknown>;
  metrics: Record<string, unknown> | null;
  feature_names: string[];
  mlflow_run_id: string | null;
  created_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
}

const RUN_COLUMNS =
  `version, population, status, status_reason, task_id, params, window_start, window_end,
  row_counts, metrics, feature_names, mlflow_run_id, created_at, activated_at, retired_at`;

/** A run to record. */
export interface NewModelRun {
  population: Population;
  status: "candidate" | "rejected";
  status_reason: string;
  task_id: string | null;
  params: Record<string, unknown>;
  window_start: Date | null;
  window_end: Date;
  row_counts: Record<string, unknown>;
  metrics: Record<string, unknown> | null;
  feature_names: readonly string[];
  model: ScoringModel | null;
}

/**
 * Records a run; returns its version. A task retried after recording gets
 * the version it recorded before ((task_id, population) is unique), not a
 * second row.
 */
export async function recordRun(
  sql: Queryable,
  run: NewModelRun,
): Promise<{ version: number; created: boolean }> {
  const { rows } = await sql.query<{ version: number }>(
    `INSERT INTO ml_models (status, status_reason, task_id, params, window_start, window_end,
       row_counts, metrics, feature_names, model, population)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (task_id, population) DO NOTHING RETURNING version`,
    [
      run.status,
      run.status_reason,
      run.task_id,
      JSON.stringify(run.params),
      run.window_start,
      run.window_end,
      JSON.stringify(run.row_counts),
      run.metrics === null ? null : JSON.stringify(run.metrics),
      [...run.feature_names],
      run.model === null ? null : JSON.stringify(run.model),
      run.population,
    ],
  );
  if (rows[0]) return { version: rows[0].version, created: true };
  const existing = await sql.query<{ version: number }>(
    "SELECT version FROM ml_models WHERE task_id = $1 AND population = $2",
    [run.task_id, run.population],
  );
  return { version: existing.rows[0]!.version, created: false };
}

/** Notes the MLflow run id of a recorded run. */
export async function setMlflowRunId(
  sql: Queryable,
  version: number,
  runId: string,
): Promise<void> {
  await sql.query("UPDATE ml_models SET mlflow_run_id = $2 WHERE version = $1", [version, runId]);
}

/** The newest runs first (no serialised models). */
export async function listRuns(sql: Queryable, limit = 50): Promise<ModelRun[]> {
  const { rows } = await sql.query<ModelRun>(
    `SELECT ${RUN_COLUMNS} FROM ml_models ORDER BY version DESC LIMIT $1`,
    [limit],
  );
  return rows;
}

/** One run; {@linkcode ModelNotFoundError} when unknown. */
export async function getRun(sql: Queryable, version: number): Promise<ModelRun> {
  const { rows } = await sql.query<ModelRun>(
    `SELECT ${RUN_COLUMNS} FROM ml_models WHERE version = $1`,
    [version],
  );
  if (!rows[0]) throw new ModelNotFoundError(version);
  return rows[0];
}

/** The champion's version of `population`, or null. */
export async function championVersion(
  sql: Queryable,
  population: Population,
): Promise<number | null> {
  const { rows } = await sql.query<{ version: number }>(
    "SELECT version FROM ml_models WHERE status = 'champion' AND population = $1",
    [population],
  );
  return rows[0]?.version ?? null;
}

/** The champion version of every population that has one. */
export async function championVersions(
  sql: Queryable,
): Promise<Partial<Record<Population, number>>> {
  const { rows } = await sql.query<{ population: Population; version: number }>(
    "SELECT population, version FROM ml_models WHERE status = 'champion'",
  );
  return Object.fromEntries(rows.map((r) => [r.population, r.version]));
}

/** A champion with its model. */
export interface Champion {
  version: number;
  population: Population;
  model: ScoringModel;
}

/** The champion of `population` with its model, or null. */
export async function loadChampion(
  sql: Queryable,
  population: Population,
): Promise<Champion | null> {
  const { rows } = await sql.query<{ version: number; model: unknown }>(
    "SELECT version, model FROM ml_models WHERE status = 'champion' AND population = $1",
    [population],
  );
  const row = rows[0];
  return row ? { version: row.version, population, model: assertModel(row.model) } : null;
}

/** The model of one version (for the champion comparison). */
export async function loadModel(sql: Queryable, version: number): Promise<ScoringModel> {
  const { rows } = await sql.query<{ model: unknown }>(
    "SELECT model FROM ml_models WHERE version = $1",
    [version],
  );
  if (!rows[0]) throw new ModelNotFoundError(version);
  return assertModel(rows[0].model);
}

/** What a champion switch did. */
export interface ChampionSwitch {
  /** The activation's id (its rescoring is keyed by it); null when nothing changed. */
  activation_id: number | null;
  version: number;
  /** The champion it replaced (null when there was none). */
  previous: number | null;
  action: "activate" | "rollback";
  /** The population whose champion switched. */
  population: Population;
}

// Both switches serialise on this advisory lock: two admins activating at
// once apply one after the other instead of one failing on the unique index.
const LOCK = "SELECT pg_advisory_xact_lock(hashtext('ml_models:champion'))";

async function switchChampion(
  client: Queryable,
  target: { version: number; population: Population },
  actor: string,
  action: "activate" | "rollback",
  reason: string,
): Promise<ChampionSwitch> {
  const { version, population } = target;
  const current = await championVersion(client, population);
  await client.query(
    `UPDATE ml_models SET status = 'retired', retired_at = now(), status_reason = $1
      WHERE status = 'champion' AND population = $2`,
    [`replaced by version ${version} (${action} by ${actor})`, population],
  );
  await client.query(
    `UPDATE ml_models SET status = 'champion', activated_at = now(), retired_at = NULL,
       status_reason = $2 WHERE version = $1`,
    [version, reason],
  );
  const { rows } = await client.query<{ id: number }>(
    `INSERT INTO ml_model_activations (version, previous_version, action, actor)
     VALUES ($1, $2, $3, $4) RETURNING id`,
    [version, action === "rollback" ? await previousOf(client, version) : current, action, actor],
  );
  return { activation_id: rows[0]!.id, version, previous: current, action, population };
}

/** The population of the latest champion switch; undefined before the first. */
async function latestSwitchedPopulation(client: Queryable): Promise<Population | undefined> {
  const { rows } = await client.query<{ population: Population }>(
    `SELECT m.population FROM ml_model_activations a JOIN ml_models m ON m.version = a.version
      ORDER BY a.id DESC LIMIT 1`,
  );
  return rows[0]?.population;
}

/** The champion before `version` along the activation chain, or null. */
async function previousOf(client: Queryable, version: number | null): Promise<number | null> {
  if (version === null) return null;
  const { rows } = await client.query<{ previous_version: number | null }>(
    `SELECT previous_version FROM ml_model_activations WHERE version = $1 ORDER BY id DESC LIMIT 1`,
    [version],
  );
  return rows[0]?.previous_version ?? null;
}

/**
 * Makes `version` the champion of its population in one transaction (that
 * population's champion is retired). Candidates and retired models qualify;
 * activating the champion again is a no-op that reports `previous: version`.
 */
export async function activateModel(
  sql: Pool,
  version: number,
  actor: string,
): Promise<ChampionSwitch> {
  return await withTransaction(sql, async (client) => {
    await client.query(LOCK);
    const { rows } = await client.query<
      { status: ModelStatus; has_model: boolean; population: Population }
    >(
      `SELECT status, model IS NOT NULL AS has_model, population FROM ml_models
        WHERE version = $1 FOR UPDATE`,
      [version],
    );
    const row = rows[0];
    if (!row) throw new ModelNotFoundError(version);
    const { population } = row;
    if (row.status === "champion") {
      return { activation_id: null, version, previous: version, action: "activate", population };
    }
    if (!row.has_model || row.status === "rejected") {
      throw new ModelNotActivatableError(version, row.status);
    }
    return await switchChampion(
      client,
      { version, population },
      actor,
      "activate",
      `activated by ${actor}`,
    );
  });
}

/**
 * Returns `population` to the champion the current one replaced, in one
 * transaction; repeated rollbacks walk further back. Without a population,
 * the one of the latest switch (what an admin undoes).
 * {@linkcode NoPreviousChampionError} when there is none.
 */
export async function rollbackChampion(
  sql: Pool,
  actor: string,
  population?: Population,
): Promise<ChampionSwitch> {
  return await withTransaction(sql, async (client) => {
    await client.query(LOCK);
    population ??= await latestSwitchedPopulation(client);
    if (population === undefined) throw new NoPreviousChampionError();
    const previous = await previousOf(client, await championVersion(client, population));
    if (previous === null) throw new NoPreviousChampionError();
    return await switchChampion(
      client,
      { version: previous, population },
      actor,
      "rollback",
      `restored by rollback (${actor})`,
    );
  });
}
