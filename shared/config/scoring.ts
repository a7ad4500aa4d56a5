/**
 * The lead-scoring area: training data, the promotion gate, rescoring and
 * the optional MLflow tracking (shared/scoring/, docs/lead-scoring.md).
 *
 * @module
 */
import { z } from "zod";
import { bool, DAY_MS, days, defineArea, httpUrl } from "./spec.ts";

/** Lead scoring. */
export const scoring = defineArea(
  "Lead scoring",
  {
    ML_TRAINING_WINDOW_DAYS: {
      description:
        "Lead scoring: training reads the labelled leads whose last status change lies within this many days (docs/lead-scoring.md)",
      default: "90",
      schema: days,
    },
    ML_LABEL_SETTLE_DAYS: {
      description:
        "Lead scoring: a `responded` or `meeting_scheduled` lead counts as not converted only once its status has not moved for this many days",
      default: "14",
      schema: z.coerce.number().int().min(0).max(365),
    },
    ML_MIN_ROWS: {
      description: "Lead scoring: training is refused with fewer labelled leads than this",
      default: "100",
      schema: z.coerce.number().int().min(10).max(10_000_000),
    },
    ML_MIN_CLASS_EXAMPLES: {
      description:
        "Lead scoring: training is refused when the training, calibration or holdout split has fewer converted or not-converted leads than this",
      default: "10",
      schema: z.coerce.number().int().min(1).max(1_000_000),
    },
    ML_SEED: {
      description:
        "Lead scoring: the forest's random seed (same data and seed give the same model)",
      default: "42",
      schema: z.coerce.number().int().min(0).max(0xffffffff),
    },
    ML_GATE_MIN_ROC_AUC: {
      description:
        "Lead scoring gate: the least holdout ROC AUC a candidate needs to become the champion of its population (it must also beat the majority-class baseline's log loss, the heuristic's AUC and the champion's AUC on the same holdout)",
      default: "0.75",
      schema: z.coerce.number().min(0.5).max(1),
    },
    ML_GATE_CHAMPION_TOLERANCE: {
      description:
        "Lead scoring gate: how much lower than the current champion's holdout ROC AUC a candidate's may be",
      default: "0",
      schema: z.coerce.number().min(0).max(0.5),
    },
    ML_GATE_HEURISTIC_MARGIN: {
      description:
        "Lead scoring gate: by how much a candidate's holdout ROC AUC must exceed the heuristic lead_score's on the same holdout (negative: how much worse it may be)",
      default: "0",
      schema: z.coerce.number().min(-0.5).max(0.5),
    },
    ML_THRESHOLD: {
      description:
        "Lead scoring: the calibrated probability at which accuracy, precision and recall count a lead as converting",
      default: "0.5",
      schema: z.coerce.number().gt(0).lt(1),
    },
    ML_AUTO_ACTIVATE: {
      description:
        "Lead scoring: a candidate that passes the gate becomes the champion at once (false: an admin activates it)",
      default: "true",
      schema: bool,
    },
    ML_CHAMPION_CHECK_MS: {
      description:
        "Lead scoring: how often every edge and worker checks the registry for a new champion",
      default: "2000",
      schema: z.coerce.number().int().min(100).max(600_000),
    },
    ML_RESCORE_CHUNK: {
      description: "Lead scoring: open leads rescored per transaction after an activation",
      default: "1000",
      schema: z.coerce.number().int().min(1).max(50_000),
    },
    MLFLOW_TRACKING_URI: {
      description:
        "MLflow tracking server (http/https); when set, every training run is also logged there through its REST API",
      optional: true,
      schema: httpUrl,
    },
    MLFLOW_TRACKING_TOKEN: {
      description: "Bearer token for `MLFLOW_TRACKING_URI`",
      optional: true,
      secret: true,
      schema: z.string().min(1),
    },
    MLFLOW_EXPERIMENT_NAME: {
      description: "MLflow experiment the runs are logged under (created when missing)",
      default: "pleasant-cove-lead-scoring",
      schema: z.string().min(1).max(500),
    },
  },
  [],
  (v) => ({
    /** Lead scoring (shared/scoring/, docs/lead-scoring.md). */
    ml: {
      windowMs: v.ML_TRAINING_WINDOW_DAYS * DAY_MS,
      settleDays: v.ML_LABEL_SETTLE_DAYS,
      minRows: v.ML_MIN_ROWS,
      minClassExamples: v.ML_MIN_CLASS_EXAMPLES,
      seed: v.ML_SEED,
      gate: {
        minRocAuc: v.ML_GATE_MIN_ROC_AUC,
        championTolerance: v.ML_GATE_CHAMPION_TOLERANCE,
        heuristicMargin: v.ML_GATE_HEURISTIC_MARGIN,
      },
      threshold: v.ML_THRESHOLD,
      autoActivate: v.ML_AUTO_ACTIVATE,
      championCheckMs: v.ML_CHAMPION_CHECK_MS,
      rescoreChunk: v.ML_RESCORE_CHUNK,
      mlflow: v.MLFLOW_TRACKING_URI === undefined ? null : {
        trackingUri: v.MLFLOW_TRACKING_URI,
        token: v.MLFLOW_TRACKING_TOKEN ?? null,
        experimentName: v.MLFLOW_EXPERIMENT_NAME,
      },
    },
  }),
);
