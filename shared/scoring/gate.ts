/**
 * The deployment gate (docs/lead-scoring.md §Gate): a candidate becomes the
 * champion only when ALL hold on its time-split holdout —
 *
 * 1. ROC AUC ≥ `minRocAuc` (the seed's 0.75, on a metric that a "never
 *    converts" model cannot pass: its AUC is 0.5 whatever the base rate);
 * 2. log loss below the majority-class baseline's (it predicts the base
 *    rate): the calibrated probabilities carry information beyond the rate;
 * 3. ROC AUC not below the current champion's (of the same population) on
 *    the SAME holdout minus `championTolerance`;
 * 4. ROC AUC above the heuristic `lead_score`'s on the same holdout plus
 *    `heuristicMargin`: a model that ranks no better than the score it would
 *    replace must not replace it (docs/lead-scoring.md §Populations).
 *
 * @module
 */
import type { RunMetrics } from "./train.ts";

/** Gate thresholds. */
export interface GateOptions {
  /** @default 0.75 */
  minRocAuc: number;
  /** @default 0 */
  championTolerance: number;
  /** @default 0 */
  heuristicMargin: number;
}

/** The decision, with every reason it failed (empty when it passed). */
export interface GateDecision {
  passed: boolean;
  reasons: string[];
}

const fmt = (x: number) => x.toFixed(4);

/** Applies the gate; `championAuc` is null when there is no champion. */
export function applyGate(
  metrics: RunMetrics,
  championAuc: number | null,
  options: GateOptions,
): GateDecision {
  const reasons: string[] = [];
  const auc = metrics.model.roc_auc;
  if (!(auc >= options.minRocAuc)) {
    reasons.push(`holdout ROC AUC ${fmt(auc)} is below the gate ${fmt(options.minRocAuc)}`);
  }
  if (!(metrics.model.log_loss < metrics.baseline.log_loss)) {
    reasons.push(
      `holdout log loss ${
        fmt(metrics.model.log_loss)
      } does not beat the majority-class baseline's ${fmt(metrics.baseline.log_loss)}`,
    );
  }
  if (
    championAuc !== null && Number.isFinite(championAuc) &&
    auc < championAuc - options.championTolerance
  ) {
    reasons.push(
      `holdout ROC AUC ${fmt(auc)} is worse than the champion's ${
        fmt(championAuc)
      } on the same holdout`,
    );
  }
  const heuristic = metrics.heuristic_roc_auc;
  if (Number.isFinite(heuristic) && !(auc > heuristic + options.heuristicMargin)) {
    reasons.push(
      `holdout ROC AUC ${fmt(auc)} does not beat the heuristic's ${fmt(heuristic)}${
        options.heuristicMargin === 0 ? "" : ` by ${fmt(options.heuristicMargin)}`
      } on the same holdout`,
    );
  }
  return { passed: reasons.length === 0, reasons };
}
