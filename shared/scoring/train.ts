/**
 * Training one candidate: refuse too little data, split by time (oldest
 * rows train the forest, the next ones calibrate it, the newest are the
 * holdout), train, calibrate, and measure the model, the majority-class
 * baseline and the heuristic `lead_score` on the same holdout.
 *
 * @module
 */
import { fitPlatt } from "./calibration.ts";
import {
  buildVocabulary,
  type FeatureSource,
  type Population,
  POPULATION_FEATURES,
} from "./features.ts";
import { predictForest, trainForest } from "./forest.ts";
import { heuristicScore } from "./heuristic.ts";
import { baselineMetrics, evaluate, type Metrics, rocAuc } from "./metrics.ts";
import { modelVector, scoreVector, type ScoringModel } from "./model.ts";

/** A labelled lead. */
export interface TrainingRow extends FeatureSource {
  id: string;
  /** Became a client. */
  converted: boolean;
}

/** Training parameters (recorded with every run). */
export interface TrainParams {
  /**
   * Which leads the model serves (docs/lead-scoring.md §Populations):
   * `replied` trains on the labelled leads with a reply and every feature;
   * `pre_reply` on every labelled lead as it was before any reply, with the
   * features known then.
   */
  population: Population;
  nTrees: number;
  maxDepth: number;
  /** Features tried per split. */
  maxFeatures: number;
  minSamplesLeaf: number;
  maxBins: number;
  seed: number;
  /** Newest share of rows held out for the metrics and the gate. */
  holdoutFraction: number;
  /** Share of the remaining (older) rows, the newest of them, that fit the calibration. */
  calibrationFraction: number;
  /** Probability at which a lead counts as "will convert" for accuracy, precision, recall. */
  threshold: number;
  /** Fewer labelled rows are refused (the seed pipeline's 100). */
  minRows: number;
  /** A class with fewer examples in ANY split is refused. */
  minClassExamples: number;
}

/** Defaults: the seed's 100 trees of depth 10 and 100-row minimum. */
export const DEFAULT_TRAIN_PARAMS: TrainParams = {
  population: "replied",
  nTrees: 100,
  maxDepth: 10,
  maxFeatures: 3,
  minSamplesLeaf: 5,
  maxBins: 64,
  seed: 42,
  holdoutFraction: 0.2,
  calibrationFraction: 0.2,
  threshold: 0.5,
  minRows: 100,
  minClassExamples: 10,
};

/** Row counts of a run. */
export interface RowCounts {
  total: number;
  positives: number;
  train: number;
  calibration: number;
  holdout: number;
}

/** Holdout metrics of the model and what it is compared with. */
export interface RunMetrics {
  model: Metrics;
  baseline: Metrics;
  /** The heuristic's scores ranked on the same holdout. */
  heuristic_roc_auc: number;
  importances: Record<string, number>;
}

/** What a training attempt produced. */
export type TrainOutcome =
  | { kind: "refused"; reason: string; rows: RowCounts }
  | {
    kind: "trained";
    model: ScoringModel;
    metrics: RunMetrics;
    rows: RowCounts;
    /** The holdout itself (for the champion comparison). */
    holdout: TrainingRow[];
  };

function labelOf(row: TrainingRow): number {
  return row.converted ? 1 : 0;
}

/** Oldest first by created_at, then id: the split is the same for the same rows. */
function byTime(a: TrainingRow, b: TrainingRow): number {
  return a.created_at.getTime() - b.created_at.getTime() ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The labelled rows a population's model learns from and is measured on. */
export function populationRows(
  rows: readonly TrainingRow[],
  population: Population,
): TrainingRow[] {
  // Every lead was once waiting for a reply: the pre-reply model learns from
  // all of them (its features exclude what only a reply or its aftermath
  // tells); the replied model only from leads that replied.
  return population === "pre_reply"
    ? [...rows]
    : rows.filter((r) => r.response_time_hours !== null);
}

/**
 * Trains a candidate for `params.population` from labelled `rows` as of
 * `now` (epoch ms). Pure and deterministic.
 */
export function trainCandidate(
  rows: readonly TrainingRow[],
  params: TrainParams,
  now: number,
): TrainOutcome {
  const sorted = populationRows(rows, params.population).sort(byTime);
  const total = sorted.length;
  const holdoutStart = total - Math.max(1, Math.round(total * params.holdoutFraction));
  const calibrationStart = holdoutStart -
    Math.max(1, Math.round(holdoutStart * params.calibrationFraction));
  const train = sorted.slice(0, calibrationStart);
  const calibration = sorted.slice(calibrationStart, holdoutStart);
  const holdout = sorted.slice(holdoutStart);
  const counts: RowCounts = {
    total,
    positives: sorted.filter((r) => r.converted).length,
    train: train.length,
    calibration: calibration.length,
    holdout: holdout.length,
  };
  if (total < params.minRows) {
    return {
      kind: "refused",
      reason: `${total} labelled leads, fewer than the minimum ${params.minRows}`,
      rows: counts,
    };
  }
  for (
    const [name, part] of [["training", train], ["calibration", calibration], [
      "holdout",
      holdout,
    ]] as const
  ) {
    const positives = part.filter((r) => r.converted).length;
    for (
      const [cls, n] of [["converted", positives], [
        "not converted",
        part.length - positives,
      ]] as const
    ) {
      if (n < params.minClassExamples) {
        return {
          kind: "refused",
          reason:
            `the ${name} split has ${n} "${cls}" leads, fewer than the minimum ${params.minClassExamples}`,
          rows: counts,
        };
      }
    }
  }
  const features = [...POPULATION_FEATURES[params.population]];
  const shell = { vocabulary: buildVocabulary(train), features } as ScoringModel;
  const vectors = (part: TrainingRow[]) => part.map((r) => modelVector(shell, r, now));
  const forest = trainForest(vectors(train), train.map(labelOf), {
    nTrees: params.nTrees,
    maxDepth: params.maxDepth,
    maxFeatures: params.maxFeatures,
    minSamplesLeaf: params.minSamplesLeaf,
    maxBins: params.maxBins,
    seed: params.seed,
  });
  const calibrationRaw = vectors(calibration).map((v) => predictForest(forest, v));
  const model: ScoringModel = {
    format: "pc-forest-v1",
    features,
    vocabulary: shell.vocabulary,
    forest,
    platt: fitPlatt(calibrationRaw, calibration.map(labelOf)),
  };
  const labels = holdout.map(labelOf);
  const probabilities = vectors(holdout).map((v) => scoreVector(model, v).probability);
  const trainRate = train.filter((r) => r.converted).length / train.length;
  const heuristic = rocAuc(holdout.map(heuristicScore), labels);
  return {
    kind: "trained",
    model,
    rows: counts,
    holdout,
    metrics: {
      model: evaluate(probabilities, labels, params.threshold),
      baseline: baselineMetrics(trainRate, labels, params.threshold),
      heuristic_roc_auc: heuristic,
      importances: Object.fromEntries(features.map((f, i) => [f, forest.importances[i]!])),
    },
  };
}

/** ROC AUC of another model on `holdout` (the champion comparison). */
export function holdoutAuc(
  model: ScoringModel,
  holdout: readonly TrainingRow[],
  now: number,
): number {
  return rocAuc(
    holdout.map((r) => scoreVector(model, modelVector(model, r, now)).probability),
    holdout.map(labelOf),
  );
}
