/**
 * One training run end to end, for one population (docs/lead-scoring.md
 * §Populations): read the labelled leads of the window, train a candidate,
 * compare it with that population's champion on the candidate's holdout,
 * apply the gate, record the run (whatever its fate), activate it when it
 * passed and auto-activation is on, notify, and log it to MLflow when
 * configured. A training task runs it for every population.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { Config } from "../config/mod.ts";
import type { Logger } from "../log.ts";
import { afterSwitch, type DeployServices } from "./deploy.ts";
import { type Population, POPULATION_FEATURES, POPULATIONS } from "./features.ts";
import { applyGate } from "./gate.ts";
import { FINAL_STATUSES, SETTLING_STATUSES } from "./labels.ts";
import type { MlflowClient } from "./mlflow.ts";
import type { ModelNotifier } from "./notify.ts";
import { activateModel, getRun, loadChampion, recordRun, setMlflowRunId } from "./registry.ts";
import { featureColumns } from "./scores.ts";
import {
  DEFAULT_TRAIN_PARAMS,
  holdoutAuc,
  trainCandidate,
  type TrainingRow,
  type TrainParams,
} from "./train.ts";

/** What a run needs. */
export interface TrainingServices {
  sql: Pool;
  log: Logger;
  now: () => number;
  ml: Config["ml"];
  notify: ModelNotifier;
  enqueueRescore: DeployServices["enqueueRescore"];
  mlflow: MlflowClient | null;
}

/** What a run did. */
export interface TrainingResult {
  version: number;
  population: Population;
  status: "candidate" | "champion" | "rejected";
  reason: string;
  /** False when this task had recorded its run already (a redelivery). */
  created: boolean;
}

const DAY_MS = 86_400_000;

/**
 * The labelled leads whose last status change (the newest `status_changed`
 * event; `updated_at` for leads without events) is within the window.
 * `updated_at` alone would not do: rescoring touches every open lead.
 */
export async function loadTrainingRows(
  sql: Pool,
  options: { now: number; windowMs: number; settleDays: number },
): Promise<TrainingRow[]> {
  const { rows } = await sql.query<TrainingRow & { outreach_status: string }>(
    `SELECT * FROM (
       SELECT b.id, b.outreach_status, b.outreach_status = 'client' AS converted, ${
      featureColumns("b")
    },
         COALESCE((SELECT max(e.time) FROM lead_events e
                    WHERE e.lead_id = b.id AND e.event_type = 'status_changed'), b.updated_at) AS outcome_at
       FROM businesses b
       WHERE b.outreach_status = ANY($1::text[])
     ) t
     WHERE outcome_at >= $2 AND (outreach_status = ANY($3::text[]) OR outcome_at <= $4)`,
    [
      [...FINAL_STATUSES, ...SETTLING_STATUSES],
      new Date(options.now - options.windowMs),
      [...FINAL_STATUSES],
      new Date(options.now - options.settleDays * DAY_MS),
    ],
  );
  return rows;
}

/** The training parameters configuration asks for, for `population`. */
export function paramsFromConfig(ml: Config["ml"], population: Population): TrainParams {
  return {
    ...DEFAULT_TRAIN_PARAMS,
    population,
    seed: ml.seed,
    threshold: ml.threshold,
    minRows: ml.minRows,
    minClassExamples: ml.minClassExamples,
  };
}

/** Options of {@linkcode runTraining}. */
export interface TrainingOptions {
  /** With the population, makes a redelivery a no-op. */
  taskId: string | null;
  trigger: string;
  actor: string;
  population: Population;
}

/** Runs one training of every population, one after the other. */
export async function runTrainings(
  s: TrainingServices,
  options: Omit<TrainingOptions, "population">,
): Promise<TrainingResult[]> {
  const results: TrainingResult[] = [];
  for (const population of POPULATIONS) {
    results.push(await runTraining(s, { ...options, population }));
  }
  return results;
}

