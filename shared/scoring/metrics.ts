/**
 * Holdout metrics of a probabilistic binary classifier, and the same numbers
 * for the constant majority-class baseline (docs/lead-scoring.md §Metrics).
 *
 * @module
 */

/** Metrics on one holdout. */
export interface Metrics {
  rows: number;
  /** Share of positives in the holdout. */
  positive_rate: number;
  /** At `threshold`. */
  accuracy: number;
  precision: number;
  recall: number;
  threshold: number;
  /** Ties count half (the Mann–Whitney statistic); 0.5 for a constant score. */
  roc_auc: number;
  log_loss: number;
  brier: number;
}

const EPS = 1e-15;

/** ROC AUC by ranks (average ranks for ties). NaN when a class is absent. */
export function rocAuc(scores: readonly number[], labels: readonly number[]): number {
  const order = scores.map((s, i) => [s, labels[i]!] as const).sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j < order.length && order[j]![0] === order[i]![0]) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (order[k]![1] === 1) {
        rankSum += rank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Every metric of `probabilities` against 0/1 `labels`. */
export function evaluate(
  probabilities: readonly number[],
  labels: readonly number[],
  threshold: number,
): Metrics {
  let tp = 0, fp = 0, fn = 0, tn = 0, logLoss = 0, brier = 0;
  probabilities.forEach((p, i) => {
    const y = labels[i]!;
    const predicted = p >= threshold ? 1 : 0;
    if (predicted === 1 && y === 1) tp++;
    else if (predicted === 1) fp++;
    else if (y === 1) fn++;
    else tn++;
    const q = Math.min(1 - EPS, Math.max(EPS, p));
    logLoss -= y === 1 ? Math.log(q) : Math.log(1 - q);
    brier += (p - y) ** 2;
  });
  const n = labels.length;
  return {
    rows: n,
    positive_rate: n === 0 ? 0 : (tp + fn) / n,
    accuracy: n === 0 ? 0 : (tp + tn) / n,
    precision: tp + fp === 0 ? 0 : tp / (tp + fp),
    recall: tp + fn === 0 ? 0 : tp / (tp + fn),
    threshold,
    roc_auc: rocAuc(probabilities, labels),
    log_loss: n === 0 ? 0 : logLoss / n,
    brier: n === 0 ? 0 : brier / n,
  };
}

/**
 * The majority-class baseline: it always predicts the training set's
 * positive rate (so its log loss is the honest "knows only the base rate"
 * number) and labels everything with the majority class.
 */
export function baselineMetrics(
  trainPositiveRate: number,
  labels: readonly number[],
  threshold: number,
): Metrics {
  // The majority label decides accuracy; the base rate is the probability.
  const metrics = evaluate(labels.map(() => trainPositiveRate), labels, threshold);
  const majority = trainPositiveRate >= 0.5 ? 1 : 0;
  const correct = labels.filter((y) => y === majority).length;
  return { ...metrics, accuracy: labels.length === 0 ? 0 : correct / labels.length };
}