/** Runs one training of one population (see the module comment). */
export async function runTraining(
  s: TrainingServices,
  options: TrainingOptions,
): Promise<TrainingResult> {
  const started = s.now();
  const { population } = options;
  const params = paramsFromConfig(s.ml, population);
  const rows = await loadTrainingRows(s.sql, {
    now: started,
    windowMs: s.ml.windowMs,
    settleDays: s.ml.settleDays,
  });
  const outcome = trainCandidate(rows, params, started);
  const window = { window_start: new Date(started - s.ml.windowMs), window_end: new Date(started) };
  const recordedParams = {
    ...params,
    trigger: options.trigger,
    settle_days: s.ml.settleDays,
    gate: s.ml.gate,
  };
  let status: "candidate" | "rejected";
  let reason: string;
  let metrics: Record<string, unknown> | null = null;
  if (outcome.kind === "refused") {
    status = "rejected";
    reason = `refused: ${outcome.reason}`;
  } else {
    const champion = await loadChampion(s.sql, population);
    const championAuc = champion ? holdoutAuc(champion.model, outcome.holdout, started) : null;
    const decision = applyGate(outcome.metrics, championAuc, s.ml.gate);
    status = decision.passed ? "candidate" : "rejected";
    reason = decision.passed ? "passed the gate" : `gate: ${decision.reasons.join("; ")}`;
    metrics = {
      ...outcome.metrics,
      champion: champion ? { version: champion.version, roc_auc: championAuc } : null,
    };
  }
  const recorded = await recordRun(s.sql, {
    population,
    status,
    status_reason: reason,
    task_id: options.taskId,
    params: recordedParams,
    ...window,
    row_counts: { ...outcome.rows },
    metrics,
    feature_names: POPULATION_FEATURES[population],
    model: outcome.kind === "trained" && status === "candidate" ? outcome.model : null,
  });
  const version = recorded.version;
  let finalStatus: TrainingResult["status"] = status;
  if (recorded.created) {
    const auc = outcome.kind === "trained" ? outcome.metrics.model.roc_auc : null;
    await s.notify({ type: "model.trained", version, population, status, reason, roc_auc: auc });
    await logToMlflow(s, version, { status, reason, started, params: recordedParams, outcome });
  }
  // A redelivered task activates only a model still waiting as a candidate
  // (never one retired since by a later activation).
  const waiting = recorded.created || (await getRun(s.sql, version)).status === "candidate";
  if (status === "candidate" && s.ml.autoActivate && waiting) {
    const done = await activateModel(s.sql, version, options.actor);
    finalStatus = "champion";
    await afterSwitch(s, done, options.actor);
  }
  return { version, population, status: finalStatus, reason, created: recorded.created };
}

async function logToMlflow(
  s: TrainingServices,
  version: number,
  run: {
    status: string;
    reason: string;
    started: number;
    params: Record<string, unknown>;
    outcome: ReturnType<typeof trainCandidate>;
  },
): Promise<void> {
  if (!s.mlflow) return;
  const flat: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(run.params)) {
    flat[k] = typeof v === "object" ? JSON.stringify(v) : v as string;
  }
  const metrics: Record<string, number> = {};
  if (run.outcome.kind === "trained") {
    const m = run.outcome.metrics;
    for (const [k, v] of Object.entries(m.model)) metrics[k] = v;
    for (const [k, v] of Object.entries(m.baseline)) metrics[`baseline_${k}`] = v;
    metrics.heuristic_roc_auc = m.heuristic_roc_auc;
    for (const [k, v] of Object.entries(m.importances)) metrics[`importance_${k}`] = v;
  }
  try {
    const runId = await s.mlflow.logRun({
      runName: `lead-scoring v${version} (${run.params.population})`,
      startTime: run.started,
      endTime: s.now(),
      status: run.outcome.kind === "trained" ? "FINISHED" : "FAILED",
      params: flat,
      metrics,
      tags: {
        "pleasant_cove.model_version": String(version),
        "pleasant_cove.population": String(run.params.population),
        "pleasant_cove.status": run.status,
        "pleasant_cove.reason": run.reason,
      },
    });
    await setMlflowRunId(s.sql, version, runId);
  } catch (err) {
    // The Postgres registry is the record; MLflow is a mirror.
    s.log.warn("lead-scoring run not logged to MLflow", { version, err });
  }
}
